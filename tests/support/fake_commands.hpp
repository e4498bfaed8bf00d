// Fake programs for tests that drive sluice against a sick outside world (a Slurm whose
// squeue hangs, an sbatch that prints garbage, a controller of another release): a
// directory of sh scripts put first on PATH while it lives, which this process and every
// program it starts (run_sluice passes the environment on) find before the real ones.
// And exit_within(), for a sluice that must end in time (process_gone() is in spawn.hpp).
#pragma once

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "support/spawn.hpp"

namespace sluice::testing {

// PATH with DIR first while it lives.
class PathFirst {
 public:
  explicit PathFirst(const std::filesystem::path& dir)
      : old_(std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin") {
    ::setenv("PATH", (dir.string() + ":" + old_).c_str(), 1);
  }
  ~PathFirst() { ::setenv("PATH", old_.c_str(), 1); }
  PathFirst(const PathFirst&) = delete;
  PathFirst& operator=(const PathFirst&) = delete;

 private:
  std::string old_;
};

// DIR (created) holds the fake commands; it is first on PATH while this lives.
class FakeCommands {
 public:
  explicit FakeCommands(const std::filesystem::path& dir)
      : dir_((std::filesystem::create_directories(dir), dir)), path_(dir_) {}

  // Writes DIR/NAME, an sh script running `body`.
  void command(const std::string& name, const std::string& body) const {
    const std::filesystem::path p = dir_ / name;
    std::ofstream(p) << "#!/bin/sh\n" << body << "\n";
    ::chmod(p.c_str(), 0755);
  }
  // Whether DIR/WHAT_calls exists: the convention of fakes that log their calls there.
  bool called(const std::string& what) const {
    return std::filesystem::exists(dir_ / (what + "_calls"));
  }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  PathFirst path_;
};

// The exit status of child `pid` (128 + signal) if it ends within `limit`; otherwise
// kills it and fails the test, saying `what` it was doing.
inline int exit_within(pid_t pid, std::chrono::seconds limit,
                       const std::string& what = "sluice still running") {
  const auto until = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > until) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      FAIL(what << " after " << limit.count() << "s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace sluice::testing
