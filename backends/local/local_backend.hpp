// The `local` backend: every attempt is a process on this machine, started with
// posix_spawn (never fork: the coordinator may hold a large graph) in its own process
// group, so that killing an attempt kills everything it started. Completions are
// observed through one pidfd per process, gathered in an epoll set.
//
// Slots: the CPUs this process may use (its affinity mask, which a Slurm step or
// taskset restricts; or BackendOptions::cpus) and the GPUs it was given (a count in
// BackendOptions::gpus) or detected (detect_gpus(), sluice/gpus.hpp). A task with
// gpus > 0 gets that many distinct device ids in CUDA_VISIBLE_DEVICES, held until its
// Completion and never shared with another running attempt; when the backend has GPUs,
// a task without any sees CUDA_VISIBLE_DEVICES="".
//
// Environment of an attempt: the base environment (LocalBackendOptions::environment, else
// the coordinator's, captured when the backend is created), then the task's `env`, then
// LaunchRequest::env; later entries override earlier ones. The directory of the running executable
// is put first on PATH so that every attempt finds the same `sluice` binary.
//
// BackendOptions::extra: "kill_grace_ms" (default 2000: time between SIGTERM and SIGKILL
// after kill()), "pidfd" = "off" (watch processes by polling waitid, as on kernels
// without pidfd_open; for tests).
//
// When an attempt's main process ends, whatever it left running in its process group
// is killed: an attempt owns nothing after its Completion.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/engine/backend.hpp"
#include "sluice/engine/backend_registry.hpp"

namespace sluice {

// What a process that hosts a local backend for someone else (an mpi or pilot worker)
// decides for it, instead of the process-global state a backend of its own would read.
struct LocalBackendOptions {
  BackendOptions backend;
  // The devices to hand out; unset: BackendOptions::gpus as a count, else detection.
  std::optional<std::vector<std::string>> gpu_ids;
  // The attempts' base environment, "NAME=value" entries (the first of a name wins);
  // unset: this process's environment when the backend is created.
  std::optional<std::vector<std::string>> environment;
};

std::unique_ptr<Backend> make_local_backend(const BackendOptions& options);
std::unique_ptr<Backend> make_local_backend(const LocalBackendOptions& options);

// The options "local" takes besides cpus, gpus and executors: kill_grace_ms, pidfd, spawn.
const OptionTable& local_option_table();

// Registers make_local_backend under the name "local", with local_option_table().
void register_local_backend();

// GPU device ids this machine offers to the local backend when not told: the ids of
// detect_gpus() (SLUICE_GPUS, the CUDA runtime, nvidia-smi, then the environment).
std::vector<std::string> detect_local_gpus();

// Device ids for an explicit `count` of GPUs (count >= 0): gpus_for_count(count).
std::vector<std::string> local_gpu_ids(int count);

}  // namespace sluice
