#include "sluice/engine/graph.hpp"

#include <algorithm>

namespace sluice {

Graph::Graph(const Workflow& workflow) {
  std::vector<std::vector<TaskId>> parents(workflow.tasks.size());
  for (std::size_t i = 0; i < workflow.tasks.size(); ++i) parents[i] = workflow.tasks[i].after;
  build(parents);
}

Graph::Graph(const std::vector<std::vector<TaskId>>& parents) {
  build(parents);
}

void Graph::build(const std::vector<std::vector<TaskId>>& parents) {
  const std::size_t n = parents.size();
  size_ = csr_size_ = n;
  extra_parents_.clear();
  extra_children_.clear();
  parent_offsets_.assign(n + 1, 0);
  child_offsets_.assign(n + 1, 0);
  for (std::size_t i = 0; i < n; ++i) {
    parent_offsets_[i + 1] = parent_offsets_[i] + parents[i].size();
    for (TaskId p : parents[i]) child_offsets_[p + 1]++;
  }
  for (std::size_t i = 0; i < n; ++i) child_offsets_[i + 1] += child_offsets_[i];
  parent_ids_.resize(parent_offsets_[n]);
  child_ids_.resize(child_offsets_[n]);
  std::vector<std::uint32_t> fill(child_offsets_.begin(), child_offsets_.end() - 1);
  for (std::size_t i = 0; i < n; ++i) {
    std::copy(parents[i].begin(), parents[i].end(), parent_ids_.begin() + parent_offsets_[i]);
    for (TaskId p : parents[i]) child_ids_[fill[p]++] = static_cast<TaskId>(i);
  }
}

std::span<const TaskId> Graph::parents(TaskId t) const {
  if (!extra_parents_.empty()) {
    if (auto it = extra_parents_.find(t); it != extra_parents_.end()) return it->second;
  }
  if (t >= csr_size_) return {};
  return {parent_ids_.data() + parent_offsets_[t], parent_offsets_[t + 1] - parent_offsets_[t]};
}

std::span<const TaskId> Graph::children(TaskId t) const {
  if (!extra_children_.empty()) {
    if (auto it = extra_children_.find(t); it != extra_children_.end()) return it->second;
  }
  if (t >= csr_size_) return {};
  return {child_ids_.data() + child_offsets_[t], child_offsets_[t + 1] - child_offsets_[t]};
}

std::vector<TaskId>& Graph::extra(std::unordered_map<TaskId, std::vector<TaskId>>& side, TaskId t,
                                  bool parents) {
  auto [it, fresh] = side.try_emplace(t);
  if (fresh && t < csr_size_) {
    const auto& offsets = parents ? parent_offsets_ : child_offsets_;
    const auto& ids = parents ? parent_ids_ : child_ids_;
    it->second.assign(ids.begin() + offsets[t], ids.begin() + offsets[t + 1]);
  }
  return it->second;
}

TaskId Graph::add_task(std::span<const TaskId> parents) {
  const auto id = static_cast<TaskId>(size_++);
  if (!parents.empty()) extra_parents_[id].assign(parents.begin(), parents.end());
  for (TaskId p : parents) extra(extra_children_, p, false).push_back(id);
  return id;
}

void Graph::add_edge(TaskId parent, TaskId child) {
  extra(extra_children_, parent, false).push_back(child);
  extra(extra_parents_, child, true).push_back(parent);
}

std::optional<std::vector<TaskId>> Graph::find_cycle() const {
  // Iterative DFS over child edges; a back edge to a node on the stack closes a cycle.
  enum : std::uint8_t { kNew, kOnStack, kDone };
  const std::size_t n = size();
  std::vector<std::uint8_t> mark(n, kNew);
  std::vector<std::pair<TaskId, std::uint32_t>> stack;  // node, next child position
  for (TaskId root = 0; root < n; ++root) {
    if (mark[root] != kNew) continue;
    stack.push_back({root, 0});
    mark[root] = kOnStack;
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      auto kids = children(node);
      if (next == kids.size()) {
        mark[node] = kDone;
        stack.pop_back();
        continue;
      }
      TaskId child = kids[next++];
      if (mark[child] == kOnStack) {
        std::vector<TaskId> cycle;
        auto it = std::find_if(stack.begin(), stack.end(),
                               [&](const auto& e) { return e.first == child; });
        for (; it != stack.end(); ++it) cycle.push_back(it->first);
        cycle.push_back(child);
        return cycle;
      }
      if (mark[child] == kNew) {
        mark[child] = kOnStack;
        stack.push_back({child, 0});
      }
    }
  }
  return std::nullopt;
}

std::vector<TaskId> Graph::topological_order() const {
  const std::size_t n = size();
  std::vector<std::uint32_t> pending(n);
  std::vector<TaskId> order;
  order.reserve(n);
  for (TaskId t = 0; t < n; ++t) {
    pending[t] = static_cast<std::uint32_t>(parents(t).size());
    if (pending[t] == 0) order.push_back(t);
  }
  for (std::size_t i = 0; i < order.size(); ++i)
    for (TaskId c : children(order[i]))
      if (--pending[c] == 0) order.push_back(c);
  return order;
}

}  // namespace sluice
