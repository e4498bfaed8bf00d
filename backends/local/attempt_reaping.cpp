// Completions of the local backend: reaping an attempt's process, killing what it left
// in its process group, and moving its pipes' bytes into the slot's spool.
#include <signal.h>
#include <sys/epoll.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string>
#include <thread>
#include <utility>

#include "attempt_pipes.hpp"
#include "local_backend_impl.hpp"
#include "sluice/engine/wall_clock.hpp"

namespace sluice::local {
namespace {

std::string signal_reason(int sig, bool core_dumped) {
  std::string reason = "killed by signal " + std::to_string(sig);
  if (const char* abbrev = ::sigabbrev_np(sig)) {
    reason += " (SIG";
    reason += abbrev;
    reason += ')';
  }
  if (core_dumped) reason += ", core dumped";
  return reason;
}

}  // namespace

bool LocalBackend::try_reap(std::uint32_t slot, bool exited, std::vector<Completion>& out) {
  Proc& p = procs_[slot];
  if (!p.active) return false;
  siginfo_t info{};
  // Without a pidfd, peek first. Either way the main process stays a zombie (its pid
  // and process group stay reserved) while whatever it left in its group is killed.
  if (!exited &&
      ::waitid(P_PID, static_cast<id_t>(p.pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
      info.si_pid == 0) {
    return false;  // still running
  }
  ::kill(-p.pid, SIGKILL);
  Completion c;
  c.task = p.task;
  c.attempt = p.attempt;
  c.started_us = p.started_us;
  c.host = host_;
  info = siginfo_t{};
  int rc;
  while ((rc = ::waitid(P_PID, static_cast<id_t>(p.pid), &info, WEXITED | WNOHANG)) < 0 &&
         errno == EINTR) {
  }
  c.ended_us = wall_us();
  if (rc < 0) {
    // Someone else reaped it (SIGCHLD ignored, or a stray waitpid(-1)).
    c.kind = ExitKind::kLost;
    c.code = -1;
    c.reason = std::string("exit status unavailable: ") + std::strerror(errno);
  } else if (info.si_pid == 0) {
    return false;
  } else if (info.si_code == CLD_EXITED) {
    c.kind = ExitKind::kExited;
    c.code = info.si_status;
  } else {
    c.kind = ExitKind::kSignaled;
    c.code = info.si_status;
    c.reason = signal_reason(info.si_status, info.si_code == CLD_DUMPED);
  }
  if (p.spooled) {
    read_pipes(slot, true);
    c.log = spools_.end(slot);
  }
  out.push_back(std::move(c));
  release(slot);
  return true;
}

void LocalBackend::read_pipes(std::uint32_t slot, bool to_end) {
  Proc& p = procs_[slot];
  if (!p.active) return;
  drain_pipe(p.out_pipe, spools_, slot, LogStream::kStdout, to_end, pipe_buffer_);
  drain_pipe(p.err_pipe, spools_, slot, LogStream::kStderr, to_end, pipe_buffer_);
}

void LocalBackend::poll(std::vector<Completion>& out, std::chrono::milliseconds timeout) {
  const std::size_t before = out.size();
  const auto start = SteadyClock::now();
  // Capped so that `start + timeout` cannot overflow (a year is "forever" here).
  const auto cap = std::chrono::milliseconds(std::chrono::hours(24 * 365));
  const auto deadline = timeout.count() > 0 ? start + std::min(timeout, cap) : start;
  auto fallback_sleep = std::chrono::microseconds(500);
  for (;;) {
    auto now = SteadyClock::now();
    escalate_kills(now);
    auto until = std::min(deadline, next_kill());
    long long wait_ms = 0;
    if (until > now) {
      wait_ms = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
      wait_ms = std::min<long long>(wait_ms, INT_MAX);
    }
    if (use_pidfd_) {
      int n = ::epoll_wait(epfd_, events_, kMaxEvents, static_cast<int>(wait_ms));
      for (int i = 0; i < n; ++i) {
        const auto slot = static_cast<std::uint32_t>(events_[i].data.u64);
        const auto kind = events_[i].data.u64 >> 32;
        if (kind == kExitEvent) {
          try_reap(slot, true, out);
        } else if (slot < procs_.size()) {  // pipe fds of a slot reaped just before are -1
          Proc& p = procs_[slot];
          drain_pipe(kind == kStdoutEvent ? p.out_pipe : p.err_pipe, spools_, slot,
                     kind == kStdoutEvent ? LogStream::kStdout : LogStream::kStderr, false,
                     pipe_buffer_);
        }
      }
    } else {
      // No pidfds (kernel < 5.3): check each attempt, then sleep a little.
      for (std::uint32_t slot = 0; slot < procs_.size(); ++slot) {
        read_pipes(slot, false);
        try_reap(slot, false, out);
      }
      if (out.size() == before && wait_ms > 0) {
        auto nap =
            std::min<std::chrono::microseconds>(fallback_sleep, std::chrono::milliseconds(wait_ms));
        std::this_thread::sleep_for(nap);
        fallback_sleep =
            std::min<std::chrono::microseconds>(fallback_sleep * 2, std::chrono::milliseconds(10));
      }
    }
    if (out.size() > before || SteadyClock::now() >= deadline) return;
  }
}

}  // namespace sluice::local
