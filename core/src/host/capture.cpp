#include "sluice/engine/capture.hpp"
#include "sluice/engine/printable.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "sluice/duration.hpp"

extern char** environ;

namespace sluice {
namespace {

// Closes both ends it still holds on every path out (a pipe, or a socket pair).
struct Pipe {
  int fd[2] = {-1, -1};
  ~Pipe() {
    for (int f : fd)
      if (f >= 0) ::close(f);
  }
  bool open() { return ::pipe2(fd, O_CLOEXEC) == 0; }
  void close_end(int i) {
    if (fd[i] >= 0) ::close(fd[i]);
    fd[i] = -1;
  }
  void close_write() { close_end(1); }
};

bool is_executable_file(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

}  // namespace

std::string find_on_path(const std::string& program) {
  if (program.empty()) return {};
  if (program.find('/') != std::string::npos) return is_executable_file(program) ? program : "";
  const char* env = std::getenv("PATH");
  std::string_view path = env != nullptr ? env : "/bin:/usr/bin";
  for (;;) {
    const std::size_t colon = path.find(':');
    const std::string_view dir = path.substr(0, colon);  // empty: the current directory
    std::string candidate(dir.empty() ? std::string_view(".") : dir);
    candidate.append("/").append(program);
    if (is_executable_file(candidate)) return candidate;
    if (colon == std::string_view::npos) return {};
    path.remove_prefix(colon + 1);
  }
}

Expected<CapturedOutput> run_command(const std::vector<std::string>& argv,
                                     const CommandOptions& options) {
  const auto deadline = std::chrono::steady_clock::now() + options.timeout;
  const std::string program = find_on_path(argv.at(0));
  if (program.empty()) return make_error(ErrorCode::kNotFound, argv[0] + ": not found on PATH");

  Pipe out, err;
  if (!out.open() || !err.open())
    return make_error(ErrorCode::kIo, std::string("pipe: ") + std::strerror(errno));
  // stdin is a socket, not a pipe: send(MSG_NOSIGNAL) to a program that exits without
  // reading it is EPIPE here, never a SIGPIPE that would end the caller.
  Pipe in;
  if (options.input && ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in.fd) != 0)
    return make_error(ErrorCode::kIo, std::string("socketpair: ") + std::strerror(errno));

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (options.input)
    posix_spawn_file_actions_adddup2(&fa, in.fd[1], 0);
  else
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out.fd[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err.fd[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Its own process group: a helper that forks (mpirun, wrapper scripts) dies whole.
  // The caller's blocked or ignored signals (SIGPIPE, often) are not the program's.
  sigset_t none, defaults;
  ::sigemptyset(&none);
  ::sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGCHLD}) ::sigaddset(&defaults, sig);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, program.c_str(), &fa, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return make_error(ErrorCode::kIo, argv[0] + ": " + std::strerror(rc));
  out.close_write();
  err.close_write();

  std::string_view input;
  if (options.input) {
    in.close_end(1);  // the program's end; ours is fd[0]
    input = *options.input;
    ::fcntl(in.fd[0], F_SETFL, ::fcntl(in.fd[0], F_GETFL) | O_NONBLOCK);
    if (input.empty()) in.close_end(0);
  }

  CapturedOutput result;
  pollfd fds[3] = {{out.fd[0], POLLIN, 0}, {err.fd[0], POLLIN, 0}, {in.fd[0], POLLOUT, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  char buf[4096];
  auto abandoned = [&] {
    if (!result.abandoned && options.abandon && options.abandon()) result.abandoned = true;
    return result.abandoned;
  };
  while (open_fds > 0) {
    auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      break;
    }
    if (abandoned()) break;
    if (options.abandon) left = std::min(left, kAbandonCheck);
    fds[2].fd = in.fd[0];
    const int n = ::poll(fds, 3, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;  // deadline checked at the top
    if (fds[2].fd >= 0 && fds[2].revents != 0) {
      const ssize_t sent =
          ::send(fds[2].fd, input.data(), input.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (sent > 0) input.remove_prefix(static_cast<std::size_t>(sent));
      if (input.empty() || (sent < 0 && errno != EAGAIN && errno != EINTR))
        in.close_end(0);  // all of it, or the program stopped reading: EOF for it
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        fds[i].fd = -1;  // poll ignores negative fds; the Pipe closes it
        --open_fds;
        continue;
      }
      std::string& sink = *sinks[i];
      if (sink.size() < options.max_bytes)
        sink.append(buf, std::min<std::size_t>(static_cast<std::size_t>(got),
                                               options.max_bytes - sink.size()));
    }
  }
  in.close_end(0);
  // Its output is closed; it may still be running (closed its fds, or left a child
  // holding them): the same deadline applies to its exit.
  int status = 0;
  for (;;) {
    if (!result.timed_out && !result.abandoned) {
      const pid_t r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid || (r < 0 && errno != EINTR)) break;
      if (std::chrono::steady_clock::now() < deadline && !abandoned()) {
        ::usleep(2000);
        continue;
      }
      if (!result.abandoned) result.timed_out = true;
    }
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    break;
  }
  if (WIFEXITED(status))
    result.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    result.exit_code = 128 + WTERMSIG(status);
  return result;
}

Expected<CapturedOutput> capture_output(const std::vector<std::string>& argv,
                                        std::chrono::milliseconds timeout, std::size_t max_bytes) {
  CommandOptions options;
  options.timeout = timeout;
  options.max_bytes = max_bytes;
  return run_command(argv, options);
}

std::string describe_outcome(const std::vector<std::string>& argv, const CapturedOutput& result,
                             std::chrono::milliseconds timeout) {
  const std::string& name = argv.at(0);
  if (result.abandoned) return name + " abandoned (the run is stopping)";
  if (result.timed_out) return name + " timed out after " + format_duration(timeout) + " (killed)";
  if (result.exit_code == 0) return name + " succeeded";
  std::string text = name + (result.exit_code > 128
                                 ? " was killed by signal " + std::to_string(result.exit_code - 128)
                                 : " exited with status " + std::to_string(result.exit_code));
  // Its first line that says something, stderr first (where the tools explain).
  for (const std::string* s : {&result.err, &result.out}) {
    std::string_view rest = *s;
    while (!rest.empty()) {
      const std::size_t nl = rest.find('\n');
      std::string_view line = rest.substr(0, nl);
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
      if (!line.empty()) return text + ": " + printable(line.substr(0, 300));
      if (nl == std::string_view::npos) break;
      rest.remove_prefix(nl + 1);
    }
  }
  return text;
}

}  // namespace sluice
