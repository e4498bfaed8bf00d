// RunLock: proof that this process coordinates a run. An exclusive flock(2) on
// HOME/runs/RUN/coordinator.lock; the kernel drops it when the process dies, even by
// kill -9, so a crashed coordinator never blocks `sluice resume`.
#pragma once

#include <string>

#include "sluice/error.hpp"

namespace sluice {

class RunLock {
 public:
  // Takes the lock for the run directory `run_dir`, or kConflict if another live
  // process holds it.
  static Expected<RunLock> acquire(const std::string& run_dir);
  // True when a live process holds the lock (its coordinator is running).
  static bool is_held(const std::string& run_dir);

  RunLock(RunLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  RunLock& operator=(RunLock&& other) noexcept;
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;
  ~RunLock();

 private:
  explicit RunLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace sluice
