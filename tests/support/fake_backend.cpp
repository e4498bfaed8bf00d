#include "support/fake_backend.hpp"

#include <signal.h>
#include <algorithm>

namespace sluice::testing {

Expected<std::string> FakeBackend::launch(const LaunchRequest& request) {
  if (on_launch) on_launch(request);
  Attempt a;
  a.task = request.task;
  a.attempt = request.attempt;
  a.name = request.spec ? request.spec->name : "";
  a.handle = "fake:" + std::to_string(a.task) + ":" + std::to_string(a.attempt);
  start(a);
  return a.handle;
}

bool FakeBackend::reattach(const std::string& handle, TaskId task, std::uint32_t attempt) {
  if (!options_.reattaches || handle.rfind("fake:", 0) != 0) return false;
  Attempt a;
  a.task = task;
  a.attempt = attempt;
  a.handle = handle;
  a.reattached = true;
  start(a);
  return true;
}

void FakeBackend::start(const Attempt& a) {
  launches_.push_back(a);
  Live l;
  l.outcome = script ? script(a) : Outcome{};
  l.started_us = now_us_;
  live_[{a.task, a.attempt}] = std::move(l);
}

void FakeBackend::finish(const Key& key, ExitKind kind, int code, std::string reason) {
  auto it = live_.find(key);
  Completion c;
  c.task = key.first;
  c.attempt = key.second;
  c.kind = kind;
  c.code = code;
  c.reason = std::move(reason);
  c.started_us = it->second.started_us;
  c.ended_us = now_us_;
  c.host = "fake";
  live_.erase(it);
  done_.push_back(std::move(c));
}

bool FakeBackend::complete(TaskId task, std::uint32_t attempt, int code, ExitKind kind,
                           std::string reason) {
  if (!live_.count({task, attempt})) return false;
  finish({task, attempt}, kind, code, std::move(reason));
  return true;
}

void FakeBackend::poll(std::vector<Completion>& out, std::chrono::milliseconds timeout) {
  if (on_poll) on_poll(*this);
  auto due = [&] {
    std::vector<Key> keys;
    for (const auto& [key, l] : live_)
      if (!l.outcome.hold && now_us_ >= l.started_us + l.outcome.after.count() * 1000)
        keys.push_back(key);
    for (const Key& k : keys) {
      const Outcome o = live_[k].outcome;
      finish(k, o.kind, o.code, o.reason);
    }
  };
  due();
  if (done_.empty() && timeout.count() > 0) {
    // What a real backend would have waited: fake time passes instead.
    advance(timeout);
    due();
  }
  for (Completion& c : done_) out.push_back(std::move(c));
  done_.clear();
}

void FakeBackend::kill(TaskId task, std::uint32_t attempt) {
  kills_.push_back({task, attempt});
  if (live_.count({task, attempt})) finish({task, attempt}, ExitKind::kSignaled, SIGTERM, {});
}

std::size_t FakeBackend::launch_count(TaskId task) const {
  return static_cast<std::size_t>(std::count_if(launches_.begin(), launches_.end(),
                                                [&](const Attempt& a) { return a.task == task; }));
}

std::size_t FakeBackend::launch_count(TaskId task, std::uint32_t attempt) const {
  return static_cast<std::size_t>(
      std::count_if(launches_.begin(), launches_.end(),
                    [&](const Attempt& a) { return a.task == task && a.attempt == attempt; }));
}

std::vector<FakeBackend::Key> FakeBackend::running() const {
  std::vector<Key> keys;
  for (const auto& [key, l] : live_) keys.push_back(key);
  return keys;
}

}  // namespace sluice::testing
