// The coordinator's answer to each fault a backend shows, with a FaultBackend around a
// FakeBackend and a real RunStore: nothing lost, no attempt run twice, and the store
// says what happened.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "sluice/engine/coordinator.hpp"
#include "support/fake_backend.hpp"
#include "support/fault_backend.hpp"
#include "support/store_fixtures.hpp"
#include "support/workflow_builder.hpp"

using namespace sluice;
using sluice::testing::FakeBackend;
using sluice::testing::FaultBackend;
using sluice::testing::TempHome;

namespace {

struct FaultRun {
  FaultRun(const std::vector<std::vector<TaskId>>& parents, int retries) {
    wf = sluice::testing::make_workflow(parents);
    for (TaskSpec& t : wf.tasks) t.retries = retries;
    wf.text = "# coordinator_faults_test\n";
    store = sluice::testing::open_rw(home);
    auto revision = store->register_workflow(wf);
    REQUIRE(revision);
    run_id = new_run_id();
    REQUIRE(store->create_run(wf, *revision, run_id, "fake"));
  }

  RunState run(Backend& backend, bool restore = false, const std::atomic<bool>* stop = nullptr) {
    Coordinator coordinator(*store, backend, wf, run_id);
    if (restore) REQUIRE(coordinator.restore_from_store());
    CoordinatorOptions options;
    options.use_cache = false;
    options.stop = stop;
    auto state = coordinator.run(options);
    INFO((state ? "" : state.error().message));
    REQUIRE(state);
    return *state;
  }

  std::vector<TaskRecord> tasks() {
    auto t = store->list_tasks(run_id);
    REQUIRE(t);
    return *t;
  }
  std::vector<AttemptRecord> attempts(TaskId task) {
    auto a = store->list_attempts(run_id, task);
    REQUIRE(a);
    return *a;
  }

  TempHome home;
  std::unique_ptr<RunStore> store;
  Workflow wf;
  std::string run_id;
};

// No attempt of any task reached the backend twice.
void require_each_attempt_launched_once(const FakeBackend& fake) {
  std::set<FakeBackend::Key> seen;
  for (const auto& a : fake.launches()) {
    INFO("task " << a.task << " attempt " << a.attempt);
    CHECK(seen.insert({a.task, a.attempt}).second);
  }
}

std::vector<TaskId> tasks_whose_first_attempt_failed(FaultRun& r, const std::string& reason) {
  std::vector<TaskId> out;
  for (TaskId t = 0; t < r.wf.tasks.size(); ++t) {
    auto a = r.attempts(t);
    if (!a.empty() && a[0].state == TaskState::kFailed &&
        a[0].reason.find(reason) != std::string::npos)
      out.push_back(t);
  }
  return out;
}

}  // namespace

TEST_CASE("a refused launch uses up an attempt and is retried, nothing of it runs",
          "[core][coordinator][faults]") {
  FaultRun r({{}, {}, {}}, /*retries=*/1);
  // Also with attempt directories made (and logs opened) by the coordinator before launch.
  FakeBackend::Options options;
  options.wants_attempt_dir = GENERATE(false, true);
  FakeBackend fake(options);
  FaultBackend faulty(fake);
  faulty.refuse_launch(2);
  REQUIRE(r.run(faulty) == RunState::kSucceeded);
  CHECK(faulty.refused() == 1);

  auto refused = tasks_whose_first_attempt_failed(r, "launch failed: injected: launch refused");
  REQUIRE(refused.size() == 1);
  const TaskId t = refused[0];
  CHECK(fake.launch_count(t, 1) == 0);  // never reached the backend
  CHECK(fake.launch_count(t, 2) == 1);
  for (const TaskRecord& rec : r.tasks()) {
    CHECK(rec.state == TaskState::kSucceeded);
    CHECK(rec.attempts == (rec.index == t ? 2u : 1u));
  }
  require_each_attempt_launched_once(fake);
}

TEST_CASE("a refused launch without retries fails the task and skips its dependents",
          "[core][coordinator][faults]") {
  FaultRun r({{}, {0}}, /*retries=*/0);
  FakeBackend fake;
  FaultBackend faulty(fake);
  faulty.refuse_launch(1, "no such partition");
  REQUIRE(r.run(faulty) == RunState::kFailed);
  auto tasks = r.tasks();
  CHECK(tasks[0].state == TaskState::kFailed);
  CHECK(tasks[0].reason == "launch failed: no such partition");
  CHECK(tasks[1].state == TaskState::kSkipped);
  CHECK(fake.launches().empty());
  CHECK(fake.in_flight() == 0);
}

TEST_CASE("a lost attempt is run again without using up a retry", "[core][coordinator][faults]") {
  FaultRun r({{}, {}, {1}}, /*retries=*/0);
  FakeBackend fake;
  FaultBackend faulty(fake);
  faulty.lose(1, 1);
  REQUIRE(r.run(faulty) == RunState::kSucceeded);
  CHECK(faulty.lost() == 1);

  auto tasks = r.tasks();
  CHECK(tasks[1].state == TaskState::kSucceeded);
  CHECK(tasks[1].attempts == 2);
  auto a = r.attempts(1);
  REQUIRE(a.size() == 2);
  CHECK(a[0].state == TaskState::kFailed);
  CHECK(a[0].reason == "injected: lost");
  CHECK(a[1].state == TaskState::kSucceeded);
  CHECK(fake.launch_count(1) == 2);
  CHECK(fake.launch_count(0) == 1);
  CHECK(fake.launch_count(2) == 1);  // its dependent ran once, after the second attempt
  require_each_attempt_launched_once(fake);
}

TEST_CASE("an attempt lost again and again is retried for free only so often",
          "[core][coordinator][faults]") {
  FaultRun r({{}}, /*retries=*/0);
  FakeBackend fake;
  FaultBackend faulty(fake);
  for (std::uint32_t a = 1; a <= 10; ++a) faulty.lose(0, a);
  REQUIRE(r.run(faulty) == RunState::kFailed);
  // Five losses are free (the scheduler's kMaxLostRetries); the sixth uses the task's
  // only attempt.
  CHECK(faulty.lost() == 6);
  CHECK(fake.launch_count(0) == 6);
  auto tasks = r.tasks();
  CHECK(tasks[0].state == TaskState::kFailed);
  CHECK(tasks[0].attempts == 6);
  CHECK(tasks[0].reason == "injected: lost");
  require_each_attempt_launched_once(fake);
}

TEST_CASE("a batch that half fails: the refused elements are retried, the others run once",
          "[core][coordinator][faults]") {
  FaultRun r({{}, {}, {}, {}}, /*retries=*/1);
  FakeBackend fake;  // 4 cpus: the four roots go in one batch
  FaultBackend faulty(fake);
  faulty.fail_batch({1, 3});
  REQUIRE(r.run(faulty) == RunState::kSucceeded);
  CHECK(faulty.refused() == 2);

  auto failed = tasks_whose_first_attempt_failed(r, "launch failed: injected: batch element");
  REQUIRE(failed.size() == 2);
  for (TaskId t : failed) {
    CHECK(fake.launch_count(t, 1) == 0);
    CHECK(fake.launch_count(t, 2) == 1);
  }
  for (const TaskRecord& rec : r.tasks()) {
    const bool refused = std::count(failed.begin(), failed.end(), rec.index) > 0;
    CHECK(rec.state == TaskState::kSucceeded);
    CHECK(rec.attempts == (refused ? 2u : 1u));
    CHECK(fake.launch_count(rec.index) == 1);
  }
  require_each_attempt_launched_once(fake);
}

TEST_CASE("after a restart, attempts are re-attached, or abandoned and run again",
          "[core][coordinator][faults]") {
  FaultRun r({{}, {}, {0, 1}}, /*retries=*/0);
  // The first coordinator stops (SIGTERM) while t0 and t1 run: their records stay running.
  {
    FakeBackend first;
    first.script = [](const FakeBackend::Attempt&) { return FakeBackend::held(); };
    std::atomic<bool> stop{false};
    first.on_poll = [&](FakeBackend& f) {
      if (f.running().size() == 2) stop = true;
    };
    REQUIRE(r.run(first, false, &stop) == RunState::kRunning);
    REQUIRE(first.launches().size() == 2);
    for (TaskId t : {0u, 1u}) {
      auto a = r.attempts(t);
      REQUIRE(a.size() == 1);
      CHECK(a[0].state == TaskState::kRunning);
      CHECK(a[0].handle == "fake:" + std::to_string(t) + ":1");
    }
  }

  SECTION("re-attached: they finish where they ran, nothing is launched again") {
    FakeBackend second;
    REQUIRE(r.run(second, /*restore=*/true) == RunState::kSucceeded);
    CHECK(second.abandoned().empty());
    for (TaskId t : {0u, 1u}) {
      REQUIRE(second.launch_count(t) == 1);
      CHECK(second.launch_count(t, 1) == 1);
      CHECK(r.tasks()[t].attempts == 1);
    }
    for (const auto& a : second.launches()) CHECK(a.reattached == (a.task != 2));
    CHECK(r.tasks()[2].state == TaskState::kSucceeded);
  }

  SECTION("re-attach fails: abandoned, recorded lost, run again once") {
    FakeBackend second;
    FaultBackend faulty(second);
    faulty.fail_reattach();
    REQUIRE(r.run(faulty, /*restore=*/true) == RunState::kSucceeded);
    std::multiset<std::string> abandoned(second.abandoned().begin(), second.abandoned().end());
    CHECK(abandoned == std::multiset<std::string>{"fake:0:1", "fake:1:1"});
    for (TaskId t : {0u, 1u}) {
      auto a = r.attempts(t);
      REQUIRE(a.size() == 2);
      CHECK(a[0].state == TaskState::kFailed);
      CHECK(a[0].reason == "lost: the coordinator stopped while it ran");
      CHECK(a[1].state == TaskState::kSucceeded);
      CHECK(second.launch_count(t, 1) == 0);
      CHECK(second.launch_count(t, 2) == 1);
    }
    CHECK(r.tasks()[2].state == TaskState::kSucceeded);
    CHECK(second.launch_count(2) == 1);
    require_each_attempt_launched_once(second);
  }
}

TEST_CASE("a hanging launch or poll delays the run but loses and repeats nothing",
          "[core][coordinator][faults]") {
  FaultRun r({{}, {0}, {0}, {1, 2}}, /*retries=*/0);
  FakeBackend fake;
  FaultBackend faulty(fake);
  const auto begin = std::chrono::steady_clock::now();
  std::thread releaser;
  SECTION("for a while") {
    faulty.hang_next(FaultBackend::Call::kLaunch, std::chrono::milliseconds(150));
    faulty.hang_next(FaultBackend::Call::kPoll, std::chrono::milliseconds(150));
    REQUIRE(r.run(faulty) == RunState::kSucceeded);
    CHECK(std::chrono::steady_clock::now() - begin >= std::chrono::milliseconds(300));
  }
  SECTION("until released") {
    faulty.hang_next(FaultBackend::Call::kPoll, std::chrono::minutes(5));
    releaser = std::thread([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      faulty.release();
    });
    REQUIRE(r.run(faulty) == RunState::kSucceeded);
    releaser.join();
    CHECK(std::chrono::steady_clock::now() - begin < std::chrono::minutes(1));
    CHECK(faulty.hung() == 1);
  }
  for (const TaskRecord& rec : r.tasks()) {
    CHECK(rec.state == TaskState::kSucceeded);
    CHECK(rec.attempts == 1);
    CHECK(fake.launch_count(rec.index) == 1);
  }
}
