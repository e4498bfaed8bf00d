// Running a helper program and capturing what it prints, with a deadline. Used to ask
// the outside world about itself (`nvidia-smi -L`, `sinfo --version`, `mpirun
// --version`), never to run tasks (backends do that). Thread-safe: no shared state.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "sluice/error.hpp"

namespace sluice {

struct CapturedOutput {
  int exit_code = -1;  // the program's exit status; 128 + N when killed by signal N
  bool timed_out = false;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Starts argv[0] (looked up on PATH) with stdin from /dev/null, collects its stdout and
// stderr (each capped at `max_bytes`), and waits up to `timeout`. Past the deadline the
// program is killed (SIGKILL) and `timed_out` set. Returns kNotFound when the program
// does not exist, kIo when it cannot be started; a program that runs and fails is a
// value with a non-zero exit_code.
// REQUIRES: !argv.empty()
Expected<CapturedOutput> capture_output(const std::vector<std::string>& argv,
                                        std::chrono::milliseconds timeout,
                                        std::size_t max_bytes = 1 << 20);

// The absolute path of `program` as a PATH search finds it, or "" when absent.
std::string find_on_path(const std::string& program);

}  // namespace sluice
