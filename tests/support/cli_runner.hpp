// Runs the real `sluice` binary for integration tests: in a scratch directory of its
// own, capturing exit status, stdout and stderr.
#pragma once

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support/scratch_dir.hpp"
#include "support/spawn.hpp"

namespace sluice::testing {

// A task's `echo $$ > FILE` creates FILE before it writes the number, so a test that
// saw the file may still read it empty: the pid is there once its line is complete.
inline bool pid_written(const std::filesystem::path& p) {
  const std::string text = read_file(p);
  return !text.empty() && text.back() == '\n';
}

inline void write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

// Starts `sluice ARGS…` in `cwd` with stdout/stderr going to files; returns its pid.
inline pid_t spawn_sluice(const std::vector<std::string>& args, const std::filesystem::path& cwd,
                          const std::filesystem::path& out, const std::filesystem::path& err) {
  std::vector<std::string> argv{SLUICE_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return spawn_process(argv, cwd, out, err);
}

// Runs `sluice ARGS…` in `cwd` and waits for it.
inline CliResult run_sluice(const std::vector<std::string>& args,
                            const std::filesystem::path& cwd) {
  std::vector<std::string> argv{SLUICE_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, cwd);
}

// Polls `pred` every 20 ms until it holds or `timeout` passes.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

}  // namespace sluice::testing
