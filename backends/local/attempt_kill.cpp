// Killing local attempts: SIGTERM to the process group, SIGKILL after the grace period,
// and abandon() of an attempt that a previous coordinator started.
#include <signal.h>

#include <algorithm>
#include <string_view>

#include "local_backend_impl.hpp"
#include "process_identity.hpp"

namespace sluice::local {

SteadyClock::time_point LocalBackend::next_kill() const {
  auto next = SteadyClock::time_point::max();
  if (kills_pending_ == 0) return next;
  for (const auto& p : procs_) {
    if (p.active && p.term_sent) next = std::min(next, p.kill_at);
  }
  return next;
}

void LocalBackend::escalate_kills(SteadyClock::time_point now) {
  if (kills_pending_ == 0) return;
  for (auto& p : procs_) {
    if (!p.active || !p.term_sent || p.kill_at > now) continue;
    ::kill(-p.pid, SIGKILL);
    ::kill(p.pid, SIGKILL);
    p.kill_at = SteadyClock::time_point::max();  // sent; its exit follows
  }
}

void LocalBackend::kill(TaskId task, std::uint32_t attempt) {
  for (auto& p : procs_) {
    if (!p.active || p.task != task || p.attempt != attempt) continue;
    if (p.term_sent) return;
    ::kill(-p.pid, SIGTERM);
    p.term_sent = true;
    p.kill_at = SteadyClock::now() + kill_grace_;
    ++kills_pending_;
    return;
  }
}

void LocalBackend::abandon(const std::string& handle) {
  std::string_view h(handle);
  std::size_t colon = h.find(':');
  if (colon == std::string_view::npos) return;
  long long pid = parse_count(h.substr(0, colon));
  long long start = parse_count(h.substr(colon + 1));
  if (pid <= 1 || start < 0) return;
  if (!started_near(static_cast<pid_t>(pid), static_cast<std::uint64_t>(start))) return;
  ::kill(static_cast<pid_t>(-pid), SIGKILL);
  ::kill(static_cast<pid_t>(pid), SIGKILL);
}

}  // namespace sluice::local
