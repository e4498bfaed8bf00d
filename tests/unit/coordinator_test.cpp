// The coordinator's promises about the store, checked with a FakeBackend that finishes
// every attempt at once: what the store holds at the moment a task launches.
#include <catch2/catch.hpp>

#include <map>

#include "sluice/engine/coordinator.hpp"
#include "support/fake_backend.hpp"
#include "support/store_fixtures.hpp"
#include "support/workflow_builder.hpp"

using namespace sluice;
using sluice::testing::FakeBackend;
using sluice::testing::TempHome;

// A success reaches the store up to 20 ms late (group commit), except where a task
// depends on it: then it is committed before that task starts, so that a crash never
// reruns a parent whose dependents already ran. Here 40 independent tasks keep
// succeeding beside 8 parent/child pairs, and all of it takes a few milliseconds: a
// commit that waited for the interval, or one made only for whichever success happened
// to be pending, would leave a child's parent unrecorded at its launch.
TEST_CASE("a task launches only after its parents' success is in the store",
          "[core][coordinator]") {
  std::vector<std::vector<TaskId>> parents(40);
  for (int k = 0; k < 8; ++k) {
    parents.push_back({});                                         // p_k
    parents.push_back({static_cast<TaskId>(parents.size() - 1)});  // c_k, after p_k
  }
  Workflow wf = sluice::testing::make_workflow(parents);
  wf.text = "# coordinator_test\n";
  // A reduce after every child: many parents at once.
  TaskSpec reduce = wf.tasks.front();
  reduce.name = reduce.group = "reduce";
  reduce.after.clear();
  for (TaskId t = 41; t < wf.tasks.size(); t += 2) reduce.after.push_back(t);
  wf.index[reduce.name] = static_cast<TaskId>(wf.tasks.size());
  wf.tasks.push_back(reduce);

  TempHome home;
  auto store = sluice::testing::open_rw(home);
  auto revision = store->register_workflow(wf);
  REQUIRE(revision);
  const std::string run_id = new_run_id();
  REQUIRE(store->create_run(wf, *revision, run_id, "instant"));

  // When a task with parents launches, it reads the store through a connection of its
  // own, as `sluice get` in another process would, and notes each parent's state.
  Graph graph(wf);
  auto reader = sluice::testing::open_ro(home);
  // task -> parent -> the parent's state in the store when the task launched
  std::map<std::string, std::map<std::string, TaskState>> parent_state_seen;
  FakeBackend::Options two_slots;
  two_slots.capacity = Capacity{2, 0, {}, false};
  FakeBackend backend(two_slots);
  backend.on_launch = [&](const LaunchRequest& r) {
    if (graph.parents(r.task).empty()) return;
    auto tasks = reader->list_tasks(run_id);
    REQUIRE(tasks);
    for (TaskId p : graph.parents(r.task))
      parent_state_seen[wf.tasks[r.task].name][wf.tasks[p].name] = (*tasks)[p].state;
  };
  Coordinator coordinator(*store, backend, wf, run_id);
  CoordinatorOptions options;
  options.use_cache = false;
  auto state = coordinator.run(options);
  REQUIRE(state);
  REQUIRE(*state == RunState::kSucceeded);

  REQUIRE(parent_state_seen.size() == 9);  // c_0..c_7 and reduce
  for (const auto& [task, seen] : parent_state_seen) {
    for (const auto& [parent, s] : seen) {
      INFO(task << " launched while " << parent << " was recorded " << to_string(s));
      CHECK(s == TaskState::kSucceeded);
    }
  }
}
