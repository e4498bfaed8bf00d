#include "sluice/engine/scheduler.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "sluice/engine/counted.hpp"

namespace sluice {
namespace {

// How far past a ready task that does not fit we look for one that does. Bounded so a
// huge ready queue of big tasks never makes take_launches() quadratic.
constexpr std::size_t kBackfillWindow = 64;

// How many lost attempts (ExitKind::kLost) of one task are retried for free.
constexpr std::uint8_t kMaxLostRetries = 5;

[[noreturn]] void invariant_failed(const char* what, TaskId t) {
  std::fprintf(stderr, "scheduler invariant violated: %s (task %u)\n", what, t);
  std::abort();
}

}  // namespace

Scheduler::Scheduler(const Workflow& workflow, const Graph& graph, Capacity capacity)
    : workflow_(workflow),
      graph_(graph),
      needs_(workflow.tasks.size()),
      capacity_(std::move(capacity)),
      free_cpus_(capacity_.cpus),
      free_gpus_(capacity_.gpus),
      states_(workflow.tasks.size(), TaskState::kWaiting),
      attempts_(workflow.tasks.size(), 0),
      retry_base_(workflow.tasks.size(), 0),
      unfinished_parents_(workflow.tasks.size(), 0),
      timing_out_(workflow.tasks.size(), 0),
      lost_retries_(workflow.tasks.size(), 0),
      exited_(workflow.tasks.size(), 0),
      barrier_pending_(graph.barrier_count(), 0),
      barrier_skipped_(graph.barrier_count(), 0) {
  counts_[static_cast<int>(TaskState::kWaiting)] = states_.size();
  for (std::size_t t = 0; t < needs_.size(); ++t) needs_[t] = needs_of(workflow.tasks[t]);
  for (Graph::BarrierId b = 0; b < barrier_pending_.size(); ++b)
    barrier_pending_[b] = static_cast<std::uint32_t>(graph.barrier_parents(b).size());
}

Scheduler::Needs Scheduler::needs_of(const TaskSpec& spec) {
  Needs n;
  n.cpus = spec.cpus;
  n.gpus = static_cast<std::int16_t>(std::clamp(spec.gpus, 0, 32767));
  n.retries = static_cast<std::int16_t>(std::clamp(spec.retries, 0, 32767));
  n.exec_ms = spec.max_exec_time.count();
  n.wait_ms = spec.max_wait_time.count();
  return n;
}

void Scheduler::restore(TaskId task, TaskState state, std::uint32_t attempts_used) {
  attempts_[task] = attempts_used;
  retry_base_[task] = attempts_used;
  if (state == states_[task]) return;
  counts_[static_cast<int>(states_[task])]--;
  counts_[static_cast<int>(state)]++;
  if (is_terminal(state)) finished_++;
  if (state == TaskState::kSucceeded)
    for (Graph::BarrierId b : graph_.barriers_after(task)) barrier_pending_[b]--;
  states_[task] = state;
}

void Scheduler::on_task_added(TaskId task) {
  if (task >= states_.size()) {
    const std::size_t n = task + 1;
    states_.resize(n, TaskState::kWaiting);
    attempts_.resize(n, 0);
    retry_base_.resize(n, 0);
    unfinished_parents_.resize(n, 0);
    timing_out_.resize(n, 0);
    lost_retries_.resize(n, 0);
    exited_.resize(n, 0);
    needs_.resize(n);
    counts_[static_cast<int>(TaskState::kWaiting)]++;
  }
  needs_[task] = needs_of(workflow_.tasks[task]);
  unfinished_parents_[task] = count_unfinished(task);
}

void Scheduler::on_dependency_added(TaskId /*parent*/, TaskId child) {
  // Counted again: a child that waited on a barrier now has parents of its own.
  unfinished_parents_[child] = count_unfinished(child);
}

void Scheduler::on_task_added_after_start(TaskId task, TimePoint now) {
  if (states_[task] == TaskState::kWaiting && unfinished_parents_[task] == 0 && !cancelled_)
    make_ready(task, now);
}

std::uint32_t Scheduler::count_unfinished(TaskId t) const {
  if (const auto b = graph_.barrier_of(t); b != Graph::kNoBarrier)
    return barrier_pending_[b] > 0 ? 1 : 0;
  std::uint32_t pending = 0;
  for (TaskId p : graph_.parents(t))
    if (states_[p] != TaskState::kSucceeded) pending++;
  return pending;
}

void Scheduler::parent_succeeded(TaskId child, TimePoint now) {
  if (--unfinished_parents_[child] == 0 && states_[child] == TaskState::kWaiting)
    make_ready(child, now);
}

void Scheduler::restore_running(TaskId task, std::uint32_t attempt, TimePoint now) {
  restore(task, TaskState::kRunning, attempt);
  retry_base_[task] = attempt - 1;  // the re-attached attempt is the first of a fresh budget
  const Needs& n = needs_[task];
  free_cpus_ -= n.cpus;
  free_gpus_ -= n.gpus;
  if (n.exec_ms > 0 && !capacity_.enforces_exec_time)
    deadlines_.push({now + Millis(n.exec_ms), task, attempt, false});
}

void Scheduler::start(TimePoint now) {
  const TaskId n = static_cast<TaskId>(states_.size());
  for (Graph::BarrierId b = 0; b < barrier_pending_.size(); ++b) {
    std::uint32_t pending = 0;
    for (TaskId p : graph_.barrier_parents(b))
      if (states_[p] != TaskState::kSucceeded) pending++;
    barrier_pending_[b] = pending;
  }
  for (TaskId t = 0; t < n; ++t) unfinished_parents_[t] = count_unfinished(t);
  for (TaskId t = 0; t < n; ++t) {
    if (is_terminal(states_[t]) && states_[t] != TaskState::kSucceeded) skip_descendants(t);
  }
  for (TaskId t = 0; t < n; ++t)
    if (states_[t] == TaskState::kWaiting && unfinished_parents_[t] == 0) make_ready(t, now);
}

bool Scheduler::fits(const Needs& n) const {
  return n.cpus <= free_cpus_ && n.gpus <= free_gpus_;
}

void Scheduler::release(const Needs& n) {
  free_cpus_ += n.cpus;
  free_gpus_ += n.gpus;
}

std::vector<Launch> Scheduler::take_launches() {
  std::vector<Launch> out;
  std::size_t skipped = 0;  // ready tasks left in front because they did not fit
  while (skipped < ready_.size() && free_cpus_ > 0) {
    auto it = ready_.begin() + static_cast<std::ptrdiff_t>(skipped);
    TaskId t = *it;
    if (states_[t] != TaskState::kReady) {  // failed by max_wait_time or cancelled meanwhile
      ready_.erase(it);
      continue;
    }
    const Needs& spec = needs_[t];
    if (spec.cpus > capacity_.cpus || spec.gpus > capacity_.gpus) {
      ready_.erase(it);
      set_state(t, TaskState::kFailed, attempts_[t], 0,
                "no slot: needs " + counted(spec.cpus, "cpu", "cpus") + " and " +
                    counted(spec.gpus, "GPU", "GPUs") + ", the backend offers " +
                    std::to_string(capacity_.cpus) + " and " + std::to_string(capacity_.gpus));
      skip_descendants(t);
      continue;
    }
    if (!fits(spec)) {
      if (++skipped > kBackfillWindow) break;
      continue;
    }
    ready_.erase(it);
    free_cpus_ -= spec.cpus;
    free_gpus_ -= spec.gpus;
    attempts_[t]++;
    timing_out_[t] = 0;
    set_state(t, TaskState::kQueued, attempts_[t], 0, {});
    out.push_back({t, attempts_[t]});
  }
  return out;
}

void Scheduler::peek_ready(std::size_t n, std::vector<Launch>& out) const {
  for (std::size_t i = 0; i < ready_.size() && out.size() < n; ++i)
    if (states_[ready_[i]] == TaskState::kReady)
      out.push_back({ready_[i], attempts_[ready_[i]] + 1});
}

void Scheduler::peek_released_by(TaskId parent, std::size_t n, std::vector<Launch>& out) const {
  if (parent >= states_.size()) return;
  const TaskState ps = states_[parent];
  if (ps != TaskState::kRunning && ps != TaskState::kQueued) return;
  // A hub with 100,000 children that also wait on other parents would otherwise be
  // scanned whole on every wake-up while it runs: look at a bounded prefix.
  std::size_t budget = 4 * n + 16;
  auto consider = [&](TaskId c) {  // false: stop looking
    if (out.size() >= n || budget == 0) return false;
    --budget;
    if (states_[c] == TaskState::kWaiting && unfinished_parents_[c] == 1)
      out.push_back({c, attempts_[c] + 1});
    return true;
  };
  for (TaskId c : graph_.direct_children(parent))
    if (!consider(c)) return;
  for (Graph::BarrierId b : graph_.barriers_after(parent)) {
    if (barrier_pending_[b] != 1) continue;  // it waits for other parents too
    for (TaskId u : graph_.barrier_users(b))
      if (graph_.barrier_of(u) == b && !consider(u)) return;
  }
}

void Scheduler::on_attempt_started(TaskId task, std::uint32_t attempt, TimePoint now) {
  if (states_[task] != TaskState::kQueued || attempts_[task] != attempt) return;
  set_state(task, TaskState::kRunning, attempt, 0, {});
  const std::int64_t limit = needs_[task].exec_ms;
  if (limit > 0 && !capacity_.enforces_exec_time)
    deadlines_.push({now + Millis(limit), task, attempt, false});
}

void Scheduler::on_launch_failed(TaskId task, std::uint32_t attempt, const std::string& reason,
                                 TimePoint now) {
  if (attempts_[task] != attempt || is_terminal(states_[task])) return;
  finish_attempt(task, false, -1, "launch failed: " + reason, now);
}

void Scheduler::on_attempt_exited(TaskId t, std::uint32_t attempt) {
  if (t >= states_.size() || attempts_[t] != attempt || exited_[t]) return;
  if (states_[t] != TaskState::kRunning && states_[t] != TaskState::kQueued) return;
  exited_[t] = 1;
  release(needs_[t]);
}

std::optional<AttemptOutcome> Scheduler::on_attempt_finished(const Completion& c, TimePoint now) {
  const TaskId t = c.task;
  if (t >= states_.size() || attempts_[t] != c.attempt) return std::nullopt;
  if (states_[t] != TaskState::kRunning && states_[t] != TaskState::kQueued) return std::nullopt;
  std::string reason;
  if (timing_out_[t]) {
    reason = "timed out after " + format_duration(workflow_.tasks[t].max_exec_time);
  } else if (!c.failure.empty()) {
    reason = c.failure;
  } else if (c.kind == ExitKind::kExited) {
    if (c.code != 0) reason = "exit code " + std::to_string(c.code);
  } else if (c.kind == ExitKind::kSignaled) {
    reason = c.reason.empty() ? "killed by signal " + std::to_string(c.code) : c.reason;
  } else {
    reason = c.reason.empty() ? "lost" : c.reason;
  }
  const bool ok = c.ok() && !timing_out_[t];
  // The attempt never had a fair run (node failure, preemption): it does not count
  // against the task's retries, up to kMaxLostRetries times in a row.
  if (!ok && c.kind == ExitKind::kLost && !timing_out_[t] && !cancelled_ &&
      lost_retries_[t] < kMaxLostRetries) {
    lost_retries_[t]++;
    retry_base_[t]++;
  }
  return finish_attempt(t, ok, c.kind == ExitKind::kExited ? c.code : -1, std::move(reason), now);
}

AttemptOutcome Scheduler::finish_attempt(TaskId t, bool ok, int exit_code, std::string reason,
                                         TimePoint now) {
  const Needs& spec = needs_[t];
  if (!exited_[t]) release(spec);
  exited_[t] = 0;
  timing_out_[t] = 0;
  if (cancelled_) {
    set_state(t, TaskState::kCancelled, attempts_[t], exit_code, "cancelled");
    return {TaskState::kCancelled, "cancelled"};
  }
  if (ok) {
    set_state(t, TaskState::kSucceeded, attempts_[t], 0, {});
    for (TaskId child : graph_.direct_children(t)) parent_succeeded(child, now);
    // A barrier's users count it as one parent: N + M steps for a group after a group.
    for (Graph::BarrierId b : graph_.barriers_after(t))
      if (--barrier_pending_[b] == 0)
        for (TaskId u : graph_.barrier_users(b))
          if (graph_.barrier_of(u) == b) parent_succeeded(u, now);
    return {TaskState::kSucceeded, {}};
  }
  if (attempts_[t] - retry_base_[t] <= static_cast<std::uint32_t>(spec.retries)) {
    set_state(t, TaskState::kReady, attempts_[t], exit_code,
              "retrying after attempt " + std::to_string(attempts_[t]) + ": " + reason);
    ready_.push_back(t);
    return {TaskState::kFailed, std::move(reason)};
  }
  set_state(t, TaskState::kFailed, attempts_[t], exit_code, reason);
  skip_descendants(t);
  return {TaskState::kFailed, std::move(reason)};
}

void Scheduler::make_ready(TaskId t, TimePoint now) {
  set_state(t, TaskState::kReady, attempts_[t], 0, {});
  ready_.push_back(t);
  const std::int64_t wait = needs_[t].wait_ms;
  if (wait > 0) deadlines_.push({now + Millis(wait), t, attempts_[t], true});
}

void Scheduler::skip_descendants(TaskId t) {
  const std::string reason =
      "dependency '" + workflow_.tasks[t].name + "' " + std::string(to_string(states_[t]));
  std::vector<TaskId> stack;
  auto push_children = [&](TaskId x) {
    for (TaskId c : graph_.direct_children(x)) stack.push_back(c);
    // A barrier's users are walked once: after that none of them is waiting, and the
    // other parents of the barrier would only walk them again (N x M steps).
    for (Graph::BarrierId b : graph_.barriers_after(x)) {
      if (barrier_skipped_[b]) continue;
      barrier_skipped_[b] = 1;
      for (TaskId u : graph_.barrier_users(b))
        if (graph_.barrier_of(u) == b) stack.push_back(u);
    }
  };
  push_children(t);
  while (!stack.empty()) {
    TaskId c = stack.back();
    stack.pop_back();
    if (states_[c] != TaskState::kWaiting) continue;
    set_state(c, TaskState::kSkipped, attempts_[c], 0, reason);
    push_children(c);
  }
}

std::vector<Kill> Scheduler::on_tick(TimePoint now) {
  std::vector<Kill> kills;
  while (!deadlines_.empty() && deadlines_.top().at <= now) {
    Deadline d = deadlines_.top();
    deadlines_.pop();
    const TaskId t = d.task;
    if (d.wait) {
      if (states_[t] != TaskState::kReady || attempts_[t] != d.attempt) continue;
      set_state(
          t, TaskState::kFailed, attempts_[t], 0,
          "no slot: could not start within " + format_duration(workflow_.tasks[t].max_wait_time));
      skip_descendants(t);
    } else if (states_[t] == TaskState::kRunning && attempts_[t] == d.attempt && !timing_out_[t]) {
      timing_out_[t] = 1;
      kills.push_back({t, d.attempt});
    }
  }
  return kills;
}

std::vector<Kill> Scheduler::on_cancel_requested() {
  std::vector<Kill> kills;
  if (cancelled_) return kills;
  cancelled_ = true;
  for (TaskId t = 0; t < states_.size(); ++t) {
    TaskState s = states_[t];
    if (s == TaskState::kRunning || s == TaskState::kQueued)
      kills.push_back({t, attempts_[t]});
    else if (!is_terminal(s))
      set_state(t, TaskState::kCancelled, attempts_[t], 0, "cancelled");
  }
  ready_.clear();
  return kills;
}

TimePoint Scheduler::next_deadline() const {
  return deadlines_.empty() ? TimePoint::max() : deadlines_.top().at;
}

RunState Scheduler::run_state() const {
  if (!done()) return RunState::kRunning;
  if (cancelled_) return RunState::kCancelled;
  if (counts_[static_cast<int>(TaskState::kSucceeded)] == states_.size())
    return RunState::kSucceeded;
  return RunState::kFailed;
}

std::vector<StateChange> Scheduler::drain_changes() {
  std::vector<StateChange> out;
  out.swap(changes_);
  return out;
}

void Scheduler::set_state(TaskId t, TaskState s, std::uint32_t attempt, int exit_code,
                          std::string reason) {
  const TaskState old = states_[t];
  counts_[static_cast<int>(old)]--;
  counts_[static_cast<int>(s)]++;
  if (!is_terminal(old) && is_terminal(s)) finished_++;
  states_[t] = s;
  changes_.push_back({t, s, attempt, exit_code, std::move(reason)});
}

void Scheduler::check_invariants() const {
  std::array<std::size_t, kTaskStateCount> counts{};
  std::size_t finished = 0;
  int used_cpus = 0, used_gpus = 0;
  // Per barrier once, not per user: a group after a group stays linear to check.
  std::vector<std::uint8_t> barrier_done(barrier_pending_.size()),
      barrier_bad(barrier_pending_.size());
  for (Graph::BarrierId b = 0; b < barrier_pending_.size(); ++b) {
    std::uint32_t pending = 0;
    for (TaskId p : graph_.barrier_parents(b)) {
      if (states_[p] != TaskState::kSucceeded) pending++;
      if (is_terminal(states_[p]) && states_[p] != TaskState::kSucceeded) barrier_bad[b] = 1;
    }
    if (pending != barrier_pending_[b]) invariant_failed("barrier count out of sync", b);
    barrier_done[b] = pending == 0;
  }
  for (TaskId t = 0; t < states_.size(); ++t) {
    const Graph::BarrierId barrier = graph_.barrier_of(t);
    const TaskState s = states_[t];
    counts[static_cast<int>(s)]++;
    if (is_terminal(s)) finished++;
    if ((s == TaskState::kRunning || s == TaskState::kQueued) && !exited_[t]) {
      used_cpus += workflow_.tasks[t].cpus;
      used_gpus += workflow_.tasks[t].gpus;
    }
    if (s == TaskState::kReady || s == TaskState::kQueued || s == TaskState::kRunning ||
        s == TaskState::kSucceeded) {
      if (barrier != Graph::kNoBarrier && !barrier_done[barrier])
        invariant_failed("started before a parent", t);
      if (barrier == Graph::kNoBarrier)
        for (TaskId p : graph_.parents(t))
          if (states_[p] != TaskState::kSucceeded) invariant_failed("started before a parent", t);
    }
    if (s == TaskState::kSkipped) {
      bool has_bad_parent = barrier != Graph::kNoBarrier && barrier_bad[barrier];
      if (barrier == Graph::kNoBarrier)
        for (TaskId p : graph_.parents(t))
          if (is_terminal(states_[p]) && states_[p] != TaskState::kSucceeded) has_bad_parent = true;
      if (!has_bad_parent) invariant_failed("skipped without a failed parent", t);
    }
    if (exited_[t] && s != TaskState::kRunning && s != TaskState::kQueued)
      invariant_failed("exited mark on a task that is not running", t);
  }
  if (counts != counts_) invariant_failed("state counts out of sync", 0);
  if (finished != finished_) invariant_failed("finished count out of sync", 0);
  if (used_cpus + free_cpus_ != capacity_.cpus || used_gpus + free_gpus_ != capacity_.gpus)
    invariant_failed("slot accounting out of sync", 0);
  if (free_cpus_ < 0 || free_gpus_ < 0) invariant_failed("capacity exceeded", 0);
}

}  // namespace sluice
