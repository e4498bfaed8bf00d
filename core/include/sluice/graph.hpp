// Graph: the dependency structure of a Workflow in compressed (CSR) form, so that a
// million-task graph costs a few bytes per edge and walking it never allocates.
// Immutable after build; safe to read from any thread.
#pragma once

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

  std::size_t size() const { return parent_offsets_.size() - 1; }
  std::span<const TaskId> parents(TaskId t) const;
  std::span<const TaskId> children(TaskId t) const;

  // Returns one cycle as a closed path (first == last), or nullopt for a DAG.
  std::optional<std::vector<TaskId>> find_cycle() const;

  // Tasks in a topological order. REQUIRES: no cycle.
  std::vector<TaskId> topological_order() const;

 private:
  void build(const std::vector<std::vector<TaskId>>& parents);

  std::vector<std::uint32_t> parent_offsets_, child_offsets_;
  std::vector<TaskId> parent_ids_, child_ids_;
};

}  // namespace sluice
