// Starts a program the way the integration tests need it: in a given directory, stdin
// from /dev/null, stdout and stderr to files, with this process's environment or a given
// one. posix_spawn, so a test with threads may call it.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace sluice::testing {

struct CliResult {
  int exit_code = -1;
  std::string out, err;
};

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Starts ARGV (ARGV[0] is a path, not looked up on PATH) in `cwd`; returns its pid.
// `envp` is a null-terminated environment, this process's by default. Throws when the
// program cannot be started.
inline pid_t spawn_process(const std::vector<std::string>& argv_s, const std::filesystem::path& cwd,
                           const std::filesystem::path& out, const std::filesystem::path& err,
                           char* const* envp = environ) {
  std::vector<char*> argv;
  for (const auto& s : argv_s) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addchdir_np(&fa, cwd.c_str());
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), envp);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("cannot start " + argv_s.at(0));
  return pid;
}

// Waits for `pid`: its exit status, or 128 + the signal that ended it.
inline int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

// Runs ARGV in `cwd` and waits for it; its output goes through files in `cwd`, removed
// afterwards.
inline CliResult run_process(const std::vector<std::string>& argv, const std::filesystem::path& cwd,
                             char* const* envp = environ) {
  static std::atomic<int> counter{0};
  const auto out = cwd / (".proc-out-" + std::to_string(++counter));
  const auto err = cwd / (".proc-err-" + std::to_string(counter));
  CliResult r;
  r.exit_code = wait_exit(spawn_process(argv, cwd, out, err, envp));
  r.out = read_file(out);
  r.err = read_file(err);
  std::error_code ec;
  std::filesystem::remove(out, ec);
  std::filesystem::remove(err, ec);
  return r;
}

// Gone, or a zombie that whoever adopted it has not reaped yet: no longer running.
inline bool process_gone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  const auto paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z';
}

}  // namespace sluice::testing
