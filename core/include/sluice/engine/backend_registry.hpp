// Backends register themselves by name so that the engine and CLI can pick one from a
// flag or a saved configuration without core depending on any of them.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/config.hpp"
#include "sluice/engine/backend.hpp"
#include "sluice/engine/backend_options.hpp"

namespace sluice {

using BackendFactory = std::function<Expected<std::unique_ptr<Backend>>(const BackendOptions&)>;

// Registers a factory under `name` with the options it understands, replacing any
// earlier one. The registry adds common_option_table() (cpus, gpus, executors) to
// `options`: a backend without keys of its own passes none.
void register_backend(const std::string& name, BackendFactory factory, OptionTable options = {});

// Creates the backend registered as `name`: kNotFound listing the known names; for
// options its table does not accept, kInvalidInput naming the key and listing the valid
// ones (check_options()), without calling the factory.
Expected<std::unique_ptr<Backend>> create_backend(const std::string& name,
                                                  const BackendOptions& options);

std::vector<std::string> backend_names();

// The options table of the backend registered as `name` (common keys first), or
// kNotFound listing the known names.
Expected<OptionTable> backend_option_table(const std::string& name);

// Checks options given as strings (a configuration, -O) against the table of the
// backend `name`: kNotFound for an unknown backend, else as check_options().
Expected<void> check_backend_options(const std::string& name,
                                     const std::map<std::string, std::string>& options);

// Backends whose job runs the same command in many processes (MPI: rank 0 coordinates,
// the other ranks execute) register a worker entry: called before the command touches
// the run store, it returns nullopt in the coordinating process and, in a worker, serves
// until the job ends and returns the process's exit status.
using WorkerEntry = std::function<std::optional<int>(const BackendOptions&)>;
void register_worker_entry(const std::string& name, WorkerEntry entry);

// nullopt when `name` has no worker entry or this process coordinates; otherwise the
// exit status of the worker this process was.
std::optional<int> enter_worker(const std::string& name, const BackendOptions& options);

}  // namespace sluice
