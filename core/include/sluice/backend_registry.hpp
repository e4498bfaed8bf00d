// Backends register themselves by name so that the engine and CLI can pick one from a
// flag or a saved configuration without core depending on any of them.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sluice/backend.hpp"

namespace sluice {

// Settings common to all backends; backend-specific ones travel in `extra`.
struct BackendOptions {
  int cpus = 0;                        // 0: the backend decides (local: all cores)
  int gpus = -1;                       // -1: detect
  std::vector<std::string> executors;  // empty: accept every label
  std::map<std::string, std::string> extra;
};

using BackendFactory = std::function<Expected<std::unique_ptr<Backend>>(const BackendOptions&)>;

// Registers a factory under `name`, replacing any earlier one.
void register_backend(const std::string& name, BackendFactory factory);

// Creates the backend registered as `name`, or kNotFound listing the known names.
Expected<std::unique_ptr<Backend>> create_backend(const std::string& name,
                                                  const BackendOptions& options);

std::vector<std::string> backend_names();

}  // namespace sluice
