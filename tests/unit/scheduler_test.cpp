#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <random>

#include "sluice/engine/scheduler.hpp"
#include "support/workflow_builder.hpp"

using namespace sluice;
using sluice::testing::make_workflow;

namespace {

// Drives a Scheduler like the coordinator does, with a hand-moved clock and attempts
// that finish when the test says so. Checks invariants after every step.
struct Harness {
  Workflow wf;
  Graph graph;
  Scheduler sched;
  TimePoint now{};
  std::vector<Launch> running;
  std::vector<Launch> exited;
  std::vector<StateChange> log;
  std::size_t max_parallel_cpus = 0;

  Harness(Workflow w, Capacity cap)
      : wf(std::move(w)), graph(wf), sched(wf, graph, std::move(cap)) {}

  void start() {
    sched.start(now);
    step();
  }
  void step() {
    for (auto& l : sched.take_launches()) {
      sched.on_attempt_started(l.task, l.attempt, now);
      running.push_back(l);
    }
    std::size_t cpus = 0;
    for (auto& l : running) cpus += wf.tasks[l.task].cpus;
    max_parallel_cpus = std::max(max_parallel_cpus, cpus);
    auto ch = sched.drain_changes();
    log.insert(log.end(), ch.begin(), ch.end());
    sched.check_invariants();
  }
  bool is_running(TaskId t) const {
    return std::any_of(running.begin(), running.end(), [&](auto& l) { return l.task == t; });
  }
  // The attempt's processes ended; the outcome comes later with finish(), as when the
  // coordinator seals an artifact in between.
  void exit(TaskId t) {
    auto it = std::find_if(running.begin(), running.end(), [&](auto& l) { return l.task == t; });
    REQUIRE(it != running.end());
    exited.push_back(*it);
    running.erase(it);
    sched.on_attempt_exited(t, exited.back().attempt);
    step();
  }
  void finish(TaskId t, int code, ExitKind kind = ExitKind::kExited, std::string failure = {}) {
    Launch l;
    auto it = std::find_if(running.begin(), running.end(), [&](auto& x) { return x.task == t; });
    if (it != running.end()) {
      l = *it;
      running.erase(it);
    } else {
      auto ex = std::find_if(exited.begin(), exited.end(), [&](auto& x) { return x.task == t; });
      REQUIRE(ex != exited.end());
      l = *ex;
      exited.erase(ex);
    }
    Completion c;
    c.task = t;
    c.attempt = l.attempt;
    c.kind = kind;
    c.code = code;
    c.failure = std::move(failure);
    sched.on_attempt_finished(c, now);
    step();
  }
  void advance(std::chrono::milliseconds d) {
    now += d;
    for (auto& k : sched.on_tick(now)) {
      // The backend kills it; the completion arrives as a signal death.
      finish(k.task, 9, ExitKind::kSignaled);
    }
    step();
  }
  std::string reason_of(TaskId t) const {
    for (auto it = log.rbegin(); it != log.rend(); ++it)
      if (it->task == t) return it->reason;
    return {};
  }
};

// Parents for a random DAG of n tasks: each task makes `tries` draws, and with
// probability 1/one_in a draw adds an earlier task as a parent (duplicates dropped).
std::vector<std::vector<TaskId>> random_parents(std::mt19937& rng, int n, int tries, int one_in) {
  std::vector<std::vector<TaskId>> parents(n);
  for (int i = 1; i < n; ++i)
    for (int k = 0; k < tries; ++k)
      if (rng() % static_cast<unsigned>(one_in) == 0)
        parents[i].push_back(static_cast<TaskId>(rng() % i));
  for (auto& p : parents) {
    std::sort(p.begin(), p.end());
    p.erase(std::unique(p.begin(), p.end()), p.end());
  }
  return parents;
}

}  // namespace

// t0 -> {t1, t2} -> t3
TEST_CASE("a diamond runs parents before children and succeeds", "[core][scheduler]") {
  Harness h(make_workflow({{}, {0}, {0}, {1, 2}}), Capacity{4, 0, {}});
  h.start();
  REQUIRE(h.running.size() == 1);
  REQUIRE(h.is_running(0));
  h.finish(0, 0);
  REQUIRE(h.running.size() == 2);
  h.finish(1, 0);
  REQUIRE_FALSE(h.is_running(3));
  h.finish(2, 0);
  REQUIRE(h.is_running(3));
  h.finish(3, 0);
  REQUIRE(h.sched.done());
  REQUIRE(h.sched.run_state() == RunState::kSucceeded);
}

TEST_CASE("a failing attempt is retried with the next attempt number", "[core][scheduler]") {
  auto wf = make_workflow({{}});
  wf.tasks[0].retries = 2;
  Harness h(std::move(wf), Capacity{2, 0, {}});
  h.start();
  REQUIRE(h.running[0].attempt == 1);
  h.finish(0, 1);
  REQUIRE(h.running.size() == 1);
  REQUIRE(h.running[0].attempt == 2);
  h.finish(0, 1);
  REQUIRE(h.running[0].attempt == 3);
  h.finish(0, 0);
  REQUIRE(h.sched.state(0) == TaskState::kSucceeded);
  REQUIRE(h.sched.attempts(0) == 3);
}

TEST_CASE("a task out of retries fails and its descendants are skipped", "[core][scheduler]") {
  // t0 -> t1 -> t2 ; t3 independent
  auto wf = make_workflow({{}, {0}, {1}, {}});
  wf.tasks[0].retries = 1;
  Harness h(std::move(wf), Capacity{2, 0, {}});
  h.start();
  h.finish(0, 3);
  h.finish(0, 4);
  REQUIRE(h.sched.state(0) == TaskState::kFailed);
  REQUIRE(h.reason_of(0) == "exit code 4");
  REQUIRE(h.sched.state(1) == TaskState::kSkipped);
  REQUIRE(h.sched.state(2) == TaskState::kSkipped);
  REQUIRE(h.reason_of(2) == "dependency 't0' failed");
  REQUIRE_FALSE(h.sched.done());
  h.finish(3, 0);
  REQUIRE(h.sched.done());
  REQUIRE(h.sched.run_state() == RunState::kFailed);
}

TEST_CASE("an attempt past max_exec_time is killed and fails as timed out", "[core][scheduler]") {
  auto wf = make_workflow({{}});
  wf.tasks[0].max_exec_time = std::chrono::seconds(10);
  Harness h(std::move(wf), Capacity{1, 0, {}});
  h.start();
  h.advance(std::chrono::seconds(9));
  REQUIRE(h.is_running(0));
  h.advance(std::chrono::seconds(2));
  REQUIRE(h.sched.state(0) == TaskState::kFailed);
  REQUIRE(h.reason_of(0) == "timed out after 10.0s");
}

TEST_CASE("a task that cannot start within max_wait_time fails with no slot", "[core][scheduler]") {
  auto wf = make_workflow({{}, {}});
  wf.tasks[1].max_wait_time = std::chrono::seconds(5);
  Harness h(std::move(wf), Capacity{1, 0, {}});
  h.start();
  REQUIRE(h.is_running(0));
  h.advance(std::chrono::seconds(6));
  REQUIRE(h.sched.state(1) == TaskState::kFailed);
  REQUIRE(h.reason_of(1).rfind("no slot", 0) == 0);
  h.finish(0, 0);
  REQUIRE(h.running.empty());
  REQUIRE(h.sched.done());
}

TEST_CASE("parallelism never exceeds capacity on a random DAG", "[core][scheduler]") {
  std::mt19937 rng(42);
  const int n = 2000;
  auto wf = make_workflow(random_parents(rng, n, 3, 3));
  for (auto& t : wf.tasks) {
    t.cpus = 1 + static_cast<int>(rng() % 2);
    t.gpus = rng() % 5 == 0 ? 1 : 0;
  }
  Harness h(std::move(wf), Capacity{3, 1, {}});
  h.start();
  std::size_t steps = 0;
  while (!h.running.empty()) {
    auto pick = h.running[rng() % h.running.size()].task;
    h.finish(pick, 0);
    ++steps;
  }
  REQUIRE(h.sched.done());
  REQUIRE(h.sched.run_state() == RunState::kSucceeded);
  REQUIRE(steps == static_cast<std::size_t>(n));
  REQUIRE(h.max_parallel_cpus <= 3);
  REQUIRE(h.max_parallel_cpus >= 2);
}

TEST_CASE("an exited attempt's slot takes the next ready task while its dependents wait",
          "[core][scheduler]") {
  // t0 -> t2; t1 independent; one slot.
  Harness h(make_workflow({{}, {}, {0}}), Capacity{1, 0, {}});
  h.start();
  REQUIRE(h.is_running(0));
  REQUIRE_FALSE(h.is_running(1));
  h.exit(0);  // its artifact is being sealed
  REQUIRE(h.is_running(1));
  REQUIRE(h.sched.state(0) == TaskState::kRunning);
  REQUIRE(h.sched.state(2) == TaskState::kWaiting);
  h.sched.on_attempt_exited(0, 1);  // a second report changes nothing
  h.step();
  REQUIRE(h.running.size() == 1);
  h.finish(0, 0);
  REQUIRE(h.sched.state(0) == TaskState::kSucceeded);
  REQUIRE(h.sched.state(2) == TaskState::kReady);  // the slot is t1's now
  REQUIRE(h.running.size() == 1);
  h.finish(1, 0);
  REQUIRE(h.is_running(2));
  h.finish(2, 0);
  REQUIRE(h.sched.run_state() == RunState::kSucceeded);
}

TEST_CASE("a failure found after the exit retries the task in a free slot", "[core][scheduler]") {
  auto wf = make_workflow({{}, {0}});
  wf.tasks[0].retries = 1;
  Harness h(std::move(wf), Capacity{1, 0, {}});
  h.start();
  h.exit(0);
  REQUIRE(h.running.empty());  // nothing else is ready
  h.finish(0, 0, ExitKind::kExited, "bad artifact: not HDF5");
  REQUIRE(std::any_of(h.log.begin(), h.log.end(), [](const StateChange& c) {
    return c.task == 0 && c.reason == "retrying after attempt 1: bad artifact: not HDF5";
  }));
  REQUIRE(h.is_running(0));
  REQUIRE(h.running[0].attempt == 2);
  REQUIRE(h.sched.state(1) == TaskState::kWaiting);
  h.exit(0);
  h.finish(0, 0);
  REQUIRE(h.is_running(1));
  h.finish(1, 0);
  REQUIRE(h.sched.run_state() == RunState::kSucceeded);
}

TEST_CASE("exits reported before outcomes never exceed capacity on a random DAG",
          "[core][scheduler]") {
  std::mt19937 rng(7);
  const int n = 2000;
  auto wf = make_workflow(random_parents(rng, n, 2, 2));
  for (auto& t : wf.tasks) {
    t.cpus = 1 + static_cast<int>(rng() % 2);
    t.retries = 1;
  }
  Harness h(std::move(wf), Capacity{3, 0, {}});
  h.start();
  std::size_t outcomes = 0;
  while (!h.running.empty() || !h.exited.empty()) {
    if (!h.running.empty() && (h.exited.empty() || rng() % 2 == 0)) {
      h.exit(h.running[rng() % h.running.size()].task);
    } else {
      // One outcome in ten is a failure found after the exit (a bad artifact).
      const TaskId t = h.exited[rng() % h.exited.size()].task;
      h.finish(t, 0, ExitKind::kExited, rng() % 10 == 0 ? "bad artifact" : "");
      ++outcomes;
    }
  }
  REQUIRE(h.sched.done());
  REQUIRE(outcomes >= static_cast<std::size_t>(n));
  REQUIRE(h.max_parallel_cpus <= 3);
  REQUIRE(h.max_parallel_cpus >= 2);
}

TEST_CASE("cancelling a run kills running attempts and cancels the rest", "[core][scheduler]") {
  Harness h(make_workflow({{}, {}, {0}}), Capacity{1, 0, {}});
  h.start();
  REQUIRE(h.is_running(0));
  auto kills = h.sched.on_cancel_requested();
  REQUIRE(kills.size() == 1);
  REQUIRE(kills[0].task == 0);
  REQUIRE(h.sched.state(1) == TaskState::kCancelled);
  h.finish(0, 9, ExitKind::kSignaled);
  REQUIRE(h.sched.state(0) == TaskState::kCancelled);
  REQUIRE(h.sched.done());
  REQUIRE(h.sched.run_state() == RunState::kCancelled);
}

TEST_CASE("restored succeeded tasks are never launched again", "[core][scheduler]") {
  Harness h(make_workflow({{}, {0}, {1}}), Capacity{2, 0, {}});
  h.sched.restore(0, TaskState::kSucceeded, 1);
  h.sched.restore(1, TaskState::kWaiting, 1);  // was in flight when the coordinator died
  h.start();
  REQUIRE(h.running.size() == 1);
  REQUIRE(h.running[0].task == 1);
  REQUIRE(h.running[0].attempt == 2);
  h.finish(1, 0);
  h.finish(2, 0);
  REQUIRE(h.sched.done());
  REQUIRE(h.sched.run_state() == RunState::kSucceeded);
}

TEST_CASE("a task bigger than the backend fails instead of waiting forever", "[core][scheduler]") {
  auto wf = make_workflow({{}, {0}});
  wf.tasks[0].gpus = 2;
  Harness h(std::move(wf), Capacity{4, 1, {}});
  h.start();
  REQUIRE(h.sched.state(0) == TaskState::kFailed);
  REQUIRE(h.sched.state(1) == TaskState::kSkipped);
  REQUIRE(h.sched.done());
}

TEST_CASE("a launch the backend refuses counts as a failed attempt", "[core][scheduler]") {
  auto wf = make_workflow({{}});
  wf.tasks[0].retries = 1;
  Workflow w = wf;
  Graph g(w);
  Scheduler s(w, g, Capacity{1, 0, {}});
  TimePoint now{};
  s.start(now);
  auto l = s.take_launches();
  REQUIRE(l.size() == 1);
  s.on_launch_failed(0, l[0].attempt, "cannot start 'x'", now);
  s.check_invariants();
  REQUIRE(s.state(0) == TaskState::kReady);
  l = s.take_launches();
  REQUIRE(l.size() == 1);
  s.on_launch_failed(0, l[0].attempt, "cannot start 'x'", now);
  REQUIRE(s.state(0) == TaskState::kFailed);
  auto changes = s.drain_changes();
  REQUIRE(changes.back().reason == "launch failed: cannot start 'x'");
}

TEST_CASE("a lost attempt is retried without using up the task's retries", "[core][scheduler]") {
  // Slurm NODE_FAIL / PREEMPTED / BOOT_FAIL: the attempt never had a fair run.
  auto wf = make_workflow({{}});
  wf.tasks[0].retries = 0;
  Harness h(std::move(wf), Capacity{1, 0, {}});
  h.start();
  h.finish(0, -1, ExitKind::kLost);
  REQUIRE(h.sched.state(0) == TaskState::kRunning);
  REQUIRE(h.running[0].attempt == 2);
  h.finish(0, -1, ExitKind::kLost);
  REQUIRE(h.running[0].attempt == 3);
  h.finish(0, 1);  // a real failure still uses the (empty) budget
  REQUIRE(h.sched.state(0) == TaskState::kFailed);
  REQUIRE(h.sched.attempts(0) == 3);
}

TEST_CASE("lost attempts are retried for free only a bounded number of times",
          "[core][scheduler]") {
  Harness h(make_workflow({{}}), Capacity{1, 0, {}});
  h.start();
  for (int i = 0; i < 100 && h.is_running(0); ++i) h.finish(0, -1, ExitKind::kLost);
  REQUIRE(h.sched.state(0) == TaskState::kFailed);
  REQUIRE(h.sched.attempts(0) == 6);
}

TEST_CASE("a re-attached running attempt keeps its slots and completes normally",
          "[core][scheduler]") {
  // t0 -> t1: the coordinator died while t0's attempt 2 ran; the backend took it back.
  Harness h(make_workflow({{}, {0}}), Capacity{1, 0, {}});
  h.sched.restore_running(0, 2, h.now);
  h.running.push_back({0, 2});
  h.start();
  REQUIRE(h.running.size() == 1);  // the slot is taken: nothing else launched
  REQUIRE(h.sched.state(0) == TaskState::kRunning);
  h.finish(0, 0);
  REQUIRE(h.sched.state(0) == TaskState::kSucceeded);
  REQUIRE(h.sched.attempts(0) == 2);
  h.finish(1, 0);
  REQUIRE(h.sched.run_state() == RunState::kSucceeded);
}

TEST_CASE("a backend that enforces max_exec_time itself gets no scheduler deadline",
          "[core][scheduler]") {
  auto wf = make_workflow({{}});
  wf.tasks[0].max_exec_time = std::chrono::seconds(10);
  Capacity cap{1, 0, {}};
  cap.enforces_exec_time = true;
  Harness h(std::move(wf), cap);
  h.start();
  h.advance(std::chrono::seconds(60));
  REQUIRE(h.is_running(0));
  h.finish(0, 9, ExitKind::kSignaled);
  REQUIRE(h.sched.state(0) == TaskState::kFailed);
}

// t0 -> t2 <- t1, t0 -> t3: while t0 runs, only t3 waits on nothing else.
TEST_CASE("peek_released_by names the children that only the running parent holds back",
          "[core][scheduler]") {
  Harness h(make_workflow({{}, {}, {0, 1}, {0}}), Capacity{1, 0, {}});
  h.start();
  REQUIRE(h.is_running(0));
  std::vector<Launch> out;
  h.sched.peek_released_by(0, 8, out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].task == 3);
  CHECK(out[0].attempt == 1);

  out.clear();
  h.sched.peek_released_by(1, 8, out);  // t1 is ready, not running: it releases nothing yet
  CHECK(out.empty());

  h.finish(0, 0);  // t3 ready, t1 runs: now t2 waits only on t1
  REQUIRE(h.is_running(1));
  out.clear();
  h.sched.peek_released_by(1, 8, out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].task == 2);
  out.clear();
  h.sched.peek_released_by(1, 0, out);  // the limit holds
  CHECK(out.empty());

  h.finish(1, 1);  // t1 fails: t2 is skipped, and released by nothing
  out.clear();
  h.sched.peek_released_by(1, 8, out);
  CHECK(out.empty());
}

// A running hub whose first children all wait on another parent too: the scan over its
// children is bounded (4n + 16), so a huge fan-out costs nothing per wake-up.
TEST_CASE("peek_released_by looks at a bounded number of children", "[core][scheduler]") {
  std::vector<std::vector<TaskId>> parents{{}, {}};
  for (int i = 0; i < 200; ++i) parents.push_back({0, 1});
  parents.push_back({0});  // task 202: held back by the hub alone
  Harness h(make_workflow(parents), Capacity{1, 0, {}});
  h.start();
  REQUIRE(h.is_running(0));
  std::vector<Launch> out;
  h.sched.peek_released_by(0, 1, out);
  CHECK(out.empty());
  h.sched.peek_released_by(0, 1000, out);
  REQUIRE(out.size() == 1);
  CHECK(out[0].task == 202);
}
