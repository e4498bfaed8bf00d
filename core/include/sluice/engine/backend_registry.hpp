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

namespace sluice {

using BackendFactory = std::function<Expected<std::unique_ptr<Backend>>(const BackendOptions&)>;

// Registers a factory under `name`, replacing any earlier one.
void register_backend(const std::string& name, BackendFactory factory);

// Creates the backend registered as `name`, or kNotFound listing the known names.
Expected<std::unique_ptr<Backend>> create_backend(const std::string& name,
                                                  const BackendOptions& options);

std::vector<std::string> backend_names();

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
