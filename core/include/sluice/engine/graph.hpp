// Graph: the dependency structure of a Workflow in compressed (CSR) form, so that a
// million-task graph costs a few bytes per edge and walking it never allocates.
// Tasks inserted while a run goes on (dynamic children) are appended with add_task()
// and add_edge(); nodes they touch keep their full lists in a side table, so the
// declared graph stays compact and untouched nodes pay nothing. Safe to read from any
// thread while nobody adds.
#pragma once

#include <unordered_map>

#include <optional>
#include <span>
#include <vector>

#include "sluice/workflow.hpp"

namespace sluice {

class Graph {
 public:
  // Builds parent and child lists from each task's `after`.
  explicit Graph(const Workflow& workflow);
  // Builds from explicit parent lists (tests and the SDK).
  explicit Graph(const std::vector<std::vector<TaskId>>& parents);

  std::size_t size() const { return size_; }
  std::span<const TaskId> parents(TaskId t) const;
  std::span<const TaskId> children(TaskId t) const;

  // Appends a node whose parents are `parents` (existing nodes); returns its id.
  TaskId add_task(std::span<const TaskId> parents);
  // Adds the edge parent -> child between existing nodes. REQUIRES: it closes no cycle
  // (true when child has no children yet or parent is new).
  void add_edge(TaskId parent, TaskId child);

  // Returns one cycle as a closed path (first == last), or nullopt for a DAG.
  std::optional<std::vector<TaskId>> find_cycle() const;

  // Tasks in a topological order. REQUIRES: no cycle.
  std::vector<TaskId> topological_order() const;

 private:
  void build(const std::vector<std::vector<TaskId>>& parents);
  // The list of `t` moved to the side table (copied from CSR on first touch).
  std::vector<TaskId>& extra(std::unordered_map<TaskId, std::vector<TaskId>>& side, TaskId t,
                             bool parents);

  std::size_t size_ = 0;
  std::size_t csr_size_ = 0;  // nodes [0, csr_size_) have CSR lists
  std::unordered_map<TaskId, std::vector<TaskId>> extra_parents_, extra_children_;

  std::vector<std::uint32_t> parent_offsets_, child_offsets_;
  std::vector<TaskId> parent_ids_, child_ids_;
};

}  // namespace sluice
