// Running a helper program and capturing what it prints, with a deadline. Used to ask
// the outside world about itself (`nvidia-smi -L`, `sinfo --version`, `mpirun
// --version`) and to drive command-line tools (`sbatch`, `squeue`, `scancel`), never to
// run tasks (backends do that). This is the one place that starts such a program: a
// caller never waits on one without a deadline. Thread-safe: no shared state.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sluice/error.hpp"

namespace sluice {

struct CapturedOutput {
  int exit_code = -1;      // the program's exit status; 128 + N when killed by signal N
  bool timed_out = false;  // killed (with its process group) at the deadline
  bool abandoned = false;  // killed (with its process group) because `abandon` said so
  std::string out;         // stdout
  std::string err;         // stderr

  // Ran to the end by itself and exited 0.
  bool ok() const { return !timed_out && !abandoned && exit_code == 0; }
};

struct CommandOptions {
  // Past it the program's whole process group is killed (SIGKILL) and `timed_out` set.
  std::chrono::milliseconds timeout{30'000};
  // Written to the program's stdin, which is then closed; nullopt: stdin is /dev/null.
  std::optional<std::string> input;
  // stdout and stderr are each kept up to this size; the rest is read and dropped.
  std::size_t max_bytes = 1 << 20;
  // Asked about every kAbandonCheck while the program runs (the caller's way out of a
  // wait that a signal or a cancel request made pointless): when it returns true, the
  // process group is killed as at the deadline and `abandoned` set. Empty: never.
  std::function<bool()> abandon;
};

// How late run_command notices that `abandon` turned true.
inline constexpr std::chrono::milliseconds kAbandonCheck{100};

// Starts argv[0] (looked up on PATH) in a process group of its own, feeds it
// `options.input`, collects its stdout and stderr, and waits for it to exit, at most
// until `options.timeout` has passed since the start. At the deadline the process group
// is killed with SIGKILL (a wrapper script's children die with it), the program reaped
// and `timed_out` set. Returns kNotFound when the program does not exist, kIo when it
// cannot be started; a program that runs and fails, or times out, is a value.
// Signals that interrupt the wait (EINTR) do not end it: the deadline bounds it, and
// `options.abandon` lets the caller end it sooner.
// REQUIRES: !argv.empty()
Expected<CapturedOutput> run_command(const std::vector<std::string>& argv,
                                     const CommandOptions& options);

// run_command with stdin from /dev/null.
Expected<CapturedOutput> capture_output(const std::vector<std::string>& argv,
                                        std::chrono::milliseconds timeout,
                                        std::size_t max_bytes = 1 << 20);

// One line about how a finished run_command went, for error messages: "squeue timed out
// after 30s", "sbatch exited with status 1: <first line of stderr>", "killed by signal 9",
// "squeue abandoned (the run is stopping)". What the program printed is quoted with its
// control characters escaped (\x1b), so that it cannot act on a terminal.
std::string describe_outcome(const std::vector<std::string>& argv, const CapturedOutput& result,
                             std::chrono::milliseconds timeout);

// The absolute path of `program` as a PATH search finds it, or "" when absent.
std::string find_on_path(const std::string& program);

}  // namespace sluice
