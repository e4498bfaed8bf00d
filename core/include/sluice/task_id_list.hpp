// TaskIdList: an immutable list of TaskIds that copies share. Every instance of a matrix
// task that runs `after` a group has the same parent list; as a plain vector per
// instance, a 100,000-instance matrix after another made 10^10 ids (40 GB). Copies share
// one list; push_back() copies it first when it is shared (copy on write), so a change
// to one task never shows through another. Reading is as cheap as a vector's. Not safe
// to write from one thread while another reads the same TaskIdList object.
#pragma once

#include <algorithm>
#include <initializer_list>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "sluice/state.hpp"

namespace sluice {

class TaskIdList {
 public:
  TaskIdList() = default;
  TaskIdList(std::initializer_list<TaskId> ids) : TaskIdList(std::vector<TaskId>(ids)) {}
  // Implicit, so that `spec.after = some_vector` keeps working.
  TaskIdList(std::vector<TaskId> ids)  // NOLINT(google-explicit-constructor)
      : ids_(ids.empty() ? nullptr : std::make_shared<std::vector<TaskId>>(std::move(ids))) {}

  std::size_t size() const { return ids_ ? ids_->size() : 0; }
  bool empty() const { return size() == 0; }
  const TaskId* begin() const { return ids_ ? ids_->data() : nullptr; }
  const TaskId* end() const { return begin() + size(); }
  TaskId operator[](std::size_t i) const { return (*ids_)[i]; }
  TaskId front() const { return ids_->front(); }
  TaskId back() const { return ids_->back(); }
  std::span<const TaskId> span() const { return {begin(), size()}; }
  std::vector<TaskId> to_vector() const { return {begin(), end()}; }

  void clear() { ids_.reset(); }  // leaves any list it shared as it was
  // Appends `id`; the list is copied first when another TaskIdList shares it.
  void push_back(TaskId id) {
    if (!ids_ || ids_.use_count() > 1) ids_ = std::make_shared<std::vector<TaskId>>(to_vector());
    ids_->push_back(id);
  }

  // True when both share one list (copies of each other, untouched since): the graph
  // keeps a list shared by many tasks once. Two empty lists share nothing.
  bool shares_with(const TaskIdList& other) const { return ids_ && ids_ == other.ids_; }
  // Identifies the shared list (nullptr when empty); equal for lists that share.
  const void* identity() const { return ids_.get(); }

  friend bool operator==(const TaskIdList& a, const TaskIdList& b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
  }

 private:
  // Written only through push_back(), and only while no other TaskIdList shares it.
  std::shared_ptr<std::vector<TaskId>> ids_;
};

}  // namespace sluice
