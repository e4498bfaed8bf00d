// Graph: the dependency structure of a Workflow in compressed (CSR) form, so that a
// million-task graph costs a few bytes per edge and walking it never allocates.
//
// All-to-all dependencies between groups are kept as barriers, not as edges: when many
// tasks share one parent list (the instances of a matrix that runs after a group), the
// list is stored once as a barrier, and each of its parents points at the barrier
// instead of at every user. A 100,000-instance matrix after another costs 200,000
// entries, not 10^10 edges. parents() and children() still answer per task; the
// scheduler and the walks below use the barriers to stay linear.
//
// Tasks inserted while a run goes on (dynamic children) are appended with add_task()
// and add_edge(); nodes they touch keep their full lists in a side table, so the
// declared graph stays compact and untouched nodes pay nothing. Safe to read from any
// thread while nobody adds.
#pragma once

#include <cstdint>
#include <iterator>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "sluice/workflow.hpp"

namespace sluice {

class Graph {
 public:
  using BarrierId = std::uint32_t;
  static constexpr BarrierId kNoBarrier = ~BarrierId{0};

  // The children of one task: its direct children, then the users of every barrier it
  // is a parent of. A forward range; each child appears once per edge.
  class Children {
   public:
    class iterator {
     public:
      using iterator_category = std::forward_iterator_tag;
      using value_type = TaskId;
      using difference_type = std::ptrdiff_t;
      using pointer = const TaskId*;
      using reference = TaskId;
      iterator() = default;
      TaskId operator*() const;
      iterator& operator++();
      iterator operator++(int) {
        iterator old = *this;
        ++*this;
        return old;
      }
      bool operator==(const iterator& o) const {
        return direct_ == o.direct_ && barrier_ == o.barrier_ && user_ == o.user_;
      }

     private:
      friend class Children;
      void settle();  // moves to the next valid position
      const Graph* g_ = nullptr;
      TaskId parent_ = 0;
      std::size_t direct_ = 0, barrier_ = 0, user_ = 0;
    };
    iterator begin() const;
    iterator end() const;
    bool empty() const { return begin() == end(); }
    // Counts them: a step per child.
    std::size_t size() const;

   private:
    friend class Graph;
    const Graph* g_ = nullptr;
    TaskId t_ = 0;
  };

  // Builds parent and child lists from each task's `after`; tasks whose `after` is one
  // shared list (TaskIdList::shares_with) of two or more parents share a barrier.
  explicit Graph(const Workflow& workflow);
  // Builds from explicit parent lists (tests and the SDK); no barriers.
  explicit Graph(const std::vector<std::vector<TaskId>>& parents);

  std::size_t size() const { return size_; }
  // All of t's parents (a barrier's list when t waits on one).
  std::span<const TaskId> parents(TaskId t) const;
  // All of t's children. Walking every task's children costs the edges N x M of a
  // barrier; walks over the whole graph use direct_children() and the barriers instead.
  Children children(TaskId t) const;

  // Children that list t in a parent list of their own (not through a barrier).
  std::span<const TaskId> direct_children(TaskId t) const;
  // The barrier t waits on, or kNoBarrier (then parents(t) is t's own list).
  BarrierId barrier_of(TaskId t) const {
    return t < barrier_of_.size() ? barrier_of_[t] : kNoBarrier;
  }
  // The barriers that wait for t.
  std::span<const BarrierId> barriers_after(TaskId t) const;
  std::size_t barrier_count() const { return barrier_count_; }
  std::span<const TaskId> barrier_parents(BarrierId b) const;
  // The tasks that waited on b when the graph was built. A user that gained an edge of
  // its own since (add_edge) left it: check barrier_of(u) == b.
  std::span<const TaskId> barrier_users(BarrierId b) const;

  // Appends a node whose parents are `parents` (existing nodes); returns its id.
  TaskId add_task(std::span<const TaskId> parents);
  // Adds the edge parent -> child between existing nodes. REQUIRES: it closes no cycle
  // (true when child has no children yet or parent is new). A child that waited on a
  // barrier gets its own copy of the barrier's parents.
  void add_edge(TaskId parent, TaskId child);

  // True when `target` is reachable from `from` along child edges (from itself excluded).
  bool reaches(TaskId from, TaskId target) const;

  // Returns one cycle as a closed path (first == last), or nullopt for a DAG.
  std::optional<std::vector<TaskId>> find_cycle() const;

  // Tasks in a topological order. REQUIRES: no cycle.
  std::vector<TaskId> topological_order() const;

 private:
  void build(const std::vector<std::span<const TaskId>>& own,
             const std::vector<BarrierId>& barrier_of,
             const std::vector<std::span<const TaskId>>& barrier_lists);
  // The list of `t` moved to the side table (copied from CSR on first touch).
  std::vector<TaskId>& extra(std::unordered_map<TaskId, std::vector<TaskId>>& side, TaskId t,
                             bool parents);
  // Calls visit(node) for each node after `v` in the graph whose nodes are the tasks
  // and then the barriers (id size_ + b): edges task -> direct child, task -> barrier it
  // feeds, barrier -> its current users. N + M edges for a barrier.
  template <class Visit>
  void for_each_successor(std::size_t v, Visit&& visit) const;

  std::size_t size_ = 0;
  std::size_t csr_size_ = 0;  // nodes [0, csr_size_) have CSR lists
  std::unordered_map<TaskId, std::vector<TaskId>> extra_parents_, extra_children_;

  std::vector<std::uint32_t> parent_offsets_, child_offsets_;
  std::vector<TaskId> parent_ids_, child_ids_;

  std::size_t barrier_count_ = 0;
  std::vector<BarrierId> barrier_of_;  // per CSR node
  std::vector<std::uint32_t> barrier_parent_offsets_, barrier_user_offsets_;
  std::vector<TaskId> barrier_parent_ids_, barrier_user_ids_;
  std::vector<std::uint32_t> after_offsets_;  // per CSR node: into after_ids_
  std::vector<BarrierId> after_ids_;
};

}  // namespace sluice
