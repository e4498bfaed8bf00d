// FakeBackend: a Backend that runs nothing. It records every launch, kill, re-attach and
// abandon; the test decides how each attempt ends (a script consulted at launch, or
// complete() by hand); and time is a clock the test moves, so poll() never sleeps.
//
//   sluice::testing::FakeBackend fake;
//   fake.script = [](const FakeBackend::Attempt& a) {
//     return a.name == "flaky" && a.attempt == 1 ? FakeBackend::exits(3) : FakeBackend::exits(0);
//   };
//   Coordinator c(store, fake, wf, run_id);  // run() finishes without real waiting
//   CHECK(fake.launch_count(wf.index["flaky"]) == 2);
//
// Semantics (those of backend.hpp): launch() always starts the attempt; an attempt ends
// at the first poll() at which the fake clock reached its launch time plus the
// outcome's `after`, or when complete() or kill() is called; exactly one Completion per
// attempt. poll() with nothing to report moves the fake clock forward by `timeout`
// (the time a real backend would have waited) and returns at once.
//
// Not thread-safe, like every Backend.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "sluice/engine/backend.hpp"

namespace sluice::testing {

class FakeBackend : public Backend {
 public:
  using Key = std::pair<TaskId, std::uint32_t>;  // task, attempt

  // How an attempt ends. `hold`: it runs until complete() or kill().
  struct Outcome {
    ExitKind kind = ExitKind::kExited;
    int code = 0;
    std::string reason;
    std::chrono::milliseconds after{0};  // of fake time, from its launch
    bool hold = false;
  };
  static Outcome exits(int code, std::chrono::milliseconds after = {}) {
    return {ExitKind::kExited, code, {}, after, false};
  }
  static Outcome held() { return {ExitKind::kExited, 0, {}, {}, true}; }

  // One launched (or re-attached) attempt, as the test sees it.
  struct Attempt {
    TaskId task = 0;
    std::uint32_t attempt = 0;
    std::string name;    // the task's name ("" for a re-attached attempt)
    std::string handle;  // "fake:TASK:ATTEMPT"
    bool reattached = false;
  };

  struct Options {
    Capacity capacity{4, 0, {}, false};
    bool wants_attempt_dir = false;
    bool reattaches = true;  // reattach() takes back any handle it made
  };

  FakeBackend() : FakeBackend(Options{}) {}
  explicit FakeBackend(Options options) : options_(std::move(options)) {}

  // Consulted once per launched or re-attached attempt. Default: exits 0 at once.
  std::function<Outcome(const Attempt&)> script;
  // Called at the start of every poll(), before anything is reported: where a test that
  // cannot hold the thread (Coordinator::run() does) acts on the world.
  std::function<void(FakeBackend&)> on_poll;
  // Called in launch(), before the attempt counts as started.
  std::function<void(const LaunchRequest&)> on_launch;

  // Ends a running attempt; reported by the next poll(). False when it is not running.
  bool complete(TaskId task, std::uint32_t attempt, int code = 0, ExitKind kind = ExitKind::kExited,
                std::string reason = {});

  // The fake clock.
  std::int64_t now_us() const { return now_us_; }
  void advance(std::chrono::milliseconds d) { now_us_ += d.count() * 1000; }

  // What happened.
  const std::vector<Attempt>& launches() const { return launches_; }
  const std::vector<Key>& kills() const { return kills_; }
  const std::vector<std::string>& abandoned() const { return abandoned_; }
  std::size_t launch_count(TaskId task) const;
  std::size_t launch_count(TaskId task, std::uint32_t attempt) const;
  bool running(TaskId task, std::uint32_t attempt) const { return live_.count({task, attempt}); }
  std::vector<Key> running() const;

  // Backend
  std::string name() const override { return "fake"; }
  Capacity capacity() const override { return options_.capacity; }
  bool wants_attempt_dir() const override { return options_.wants_attempt_dir; }
  Expected<std::string> launch(const LaunchRequest& request) override;
  void poll(std::vector<Completion>& out, std::chrono::milliseconds timeout) override;
  void kill(TaskId task, std::uint32_t attempt) override;
  std::size_t in_flight() const override { return live_.size() + done_.size(); }
  void abandon(const std::string& handle) override { abandoned_.push_back(handle); }
  bool reattach(const std::string& handle, TaskId task, std::uint32_t attempt) override;

 private:
  struct Live {
    Outcome outcome;
    std::int64_t started_us = 0;
  };
  void start(const Attempt& a);
  void finish(const Key& key, ExitKind kind, int code, std::string reason);

  Options options_;
  std::int64_t now_us_ = 1'000'000;
  std::map<Key, Live> live_;
  std::vector<Completion> done_;  // ended, not yet reported
  std::vector<Attempt> launches_;
  std::vector<Key> kills_;
  std::vector<std::string> abandoned_;
};

}  // namespace sluice::testing
