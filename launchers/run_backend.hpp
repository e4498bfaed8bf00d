// The backend a run was started with, kept in RUN_DIR/backend.json, so that `sluice
// resume RUN` restores it (name and every option: mode, time_limit, partition, …) without
// the user repeating --backend, --config or -O:
//
//   {"backend": "slurm", "options": {"mode": "pilot", "cpus": "2", "time_limit": "10m"},
//    "detail": "driver cli: the controller runs Slurm 24.11.1 but ..."}
//
// `options` holds BackendOptions::extra plus cpus, gpus and executors when they were set,
// all as the strings a configuration file or -O would give (option_strings(),
// sluice/config.hpp). `detail` is what the backend said of itself when the run last
// started or resumed (Backend::describe(): the Slurm driver and why); for people, never
// read back into options.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "sluice/engine/backend_registry.hpp"

namespace sluice::cli {

struct RunBackend {
  std::string backend;
  std::map<std::string, std::string> options;
  std::string detail;  // Backend::describe(); omitted when empty
};

// Writes RUN_DIR/backend.json (atomically). Returns false when it could not.
bool save_run_backend(const std::string& run_dir, const RunBackend& saved);
// Same, from parsed options (BackendOptions::extra plus cpus, gpus and executors).
bool save_run_backend(const std::string& run_dir, const std::string& backend,
                      const BackendOptions& options, const std::string& detail = {});

// What save_run_backend() wrote; nullopt for a run started before it existed or a file
// that cannot be read.
std::optional<RunBackend> load_run_backend(const std::string& run_dir);

// `APP prepare` marks its run (RUN_DIR/prepared): a submitted run with no coordinator
// that was prepared waits for `APP start RUN`; it is not orphaned.
void mark_prepared(const std::string& run_dir);
bool is_prepared(const std::string& run_dir);

}  // namespace sluice::cli
