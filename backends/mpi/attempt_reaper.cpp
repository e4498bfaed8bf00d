#include "attempt_reaper.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "sluice/engine/host_info.hpp"

namespace sluice::mpi {

std::string worker_mark() {
  return "SLUICE_WORKER_MARK=" + host_name() + ":" + std::to_string(::getpid());
}

namespace {

// Kills the process group (and the process) of every other process on this host for
// whose environment (NUL-separated entries) `matches` is true; returns how many.
int kill_processes_where(const std::function<bool(std::string_view)>& matches) {
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return 0;
  const pid_t self = ::getpid();
  const pid_t own_group = ::getpgrp();
  int found = 0;
  std::string env;
  while (dirent* d = ::readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(d->d_name, &end, 10);
    if (*end != '\0' || pid <= 1 || pid == self) continue;
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%ld/environ", pid);
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    env.clear();
    char buf[8192];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) env.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    if (!matches(env)) continue;
    const pid_t group = ::getpgid(static_cast<pid_t>(pid));
    if (group > 1 && group != own_group) ::kill(-group, SIGKILL);
    ::kill(static_cast<pid_t>(pid), SIGKILL);
    ++found;
  }
  ::closedir(proc);
  return found;
}

// Calls `f` on each entry of an environment block until it returns true.
template <class F>
bool any_entry(std::string_view env, F f) {
  for (std::size_t pos = 0; pos < env.size();) {
    std::size_t nul = env.find('\0', pos);
    if (nul == std::string_view::npos) nul = env.size();
    if (f(env.substr(pos, nul - pos))) return true;
    pos = nul + 1;
  }
  return false;
}

}  // namespace

int kill_processes_whose_environment(const std::function<bool(std::string_view)>& matches) {
  return kill_processes_where([&](std::string_view env) { return any_entry(env, matches); });
}

int kill_processes_whose_environment_has(const std::vector<std::string>& all_of) {
  return kill_processes_where([&](std::string_view env) {
    for (const std::string& want : all_of)
      if (!any_entry(env, [&](std::string_view e) { return e == want; })) return false;
    return true;
  });
}

void start_attempt_reaper(const std::string& mark) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return;
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return;
  }
  if (pid > 0) {
    // The rank keeps the only write end (close-on-exec: attempts must not hold it,
    // or the reaper would wait for them instead of for the rank).
    ::close(fds[0]);
    return;
  }
  // The reaper: out of the rank's session, so what kills the rank's group or the
  // terminal's signals leave it; off the rank's stdout/stderr, so mpirun does not
  // wait for it.
  ::close(fds[1]);
  ::setsid();
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGPIPE}) ::signal(s, SIG_IGN);
  const int null = ::open("/dev/null", O_RDWR);
  if (null >= 0) {
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(null, 2);
  }
  const int keep = ::dup2(fds[0], 3);
  if (keep == 3) ::close_range(4, ~0U, 0);
  char byte;
  for (;;) {  // only EOF (the rank is gone) or a broken pipe ends the wait
    const ssize_t n = ::read(3, &byte, 1);
    if (n == 0 || (n < 0 && errno != EINTR)) break;
  }
  // Twice: a task caught forking between the sweep's reads leaves a child the second
  // finds.
  for (int round = 0; round < 2; ++round) {
    const int found =
        kill_processes_whose_environment([&](std::string_view entry) { return entry == mark; });
    if (found == 0) break;
    ::usleep(50'000);
  }
  ::_exit(0);
}

}  // namespace sluice::mpi
