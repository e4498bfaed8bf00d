// The coordinator's promises about the store, checked with a backend that finishes
// every attempt at once: what the store holds at the moment a task launches.
#include <catch2/catch.hpp>

#include <map>

#include "sluice/engine/coordinator.hpp"
#include "support/store_fixtures.hpp"
#include "support/workflow_builder.hpp"

using namespace sluice;
using sluice::testing::TempHome;

namespace {

// Every launched attempt exits 0 by the next poll. When a task with parents launches,
// it reads the store through a connection of its own, as `sluice get` in another
// process would, and notes the state recorded for each parent.
class InstantBackend : public Backend {
 public:
  InstantBackend(const Workflow& wf, const Graph& graph, const std::string& home,
                 std::string run_id)
      : wf_(wf), graph_(graph), run_id_(std::move(run_id)) {
    auto store = RunStore::open(home, RunStore::Mode::kReadOnly);
    REQUIRE(store);
    reader_ = std::move(*store);
  }

  std::string name() const override { return "instant"; }
  Capacity capacity() const override { return Capacity{2, 0, {}}; }
  bool wants_attempt_dir() const override { return false; }

  Expected<std::string> launch(const LaunchRequest& r) override {
    if (!graph_.parents(r.task).empty()) {
      auto tasks = reader_->list_tasks(run_id_);
      REQUIRE(tasks);
      for (TaskId p : graph_.parents(r.task))
        parent_state_seen[wf_.tasks[r.task].name][wf_.tasks[p].name] = (*tasks)[p].state;
    }
    Completion c;
    c.task = r.task;
    c.attempt = r.attempt;
    done_.push_back(c);
    return "instant:" + std::to_string(r.task);
  }
  void poll(std::vector<Completion>& out, std::chrono::milliseconds) override {
    out.insert(out.end(), done_.begin(), done_.end());
    done_.clear();
  }
  void kill(TaskId, std::uint32_t) override {}
  std::size_t in_flight() const override { return done_.size(); }
  void abandon(const std::string&) override {}

  // task -> parent -> the parent's state in the store when the task launched
  std::map<std::string, std::map<std::string, TaskState>> parent_state_seen;

 private:
  const Workflow& wf_;
  const Graph& graph_;
  std::string run_id_;
  std::unique_ptr<RunStore> reader_;
  std::vector<Completion> done_;
};

}  // namespace

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

  Graph graph(wf);
  InstantBackend backend(wf, graph, home.str(), run_id);
  Coordinator coordinator(*store, backend, wf, run_id);
  CoordinatorOptions options;
  options.use_cache = false;
  auto state = coordinator.run(options);
  REQUIRE(state);
  REQUIRE(*state == RunState::kSucceeded);

  REQUIRE(backend.parent_state_seen.size() == 9);  // c_0..c_7 and reduce
  for (const auto& [task, seen] : backend.parent_state_seen) {
    for (const auto& [parent, s] : seen) {
      INFO(task << " launched while " << parent << " was recorded " << to_string(s));
      CHECK(s == TaskState::kSucceeded);
    }
  }
}
