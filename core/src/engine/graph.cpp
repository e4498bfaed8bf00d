#include "sluice/engine/graph.hpp"

#include <algorithm>
#include <unordered_set>

namespace sluice {
namespace {

// CSR offsets and ids from one list per row.
template <class Lists>
void fill_csr(const Lists& lists, std::vector<std::uint32_t>& offsets, std::vector<TaskId>& ids) {
  offsets.assign(lists.size() + 1, 0);
  for (std::size_t i = 0; i < lists.size(); ++i)
    offsets[i + 1] = offsets[i] + static_cast<std::uint32_t>(lists[i].size());
  ids.resize(offsets.back());
  for (std::size_t i = 0; i < lists.size(); ++i)
    std::copy(lists[i].begin(), lists[i].end(), ids.begin() + offsets[i]);
}

// Rows of `offsets`/`ids` that list each target, in row order: the reverse of a CSR.
template <class Id>
void invert_csr(std::size_t targets, const std::vector<std::uint32_t>& offsets,
                const std::vector<TaskId>& ids, std::vector<std::uint32_t>& rev_offsets,
                std::vector<Id>& rev_ids) {
  rev_offsets.assign(targets + 1, 0);
  for (TaskId p : ids) rev_offsets[p + 1]++;
  for (std::size_t i = 0; i < targets; ++i) rev_offsets[i + 1] += rev_offsets[i];
  rev_ids.resize(rev_offsets[targets]);
  std::vector<std::uint32_t> fill(rev_offsets.begin(), rev_offsets.end() - 1);
  for (std::size_t row = 0; row + 1 < offsets.size(); ++row)
    for (std::uint32_t k = offsets[row]; k < offsets[row + 1]; ++k)
      rev_ids[fill[ids[k]]++] = static_cast<Id>(row);
}

}  // namespace

Graph::Graph(const Workflow& workflow) {
  // The loader gives the instances of one matrix task one shared `after`, and they are
  // consecutive; comparing with the previous task finds them without hashing.
  const std::size_t n = workflow.tasks.size();
  std::vector<std::span<const TaskId>> own(n);
  std::vector<BarrierId> barrier_of(n, kNoBarrier);
  std::vector<std::span<const TaskId>> barrier_lists;
  for (std::size_t i = 0; i < n; ++i) {
    const TaskIdList& after = workflow.tasks[i].after;
    const bool shared_prev =
        i > 0 && after.size() >= 2 && after.shares_with(workflow.tasks[i - 1].after);
    const bool shared_next =
        i + 1 < n && after.size() >= 2 && after.shares_with(workflow.tasks[i + 1].after);
    if (shared_prev) {
      barrier_of[i] = barrier_of[i - 1];
    } else if (shared_next) {
      barrier_of[i] = static_cast<BarrierId>(barrier_lists.size());
      barrier_lists.push_back(after.span());
    } else {
      own[i] = after.span();
    }
  }
  build(own, barrier_of, barrier_lists);
}

Graph::Graph(const std::vector<std::vector<TaskId>>& parents) {
  std::vector<std::span<const TaskId>> own(parents.begin(), parents.end());
  build(own, std::vector<BarrierId>(parents.size(), kNoBarrier), {});
}

void Graph::build(const std::vector<std::span<const TaskId>>& own,
                  const std::vector<BarrierId>& barrier_of,
                  const std::vector<std::span<const TaskId>>& barrier_lists) {
  const std::size_t n = own.size();
  size_ = csr_size_ = n;
  extra_parents_.clear();
  extra_children_.clear();
  fill_csr(own, parent_offsets_, parent_ids_);
  invert_csr(n, parent_offsets_, parent_ids_, child_offsets_, child_ids_);

  barrier_count_ = barrier_lists.size();
  barrier_of_ = barrier_of;
  fill_csr(barrier_lists, barrier_parent_offsets_, barrier_parent_ids_);
  invert_csr(n, barrier_parent_offsets_, barrier_parent_ids_, after_offsets_, after_ids_);
  barrier_user_offsets_.assign(barrier_count_ + 1, 0);
  for (BarrierId b : barrier_of_)
    if (b != kNoBarrier) barrier_user_offsets_[b + 1]++;
  for (std::size_t b = 0; b < barrier_count_; ++b)
    barrier_user_offsets_[b + 1] += barrier_user_offsets_[b];
  barrier_user_ids_.resize(barrier_user_offsets_[barrier_count_]);
  std::vector<std::uint32_t> fill(barrier_user_offsets_.begin(), barrier_user_offsets_.end() - 1);
  for (std::size_t t = 0; t < n; ++t)
    if (barrier_of_[t] != kNoBarrier)
      barrier_user_ids_[fill[barrier_of_[t]]++] = static_cast<TaskId>(t);
}

std::span<const TaskId> Graph::parents(TaskId t) const {
  if (!extra_parents_.empty()) {
    if (auto it = extra_parents_.find(t); it != extra_parents_.end()) return it->second;
  }
  if (t >= csr_size_) return {};
  if (barrier_of_[t] != kNoBarrier) return barrier_parents(barrier_of_[t]);
  return {parent_ids_.data() + parent_offsets_[t], parent_offsets_[t + 1] - parent_offsets_[t]};
}

std::span<const TaskId> Graph::direct_children(TaskId t) const {
  if (!extra_children_.empty()) {
    if (auto it = extra_children_.find(t); it != extra_children_.end()) return it->second;
  }
  if (t >= csr_size_) return {};
  return {child_ids_.data() + child_offsets_[t], child_offsets_[t + 1] - child_offsets_[t]};
}

std::span<const Graph::BarrierId> Graph::barriers_after(TaskId t) const {
  if (t >= csr_size_) return {};
  return {after_ids_.data() + after_offsets_[t], after_offsets_[t + 1] - after_offsets_[t]};
}

std::span<const TaskId> Graph::barrier_parents(BarrierId b) const {
  return {barrier_parent_ids_.data() + barrier_parent_offsets_[b],
          barrier_parent_offsets_[b + 1] - barrier_parent_offsets_[b]};
}

std::span<const TaskId> Graph::barrier_users(BarrierId b) const {
  return {barrier_user_ids_.data() + barrier_user_offsets_[b],
          barrier_user_offsets_[b + 1] - barrier_user_offsets_[b]};
}

Graph::Children Graph::children(TaskId t) const {
  Children c;
  c.g_ = this;
  c.t_ = t;
  return c;
}

Graph::Children::iterator Graph::Children::begin() const {
  iterator it;
  it.g_ = g_;
  it.parent_ = t_;
  it.settle();
  return it;
}

Graph::Children::iterator Graph::Children::end() const {
  iterator it;
  it.g_ = g_;
  it.parent_ = t_;
  it.direct_ = g_->direct_children(t_).size();
  it.barrier_ = g_->barriers_after(t_).size();
  return it;
}

std::size_t Graph::Children::size() const {
  std::size_t n = g_->direct_children(t_).size();
  for (BarrierId b : g_->barriers_after(t_))
    for (TaskId u : g_->barrier_users(b)) n += g_->barrier_of(u) == b;
  return n;
}

void Graph::Children::iterator::settle() {
  if (direct_ < g_->direct_children(parent_).size()) return;
  const auto barriers = g_->barriers_after(parent_);
  while (barrier_ < barriers.size()) {
    const BarrierId b = barriers[barrier_];
    const auto users = g_->barrier_users(b);
    while (user_ < users.size() && g_->barrier_of(users[user_]) != b) ++user_;
    if (user_ < users.size()) return;
    ++barrier_;
    user_ = 0;
  }
}

TaskId Graph::Children::iterator::operator*() const {
  const auto direct = g_->direct_children(parent_);
  if (direct_ < direct.size()) return direct[direct_];
  return g_->barrier_users(g_->barriers_after(parent_)[barrier_])[user_];
}

Graph::Children::iterator& Graph::Children::iterator::operator++() {
  if (direct_ < g_->direct_children(parent_).size()) {
    ++direct_;
  } else {
    ++user_;
  }
  settle();
  return *this;
}

std::vector<TaskId>& Graph::extra(std::unordered_map<TaskId, std::vector<TaskId>>& side, TaskId t,
                                  bool parents) {
  if (auto it = side.find(t); it != side.end()) return it->second;
  std::vector<TaskId> list;
  if (t < csr_size_) {
    // parents(t) is a barrier's list when t waits on one.
    const auto current = parents ? this->parents(t) : direct_children(t);
    list.assign(current.begin(), current.end());
  }
  return side.emplace(t, std::move(list)).first->second;
}

TaskId Graph::add_task(std::span<const TaskId> parents) {
  const auto id = static_cast<TaskId>(size_++);
  if (!parents.empty()) extra_parents_[id].assign(parents.begin(), parents.end());
  for (TaskId p : parents) extra(extra_children_, p, false).push_back(id);
  return id;
}

void Graph::add_edge(TaskId parent, TaskId child) {
  if (const BarrierId b = barrier_of(child); b != kNoBarrier) {
    // The child leaves the barrier: its parents become edges of its own.
    extra(extra_parents_, child, true);
    barrier_of_[child] = kNoBarrier;
    for (TaskId p : barrier_parents(b)) extra(extra_children_, p, false).push_back(child);
  }
  extra(extra_children_, parent, false).push_back(child);
  extra(extra_parents_, child, true).push_back(parent);
}

template <class Visit>
void Graph::for_each_successor(std::size_t v, Visit&& visit) const {
  if (v < size_) {
    const auto t = static_cast<TaskId>(v);
    for (TaskId c : direct_children(t)) visit(std::size_t{c});
    for (BarrierId b : barriers_after(t)) visit(size_ + b);
    return;
  }
  const auto b = static_cast<BarrierId>(v - size_);
  for (TaskId u : barrier_users(b))
    if (barrier_of(u) == b) visit(std::size_t{u});
}

bool Graph::reaches(TaskId from, TaskId target) const {
  // A set, not a mark per node: the walk costs what it visits (usually a few nodes),
  // not the size of the graph, and it runs once per child request.
  std::unordered_set<std::size_t> seen;
  std::vector<std::size_t> stack;
  for_each_successor(from, [&](std::size_t s) { stack.push_back(s); });
  while (!stack.empty()) {
    const std::size_t v = stack.back();
    stack.pop_back();
    if (v == target) return true;
    if (!seen.insert(v).second) continue;
    for_each_successor(v, [&](std::size_t s) {
      if (!seen.count(s)) stack.push_back(s);
    });
  }
  return false;
}

std::optional<std::vector<TaskId>> Graph::find_cycle() const {
  // Iterative DFS over tasks and barriers; a back edge to a node on the stack closes a
  // cycle. The successors of a node are listed when it is entered.
  enum : std::uint8_t { kNew, kOnStack, kDone };
  const std::size_t n = size_ + barrier_count_;
  std::vector<std::uint8_t> mark(n, kNew);
  struct Frame {
    std::size_t node;
    std::size_t begin, next;  // its successors in `succ`
  };
  std::vector<Frame> stack;
  std::vector<std::size_t> succ;
  auto enter = [&](std::size_t v) {
    mark[v] = kOnStack;
    const std::size_t begin = succ.size();
    for_each_successor(v, [&](std::size_t s) { succ.push_back(s); });
    stack.push_back({v, begin, begin});
  };
  for (std::size_t root = 0; root < size_; ++root) {
    if (mark[root] != kNew) continue;
    enter(root);
    while (!stack.empty()) {
      Frame& f = stack.back();
      if (f.next == succ.size()) {
        mark[f.node] = kDone;
        succ.resize(f.begin);
        stack.pop_back();
        continue;
      }
      const std::size_t s = succ[f.next++];
      if (mark[s] == kOnStack) {
        std::vector<TaskId> cycle;
        auto it =
            std::find_if(stack.begin(), stack.end(), [&](const Frame& e) { return e.node == s; });
        for (; it != stack.end(); ++it)
          if (it->node < size_) cycle.push_back(static_cast<TaskId>(it->node));
        cycle.push_back(cycle.front());
        return cycle;
      }
      if (mark[s] == kNew) enter(s);
    }
  }
  return std::nullopt;
}

std::vector<TaskId> Graph::topological_order() const {
  // Kahn's algorithm over tasks and barriers; a barrier counts as one parent of its users.
  const std::size_t n = size_ + barrier_count_;
  std::vector<std::uint32_t> pending(n, 0);
  for (std::size_t v = 0; v < n; ++v) for_each_successor(v, [&](std::size_t s) { pending[s]++; });
  std::vector<std::size_t> queue;
  for (std::size_t v = 0; v < size_; ++v)
    if (pending[v] == 0) queue.push_back(v);
  std::vector<TaskId> order;
  order.reserve(size_);
  for (std::size_t i = 0; i < queue.size(); ++i) {
    if (queue[i] < size_) order.push_back(static_cast<TaskId>(queue[i]));
    for_each_successor(queue[i], [&](std::size_t s) {
      if (--pending[s] == 0) queue.push_back(s);
    });
  }
  return order;
}

}  // namespace sluice
