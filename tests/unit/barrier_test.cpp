// Barriers: the instances of a matrix that run after a group share one parent list, and
// the graph and the scheduler keep it once (N + M) instead of as N x M edges. Every
// test compares a graph with shared lists against the same graph with a list per task.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <random>

#include "sluice/engine/graph.hpp"
#include "sluice/engine/scheduler.hpp"
#include "support/workflow_builder.hpp"

using namespace sluice;
using sluice::testing::make_workflow;

namespace {

// Tasks in groups of consecutive ids; the members of a group share one `after` of
// earlier tasks, as the loader gives a matrix's instances. Returns the parent lists.
std::vector<std::vector<TaskId>> random_groups(std::mt19937& rng, int groups, int max_size,
                                               std::vector<std::pair<TaskId, TaskId>>& ranges) {
  std::vector<std::vector<TaskId>> parents;
  for (int g = 0; g < groups; ++g) {
    const auto first = static_cast<TaskId>(parents.size());
    const int size = 1 + static_cast<int>(rng() % static_cast<unsigned>(max_size));
    std::vector<TaskId> list;
    for (int k = 0; first > 0 && k < 4; ++k)
      if (rng() % 2) list.push_back(static_cast<TaskId>(rng() % first));
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
    for (int i = 0; i < size; ++i) parents.push_back(list);
    ranges.emplace_back(first, static_cast<TaskId>(parents.size()));
  }
  return parents;
}

// The same workflow with each group's members sharing one TaskIdList.
Workflow shared(const std::vector<std::vector<TaskId>>& parents,
                const std::vector<std::pair<TaskId, TaskId>>& ranges) {
  Workflow wf = make_workflow(parents);
  for (auto [first, end] : ranges)
    for (TaskId t = first + 1; t < end; ++t) wf.tasks[t].after = wf.tasks[first].after;
  return wf;
}

std::vector<TaskId> sorted(Graph::Children c) {
  std::vector<TaskId> out(c.begin(), c.end());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

// a0 a1 a2      (a group of 3)
//   \ | /  x    every b after every a: one barrier, not 9 edges
// b0 b1 b2 b3
TEST_CASE("a group after a group is one barrier, and reads like the N x M edges", "[core][graph]") {
  std::vector<std::vector<TaskId>> parents{{}, {}, {}, {0, 1, 2}, {0, 1, 2}, {0, 1, 2}, {0, 1, 2}};
  Workflow wf = shared(parents, {{0, 1}, {1, 2}, {2, 3}, {3, 7}});
  Graph g(wf);
  Graph plain(parents);
  REQUIRE(g.barrier_count() == 1);
  REQUIRE(plain.barrier_count() == 0);
  for (TaskId a = 0; a < 3; ++a) {
    CHECK(g.direct_children(a).empty());
    CHECK(g.barriers_after(a).size() == 1);
  }
  for (TaskId t = 0; t < 7; ++t) {
    auto p = g.parents(t);
    auto q = plain.parents(t);
    CHECK(std::vector<TaskId>(p.begin(), p.end()) == std::vector<TaskId>(q.begin(), q.end()));
    CHECK(sorted(g.children(t)) == sorted(plain.children(t)));
  }
  CHECK_FALSE(g.find_cycle());
  CHECK(g.reaches(0, 6));
  CHECK_FALSE(g.reaches(3, 0));
}

TEST_CASE("a cycle through a barrier is found, barrier left out of the path", "[core][graph]") {
  // a0 after b0; b0 and b1 after a0 and a1 (shared): a0 -> b0 -> a0.
  std::vector<std::vector<TaskId>> parents{{2}, {}, {0, 1}, {0, 1}};
  Workflow wf = shared(parents, {{0, 1}, {1, 2}, {2, 4}});
  Graph g(wf);
  REQUIRE(g.barrier_count() == 1);
  auto cycle = g.find_cycle();
  REQUIRE(cycle);
  REQUIRE(cycle->front() == cycle->back());
  for (std::size_t i = 0; i + 1 < cycle->size(); ++i) {
    auto p = g.parents((*cycle)[i + 1]);
    CHECK(std::find(p.begin(), p.end(), (*cycle)[i]) != p.end());
  }
}

TEST_CASE("an edge added to a barrier's user gives it parents of its own", "[core][graph]") {
  std::vector<std::vector<TaskId>> parents{{}, {}, {0, 1}, {0, 1}, {}};
  Workflow wf = shared(parents, {{0, 1}, {1, 2}, {2, 4}, {4, 5}});
  Graph g(wf);
  g.add_edge(4, 3);
  CHECK(g.barrier_of(3) == Graph::kNoBarrier);
  CHECK(g.barrier_of(2) == 0);
  auto p = g.parents(3);
  CHECK(std::vector<TaskId>(p.begin(), p.end()) == std::vector<TaskId>{0, 1, 4});
  CHECK(sorted(g.children(0)) == std::vector<TaskId>{2, 3});
  CHECK(sorted(g.children(4)) == std::vector<TaskId>{3});
  const TaskId d = g.add_task(std::vector<TaskId>{3});
  CHECK(sorted(g.children(3)) == std::vector<TaskId>{d});
  CHECK(g.reaches(0, d));
}

TEST_CASE("random groups: the barrier graph answers like the plain one", "[core][graph]") {
  std::mt19937 rng(7);
  for (int round = 0; round < 50; ++round) {
    std::vector<std::pair<TaskId, TaskId>> ranges;
    auto parents = random_groups(rng, 20, 5, ranges);
    Workflow wf = shared(parents, ranges);
    Graph g(wf);
    Graph plain(parents);
    for (TaskId t = 0; t < parents.size(); ++t) {
      auto p = g.parents(t);
      REQUIRE(std::vector<TaskId>(p.begin(), p.end()) == parents[t]);
      REQUIRE(sorted(g.children(t)) == sorted(plain.children(t)));
    }
    auto order = g.topological_order();
    REQUIRE(order.size() == parents.size());
    std::vector<std::size_t> at(order.size());
    for (std::size_t i = 0; i < order.size(); ++i) at[order[i]] = i;
    for (TaskId t = 0; t < parents.size(); ++t)
      for (TaskId p : parents[t]) REQUIRE(at[p] < at[t]);
  }
}

TEST_CASE("random groups with failures: a barrier schedules like N x M edges",
          "[core][scheduler]") {
  std::mt19937 rng(11);
  for (int round = 0; round < 40; ++round) {
    std::vector<std::pair<TaskId, TaskId>> ranges;
    auto parents = random_groups(rng, 25, 6, ranges);
    std::vector<std::uint8_t> fails(parents.size());
    for (auto& f : fails) f = rng() % 8 == 0;
    auto run = [&](Workflow wf) {
      Graph g(wf);
      Scheduler s(wf, g, Capacity{3, 0, {}});
      TimePoint now{};
      s.start(now);
      std::vector<Launch> running;
      while (!s.done()) {
        for (auto& l : s.take_launches()) {
          s.on_attempt_started(l.task, l.attempt, now);
          running.push_back(l);
        }
        s.check_invariants();
        REQUIRE_FALSE(running.empty());
        // Finish the lowest task id first: the same order whatever order they started in.
        auto it = std::min_element(running.begin(), running.end(),
                                   [](auto& a, auto& b) { return a.task < b.task; });
        Completion c;
        c.task = it->task;
        c.attempt = it->attempt;
        c.code = fails[it->task] ? 1 : 0;
        running.erase(it);
        s.on_attempt_finished(c, now);
        s.check_invariants();
      }
      std::vector<TaskState> states;
      for (TaskId t = 0; t < parents.size(); ++t) states.push_back(s.state(t));
      return states;
    };
    Workflow with_barriers = shared(parents, ranges);
    REQUIRE(Graph(with_barriers).barrier_count() > 0);
    REQUIRE(run(std::move(with_barriers)) == run(make_workflow(parents)));
  }
}

TEST_CASE("a failed member of a group skips every task after the group, once",
          "[core][scheduler]") {
  // 1,000 tasks after 1,000: a walk per failed parent would be a million steps each.
  constexpr TaskId kN = 1000;
  std::vector<std::vector<TaskId>> parents(2 * kN);
  std::vector<TaskId> group(kN);
  for (TaskId i = 0; i < kN; ++i) group[i] = i;
  for (TaskId i = kN; i < 2 * kN; ++i) parents[i] = group;
  Workflow wf = shared(parents, {{0, kN}, {kN, 2 * kN}});
  for (TaskId i = 1; i < kN; ++i) wf.tasks[i].after = {};  // the first group: no parents
  Graph g(wf);
  REQUIRE(g.barrier_count() == 1);
  Scheduler s(wf, g, Capacity{kN, 0, {}});
  TimePoint now{};
  s.start(now);
  auto launches = s.take_launches();
  REQUIRE(launches.size() == kN);
  for (auto& l : launches) s.on_attempt_started(l.task, l.attempt, now);
  for (auto& l : launches) {
    Completion c;
    c.task = l.task;
    c.attempt = l.attempt;
    c.code = l.task % 2;  // every odd one fails
    s.on_attempt_finished(c, now);
  }
  s.check_invariants();
  REQUIRE(s.done());
  REQUIRE(s.counts()[static_cast<int>(TaskState::kSkipped)] == kN);
  auto changes = s.drain_changes();
  const auto skipped = std::count_if(changes.begin(), changes.end(), [](const StateChange& c) {
    return c.state == TaskState::kSkipped;
  });
  CHECK(skipped == kN);
  auto last = std::find_if(changes.begin(), changes.end(),
                           [](const StateChange& c) { return c.state == TaskState::kSkipped; });
  CHECK(last->reason == "dependency 't1' failed");
}

TEST_CASE("a group after a group starts when the last of the group succeeds", "[core][scheduler]") {
  std::vector<std::vector<TaskId>> parents{{}, {}, {}, {0, 1, 2}, {0, 1, 2}};
  Workflow wf = shared(parents, {{0, 1}, {1, 2}, {2, 3}, {3, 5}});
  Graph g(wf);
  Scheduler s(wf, g, Capacity{8, 0, {}});
  TimePoint now{};
  s.start(now);
  auto first = s.take_launches();
  REQUIRE(first.size() == 3);
  for (auto& l : first) s.on_attempt_started(l.task, l.attempt, now);
  std::vector<Launch> released;
  for (std::size_t i = 0; i < first.size(); ++i) {
    released.clear();
    s.peek_released_by(first[i].task, 8, released);
    CHECK(released.size() == (i + 1 == first.size() ? 2u : 0u));
    Completion c;
    c.task = first[i].task;
    c.attempt = first[i].attempt;
    s.on_attempt_finished(c, now);
    s.check_invariants();
    CHECK(s.state(3) == (i + 1 == first.size() ? TaskState::kReady : TaskState::kWaiting));
  }
  CHECK(s.take_launches().size() == 2);
}
