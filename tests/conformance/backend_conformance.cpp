#include "conformance/backend_conformance.hpp"

#include <catch2/catch.hpp>

#include <deque>
#include <filesystem>
#include <map>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "support/scratch_dir.hpp"

namespace sluice::conformance {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;
using Key = std::pair<TaskId, std::uint32_t>;

TaskSpec default_spec(Behaviour b, const std::string& name) {
  TaskSpec s;
  s.name = s.group = name;
  s.version = "1";
  s.workdir = "/tmp";
  switch (b) {
    case Behaviour::kSucceeds:
      s.command = {"true"};
      break;
    case Behaviour::kFails:
      s.shell = "exit 3";
      break;
    case Behaviour::kRunsUntilKilled:
      s.command = {"sleep", "60"};
      break;
  }
  return s;
}

// One check's world: a scratch run directory, the backend, what it reported.
class Session {
 public:
  explicit Session(const Target& t) : t_(t) {
    std::random_device rd;
    run_id_ = "conf" + std::to_string(rd());
    fs::create_directories(root_ / "runs" / run_id_ / "tasks");
    backend = t.make();
    REQUIRE(backend);
  }
  ~Session() {
    // Nothing may outlive the check: kill or release what runs, collect it.
    if (t_.release) t_.release();
    for (Backend* b : {backend.get(), second.get()}) {
      if (!b) continue;
      for (const Key& k : launched_) b->kill(k.first, k.second);
      std::vector<Completion> ignored;
      const auto until = Clock::now() + t_.patience;
      while (b->in_flight() > 0 && Clock::now() < until) {
        if (t_.pump) t_.pump(run_dir());
        b->poll(ignored, Millis(10));
      }
    }
    second.reset();
    backend.reset();
  }

  TaskSpec& spec(Behaviour b, const std::string& name) {
    specs_.push_back(t_.spec ? t_.spec(b, name) : default_spec(b, name));
    return specs_.back();
  }
  // A task with nothing to run: a backend may refuse it.
  TaskSpec& empty_spec(const std::string& name) {
    specs_.push_back(default_spec(Behaviour::kSucceeds, name));
    specs_.back().command.clear();
    return specs_.back();
  }

  LaunchRequest request(const TaskSpec& s, TaskId task, std::uint32_t attempt = 1) {
    LaunchRequest r;
    r.task = task;
    r.attempt = attempt;
    r.spec = &s;
    const fs::path dir = root_ / "runs" / run_id_ / "tasks" / s.name / std::to_string(attempt);
    fs::create_directories(dir);
    r.attempt_dir = dir.string();
    r.env = {{"SLUICE_RUN_ID", run_id_},
             {"SLUICE_TASK", s.name},
             {"SLUICE_ATTEMPT", std::to_string(attempt)},
             {"SLUICE_ATTEMPT_DIR", r.attempt_dir}};
    launched_.push_back({task, attempt});
    return r;
  }

  Expected<std::string> launch(Behaviour b, TaskId task) {
    return backend->launch(request(spec(b, name_of(b, task)), task));
  }

  static std::string name_of(Behaviour b, TaskId task) {
    const char* prefix = b == Behaviour::kSucceeds ? "ok"
                         : b == Behaviour::kFails  ? "fail"
                                                   : "hang";
    return prefix + std::to_string(task);
  }

  // Polls `b` (the world moving between polls) until `done` or patience runs out.
  bool poll_until(Backend& b, const std::function<bool()>& done) {
    const auto until = Clock::now() + t_.patience;
    while (!done()) {
      if (Clock::now() >= until) return false;
      if (t_.pump) t_.pump(run_dir());
      b.poll(got, Millis(10));
    }
    return true;
  }
  // Polls `b` for about `d`, collecting whatever comes.
  void settle(Backend& b, Millis d) {
    const auto until = Clock::now() + d;
    while (Clock::now() < until) {
      if (t_.pump) t_.pump(run_dir());
      b.poll(got, Millis(10));
    }
  }

  std::size_t count(TaskId task, std::uint32_t attempt = 1) const {
    std::size_t n = 0;
    for (const Completion& c : got) n += c.task == task && c.attempt == attempt;
    return n;
  }
  const Completion* find(TaskId task) const {
    for (const Completion& c : got)
      if (c.task == task) return &c;
    return nullptr;
  }

  std::string run_dir() const { return (root_ / "runs" / run_id_).string(); }

  std::unique_ptr<Backend> backend;
  std::unique_ptr<Backend> second;  // the "restarted" coordinator's
  std::vector<Completion> got;

 private:
  const Target& t_;
  testing::ScratchDir scratch_;  // removed after the backends are gone
  const fs::path& root_ = scratch_.path();
  std::string run_id_;
  std::deque<TaskSpec> specs_;  // stable: requests point into it
  std::vector<Key> launched_;
};

Millis elapsed_since(Clock::time_point t) {
  return std::chrono::duration_cast<Millis>(Clock::now() - t);
}

}  // namespace

void check_backend_contract(const Target& target) {
  INFO("backend: " << target.name);
  Session s(target);
  Backend& b = *s.backend;
  const Millis settle(300);

  SECTION("a launched attempt produces exactly one completion") {
    REQUIRE(s.launch(Behaviour::kSucceeds, 0));
    REQUIRE(s.launch(Behaviour::kSucceeds, 1));
    REQUIRE(s.launch(Behaviour::kFails, 2));
    CHECK(b.in_flight() == 3);  // launched, none reported yet
    REQUIRE(s.poll_until(b, [&] { return s.got.size() >= 3 && b.in_flight() == 0; }));
    s.settle(b, settle);
    REQUIRE(s.got.size() == 3);
    for (TaskId t : {0u, 1u, 2u}) CHECK(s.count(t) == 1);
    CHECK(s.find(0)->ok());
    CHECK(s.find(1)->ok());
    CHECK_FALSE(s.find(2)->ok());
    CHECK(b.in_flight() == 0);
  }

  SECTION("launch either starts the attempt or errors leaving nothing running") {
    auto r = b.launch(s.request(s.empty_spec("bad0"), 0));
    if (!r) {
      CHECK(b.in_flight() == 0);
      s.settle(b, settle);
      CHECK(s.got.empty());
    } else {
      REQUIRE(s.poll_until(b, [&] { return b.in_flight() == 0; }));
      s.settle(b, settle);
      CHECK(s.count(0) == 1);
    }
  }

  SECTION("launch_batch gives one result per request, in order") {
    std::vector<LaunchRequest> batch;
    batch.push_back(s.request(s.spec(Behaviour::kSucceeds, "ok0"), 0));
    batch.push_back(s.request(s.empty_spec("bad1"), 1));
    batch.push_back(s.request(s.spec(Behaviour::kFails, "fail2"), 2));
    batch.push_back(s.request(s.spec(Behaviour::kSucceeds, "ok3"), 3));
    auto results = b.launch_batch(batch);
    REQUIRE(results.size() == batch.size());
    REQUIRE(results[0]);
    REQUIRE(results[2]);
    REQUIRE(results[3]);
    const std::size_t started = 3 + (results[1] ? 1 : 0);
    CHECK(b.in_flight() == started);
    REQUIRE(s.poll_until(b, [&] { return b.in_flight() == 0; }));
    s.settle(b, settle);
    CHECK(s.got.size() == started);
    for (TaskId t = 0; t < batch.size(); ++t) CHECK(s.count(t) == (results[t] ? 1u : 0u));
    // Results and completions belong to the request at the same index.
    REQUIRE(s.find(0));
    REQUIRE(s.find(2));
    REQUIRE(s.find(3));
    CHECK(s.find(0)->ok());
    CHECK_FALSE(s.find(2)->ok());
    CHECK(s.find(3)->ok());
  }

  SECTION("kill of a finished or unknown attempt is a no-op") {
    REQUIRE(s.launch(Behaviour::kSucceeds, 0));
    REQUIRE(s.poll_until(b, [&] { return s.got.size() == 1 && b.in_flight() == 0; }));
    b.kill(0, 1);
    b.kill(77, 1);  // never launched
    s.settle(b, settle);
    CHECK(s.got.size() == 1);
    CHECK(s.count(0) == 1);
    CHECK(b.in_flight() == 0);
  }

  SECTION("kill of a running attempt ends it with one completion") {
    if (!target.kills_running) return;
    REQUIRE(s.launch(Behaviour::kRunsUntilKilled, 0));
    s.settle(b, settle);
    CHECK(s.got.empty());
    CHECK(b.in_flight() == 1);
    b.kill(0, 1);
    REQUIRE(s.poll_until(b, [&] { return b.in_flight() == 0; }));
    s.settle(b, settle);
    REQUIRE(s.count(0) == 1);
    CHECK_FALSE(s.got[0].ok());
  }

  SECTION("poll returns within its timeout, idle or busy") {
    std::vector<Completion> out;
    auto t0 = Clock::now();
    b.poll(out, Millis(0));
    CHECK(elapsed_since(t0) <= target.poll_slack);
    t0 = Clock::now();
    b.poll(out, Millis(100));
    CHECK(elapsed_since(t0) <= Millis(100) + target.poll_slack);
    CHECK(out.empty());

    REQUIRE(s.launch(Behaviour::kRunsUntilKilled, 0));
    s.settle(b, settle);
    for (int i = 0; i < 3; ++i) {
      if (target.pump) target.pump(s.run_dir());
      t0 = Clock::now();
      b.poll(out, Millis(100));
      CHECK(elapsed_since(t0) <= Millis(100) + target.poll_slack);
    }
    CHECK(out.empty());
    CHECK(b.in_flight() == 1);
  }

  SECTION("after a restart, reattach takes an attempt back or abandon lets it go") {
    if (!target.restarts) return;
    auto handle = s.launch(Behaviour::kRunsUntilKilled, 0);
    REQUIRE(handle);
    s.settle(b, settle);
    s.second = target.make();
    REQUIRE(s.second);
    Backend& b2 = *s.second;
    std::vector<Completion> first = std::move(s.got);
    s.got.clear();
    if (b2.reattach(*handle, 0, 1)) {
      CHECK(b2.in_flight() == 1);
      if (target.kills_running)
        b2.kill(0, 1);
      else if (target.release)
        target.release();
      REQUIRE(s.poll_until(b2, [&] { return b2.in_flight() == 0; }));
      s.settle(b2, settle);
      CHECK(s.count(0) == 1);
    } else {
      CHECK(b2.in_flight() == 0);
      b2.abandon(*handle);
      s.settle(b2, settle);
      CHECK(s.got.empty());
      CHECK(b2.in_flight() == 0);
    }
    // abandon() of an attempt that already ended is harmless too.
    b2.abandon(*handle);
    CHECK(b.in_flight() <= 1);
  }
}

}  // namespace sluice::conformance
