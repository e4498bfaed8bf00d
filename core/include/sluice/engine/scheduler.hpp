// Scheduler: the deterministic heart of a run. Single-threaded state plus event
// functions named by event; it never sleeps, spawns or touches files. The coordinator
// feeds it completions and the current time, executes the launches and kills it asks
// for, and persists the state changes it emits *before* acting on them.
//
// Tests drive it with a fake backend and a hand-moved clock, and call
// check_invariants() after every step.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <queue>
#include <span>
#include <string>
#include <vector>

#include "sluice/engine/backend.hpp"
#include "sluice/engine/graph.hpp"
#include "sluice/state.hpp"
#include "sluice/workflow.hpp"

namespace sluice {

using TimePoint = std::chrono::steady_clock::time_point;

// What the scheduler wants started: task `task`, attempt number `attempt`.
struct Launch {
  TaskId task = 0;
  std::uint32_t attempt = 0;
};

struct AttemptOutcome {
  TaskState state = TaskState::kSucceeded;
  std::string reason;
};

struct Kill {
  TaskId task = 0;
  std::uint32_t attempt = 0;
};

class Scheduler {
 public:
  // REQUIRES: `workflow` and `graph` outlive the scheduler; graph is acyclic.
  Scheduler(const Workflow& workflow, const Graph& graph, Capacity capacity);

  // Before start(): a task that already finished (resume) or that already used
  // `attempts_used` attempts. Succeeded tasks are never launched again; the others get
  // their full retry budget again and continue the attempt numbering.
  void restore(TaskId task, TaskState state, std::uint32_t attempts_used);

  // A task appended to the workflow and the graph while the run goes on (a dynamic
  // child): it starts waiting for its parents. Call after Graph::add_task().
  void on_task_added(TaskId task);
  // Graph::add_edge(parent, child) was called: `child` now also waits for `parent`.
  // REQUIRES: child has not started (the caller checked it is still waiting).
  void on_dependency_added(TaskId parent, TaskId child);
  // After start(): a task just added (on_task_added) whose parents have all succeeded
  // becomes ready now (a RunDriver's call under a finished parent); otherwise nothing.
  void on_task_added_after_start(TaskId task, TimePoint now);
  // Before start(): attempt `attempt` of `task` is still running (the backend re-attached
  // it after a coordinator restart). Reserves its slots; its completion arrives as usual.
  void restore_running(TaskId task, std::uint32_t attempt, TimePoint now);

  // Computes the initial ready set.
  void start(TimePoint now);

  // Assigns ready tasks to free capacity, marks them running, and returns them.
  // REQUIRES: the caller launches each one (or reports on_launch_failed).
  std::vector<Launch> take_launches();

  // The next (at most) `n` launches take_launches() would consider, without changing
  // anything; lets the coordinator prepare attempt directories while it would idle.
  void peek_ready(std::size_t n, std::vector<Launch>& out) const;
  // Appends (while out.size() < n) the waiting tasks whose one unfinished parent is
  // `parent`: they become ready the moment it succeeds. The next link of a chain can
  // be prepared while the current one runs. Looks at most 4n + 16 of its children.
  void peek_released_by(TaskId parent, std::size_t n, std::vector<Launch>& out) const;

  // The backend accepted a launch: the task moves from queued to running and its
  // max_exec_time starts counting.
  void on_attempt_started(TaskId task, std::uint32_t attempt, TimePoint now);

  // The backend refused a launch; counts as a failed attempt with `reason`.
  void on_launch_failed(TaskId task, std::uint32_t attempt, const std::string& reason,
                        TimePoint now);

  // The attempt's processes are gone, and the coordinator checks what it left (its
  // artifact) before on_attempt_finished(): its slots are free from now on, so the next
  // ready task can start during that check. The task stays running until then, and its
  // dependents still wait for the outcome. Optional; a stale attempt is ignored.
  void on_attempt_exited(TaskId task, std::uint32_t attempt);

  // An attempt ended. Updates the task, releases its slots, readies children or skips
  // descendants, and schedules a retry if any are left. Returns how the attempt itself
  // ended (succeeded, failed or cancelled, with the reason), for the attempt record;
  // a stale completion (unknown attempt) returns nullopt.
  std::optional<AttemptOutcome> on_attempt_finished(const Completion& completion, TimePoint now);

  // Attempts past max_exec_time (to kill; their completion will read "timed out") and
  // ready tasks past max_wait_time (failed now with "no slot").
  std::vector<Kill> on_tick(TimePoint now);

  // Cancels the run: not-yet-started tasks become cancelled; returns attempts to kill.
  std::vector<Kill> on_cancel_requested();

  // The earliest time on_tick() has something to do, or TimePoint::max().
  TimePoint next_deadline() const;

  bool done() const { return finished_ == states_.size(); }
  RunState run_state() const;  // kRunning until done()

  TaskState state(TaskId t) const { return states_[t]; }
  std::uint32_t attempts(TaskId t) const { return attempts_[t]; }
  // Counts per TaskState, indexed by static_cast<int>(state).
  const std::array<std::size_t, kTaskStateCount>& counts() const { return counts_; }

  // Moves out the changes since the last call.
  std::vector<StateChange> drain_changes();
  // The changes drain_changes() would move out, without moving them.
  std::span<const StateChange> pending_changes() const { return changes_; }

  // Aborts (std::abort with a message) if internal bookkeeping is inconsistent.
  void check_invariants() const;

 private:
  // What the scheduler reads of a task on every step, copied out of its TaskSpec: a
  // TaskSpec is hundreds of bytes, so at a million tasks reading it there misses the
  // caches on every launch and completion; these 24 bytes a task stay dense, and a
  // million of them stay under glibc's mmap threshold (32 MiB), so they come from the
  // heap a large load left in huge pages (heap_reserve.hpp), not from fresh small pages.
  struct Needs {
    std::int64_t exec_ms = 0;  // max_exec_time (0: unlimited)
    std::int64_t wait_ms = 0;  // max_wait_time (0: unlimited)
    std::int32_t cpus = 1;
    std::int16_t gpus = 0;     // validated: at most 256
    std::int16_t retries = 0;  // validated: at most 100
  };
  void set_state(TaskId t, TaskState s, std::uint32_t attempt, int exit_code, std::string reason);
  void make_ready(TaskId t, TimePoint now);
  void skip_descendants(TaskId t);
  // t's parents that have not succeeded; a barrier counts as one parent.
  std::uint32_t count_unfinished(TaskId t) const;
  // One parent of `child` (or the barrier it waits on) succeeded.
  void parent_succeeded(TaskId child, TimePoint now);
  bool fits(const Needs& n) const;

  static Needs needs_of(const TaskSpec& spec);
  void release(const Needs& n);

  const Workflow& workflow_;
  const Graph& graph_;
  std::vector<Needs> needs_;
  Capacity capacity_;
  int free_cpus_ = 0;
  int free_gpus_ = 0;
  bool cancelled_ = false;

  std::vector<TaskState> states_;
  std::vector<std::uint32_t> attempts_;
  std::vector<std::uint32_t> retry_base_;  // attempts used before this coordinator took over
  std::vector<std::uint32_t> unfinished_parents_;
  std::vector<std::uint8_t> timing_out_;
  std::vector<std::uint8_t> lost_retries_;      // kLost attempts retried without using retries
  std::vector<std::uint8_t> exited_;            // running, slots released by on_attempt_exited
  std::vector<std::uint32_t> barrier_pending_;  // per Graph barrier: parents not succeeded
  std::vector<std::uint8_t> barrier_skipped_;   // its users were walked by skip_descendants
  std::deque<TaskId> ready_;
  std::array<std::size_t, kTaskStateCount> counts_{};
  std::size_t finished_ = 0;
  std::vector<StateChange> changes_;

  AttemptOutcome finish_attempt(TaskId t, bool ok, int exit_code, std::string reason,
                                TimePoint now);

  struct Deadline {
    TimePoint at;
    TaskId task;
    std::uint32_t attempt;  // exec deadline of this attempt, or the attempt count when readied
    bool wait;              // true: max_wait_time (task must have started by then)
    bool operator>(const Deadline& o) const { return at > o.at; }
  };
  std::priority_queue<Deadline, std::vector<Deadline>, std::greater<Deadline>> deadlines_;
};

}  // namespace sluice
