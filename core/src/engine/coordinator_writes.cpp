// The coordinator's store writes: pending changes gathered into batches, handed to the
// writer thread (group commit) or committed at once, with attempt starts held back.
#include "engine/coordinator_impl.hpp"

#include <algorithm>

#include "sluice/engine/wall_clock.hpp"
#include "store/store_writer.hpp"

namespace sluice {
namespace {

// Cache entries land on random pages of the cache's B-tree (their keys are hashes): filed
// with every 20 ms commit, 50 at a time in a 10,000-task sweep, each one rewrote a page
// of its own, and filing cost the writer more than everything else it does. Held back
// and filed in batches of this many or this old, pages are shared within a batch. The
// run's end and a SIGTERM file the backlog too (~10 us per entry on the critical path,
// hence the modest size); the commit of a parent's success before its dependent starts
// does not (in a chain, the entry's pages doubled that commit). A crash loses at most
// this backlog: those tasks run again in a later run instead of coming from the cache (a
// resumed run never reruns them: it reads the tasks table, not the cache).
constexpr std::size_t kCacheBatch = 1024;
constexpr Millis kCacheBacklogAge{1000};
// Backpressure: while the writer thread still commits the previous batch, the next one
// grows here; past this many rows the coordinator waits for that commit instead of
// queueing more. Unbounded, a writer starved of CPU fell ever further behind (in a
// 100,000-task sweep ~195,000 state changes and 65,000 cache entries waited): memory
// grew with the run and what a crash loses grew with it. One such batch commits in a
// few tens of milliseconds.
constexpr std::size_t kMaxPendingRows = 8192;

std::size_t pending_rows(const RunUpdate& u) {
  return u.new_tasks.size() + u.changes.size() + u.attempt_starts.size() + u.attempt_ends.size() +
         u.cache_entries.size();
}

}  // namespace

bool Coordinator::Impl::gather_changes(bool all_cache) {
  if (!cache_backlog_.empty() &&
      (all_cache || cache_backlog_.size() >= kCacheBatch ||
       std::chrono::steady_clock::now() - cache_backlog_since_ >= kCacheBacklogAge)) {
    auto& out = pending_.cache_entries;
    out.insert(out.end(), std::make_move_iterator(cache_backlog_.begin()),
               std::make_move_iterator(cache_backlog_.end()));
    cache_backlog_.clear();
  }
  auto changes = scheduler_.drain_changes();
  if (pending_.changes.empty()) {
    pending_.changes = std::move(changes);
  } else {  // a batch the writer could not take yet
    pending_.changes.insert(pending_.changes.end(), std::make_move_iterator(changes.begin()),
                            std::make_move_iterator(changes.end()));
  }
  return !pending_.empty();
}

Expected<void> Coordinator::Impl::flush(std::optional<RunState> run_state, bool file_cache) {
  if (!gather_changes(file_cache) && !run_state)
    return writer_ ? writer_->wait() : Expected<void>{};
  pending_.run_state = run_state;
  pending_.now_us = wall_us();
  auto r = commit_now(pending_);
  pending_.clear();
  held_starts_ = 0;
  return r;
}

Expected<void> Coordinator::Impl::commit_now(const RunUpdate& update) {
  return writer_ ? writer_->commit_now(update) : store_.apply(run_id_, update);
}

Expected<bool> Coordinator::Impl::flush_in_background() {
  if (!writer_) {
    if (auto r = flush(std::nullopt); !r) return tl::unexpected(r.error());
    return true;
  }
  if (!gather_changes(false)) return true;
  pending_.now_us = wall_us();
  if (writer_->busy()) {
    if (pending_rows(pending_) < kMaxPendingRows) return false;
    if (auto r = writer_->wait(); !r) return tl::unexpected(r.error());
  }
  // Idle now (only this thread submits): the batch is taken unless a batch failed.
  hold_back_fresh_starts();
  std::vector<TaskId> successes;
  for (const StateChange& c : pending_.changes)
    if (c.state == TaskState::kSucceeded) successes.push_back(c.task);
  auto taken = writer_->try_submit(pending_);
  if (!taken) return taken;
  successes_in_flight_ = std::move(successes);
  // pending_ is empty: the held starts and changes lead the next batch, in their order.
  std::swap(pending_.attempt_starts, held_.attempt_starts);
  std::swap(pending_.changes, held_.changes);
  held_starts_ = pending_.attempt_starts.size();
  return taken;
}

// A started attempt costs the store an insert and an update of its task's row, and its
// end an update of each; in one batch with its end, one insert and one update. Under
// group commit an attempt that outlives the batch that starts it is common (at 100,000
// no-op inproc tasks, 45 of 100), so its start waits for the next batch, once: it is
// recorded one commit later (what a longer commit interval would do). Nothing that
// resume relies on waits: successes are never held, and a resume finds an attempt
// whose start was not recorded by its directory, as under group commit already.
void Coordinator::Impl::hold_back_fresh_starts() {
  held_.attempt_starts.clear();
  held_.changes.clear();
  auto& starts = pending_.attempt_starts;
  if (starts.size() <= held_starts_) return;
  auto& mark = hold_mark_;  // 0: not held, 1: held, 2: not to hold
  auto set = [&](TaskId t, std::uint8_t v) {
    if (t >= mark.size()) mark.resize(std::max<std::size_t>(t + 1, mark.size() * 2), 0);
    mark[t] = v;
  };
  for (const AttemptRecord& e : pending_.attempt_ends) set(e.task, 2);
  for (std::size_t i = 0; i < held_starts_; ++i) set(starts[i].task, 2);
  bool any = false;
  for (std::size_t i = held_starts_; i < starts.size(); ++i) {
    const TaskId t = starts[i].task;
    if (t < mark.size() && mark[t] != 0) continue;
    set(t, 1);
    any = true;
  }
  if (any) {
    auto is_held = [&](TaskId t) { return t < mark.size() && mark[t] == 1; };
    // Moves the held tasks' records from `from` to `to`, keeping the others in order.
    auto move_held = [&](auto& from, auto& to) {
      std::size_t kept = 0;
      for (auto& r : from) {
        if (is_held(r.task)) {
          to.push_back(std::move(r));
        } else {
          if (&from[kept] != &r) from[kept] = std::move(r);  // no self-move
          ++kept;
        }
      }
      from.resize(kept);
    };
    move_held(starts, held_.attempt_starts);
    move_held(pending_.changes, held_.changes);
  }
  for (const AttemptRecord& e : pending_.attempt_ends) mark[e.task] = 0;
  for (const AttemptRecord& a : starts) mark[a.task] = 0;
  for (const AttemptRecord& a : held_.attempt_starts) mark[a.task] = 0;
}

bool Coordinator::Impl::success_pending_for(std::span<const Launch> launches) const {
  std::vector<TaskId>& parents = parents_scratch_;
  parents.clear();
  for (const Launch& l : launches)
    parents.insert(parents.end(), graph_.parents(l.task).begin(), graph_.parents(l.task).end());
  if (parents.empty()) return false;
  std::sort(parents.begin(), parents.end());
  auto is_parent = [&](TaskId t) { return std::binary_search(parents.begin(), parents.end(), t); };
  // Only the launches' own parents count: in a map-reduce, the children's siblings
  // succeed all the time, and waiting for their commit made nearly every launch commit
  // on this thread (908 of 1,000), on the path from a freed slot to its next task.
  auto parent_succeeded = [&](const StateChange& c) {
    return c.state == TaskState::kSucceeded && is_parent(c.task);
  };
  const auto& fresh = scheduler_.pending_changes();
  return std::any_of(fresh.begin(), fresh.end(), parent_succeeded) ||
         std::any_of(pending_.changes.begin(), pending_.changes.end(), parent_succeeded) ||
         (writer_ && writer_->success_in_flight() &&
          std::any_of(successes_in_flight_.begin(), successes_in_flight_.end(), is_parent));
}

}  // namespace sluice
