// Resume: the coordinator's state rebuilt from the run's store and attempt directories.
#include "engine/coordinator_impl.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <cstdio>
#include "sluice/engine/artifacts.hpp"
#include "sluice/engine/child_request.hpp"
#include "sluice/engine/wall_clock.hpp"

namespace sluice {
namespace {

// A directory prepare_attempt() made ahead for an attempt that never launched: its
// stdout still has mode 0 (see PreparedAttempt::ahead), or, where logs go to spools and
// the directory holds no stdout, the directory itself has mode 0.
bool never_launched(const std::string& dir) {
  struct stat st;
  if (::lstat((dir + "/stdout").c_str(), &st) == 0)
    return S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0;
  return ::lstat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0;
}

}  // namespace

Expected<void> Coordinator::Impl::restore_from_store() {
  auto tasks = store_.list_tasks(run_id_);
  if (!tasks) return tl::unexpected(tasks.error());
  auto attempts = store_.list_attempts(run_id_);
  if (!attempts) return tl::unexpected(attempts.error());
  auto dynamic = store_.list_dynamic_tasks(run_id_);
  if (!dynamic) return tl::unexpected(dynamic.error());
  if (tasks->size() != workflow_.tasks.size() + dynamic->size())
    return make_error(ErrorCode::kConflict, "the stored run does not match its definition");
  for (const DynamicTaskRecord& d : *dynamic) {
    auto parsed = parse_child_requests(d.spec, "stored child '" + d.name + "'", workflow_.base_dir);
    if (!parsed || parsed->size() != 1 || d.index != workflow_.tasks.size() ||
        d.parent >= d.index || d.before >= static_cast<std::int64_t>(d.index))
      return make_error(ErrorCode::kConflict, "the stored child task '" + d.name + "' is damaged");
    TaskSpec spec = std::move(parsed->front().spec);
    spec.name = d.name;
    spec.group = d.group;
    add_dynamic_task(
        std::move(spec), d.parent,
        d.before >= 0 ? std::optional<TaskId>(static_cast<TaskId>(d.before)) : std::nullopt);
  }

  RunUpdate update;
  update.now_us = wall_us();
  // Attempts the backend still watches (a queued or running Slurm job) keep running.
  std::unordered_map<TaskId, std::uint32_t> reattached;
  for (const AttemptRecord& a : *attempts) {
    if (a.state != TaskState::kRunning && a.state != TaskState::kQueued) continue;
    if (!a.handle.empty() && backend_.reattach(a.handle, a.task, a.attempt)) {
      reattached[a.task] = a.attempt;
      continue;
    }
    if (!a.handle.empty()) backend_.abandon(a.handle);
    AttemptRecord end = a;
    end.state = TaskState::kFailed;
    end.reason = "lost: the coordinator stopped while it ran";
    end.ended_us = update.now_us;
    end.exit_code = -1;
    update.attempt_ends.push_back(std::move(end));
  }
  // Packed values of the attempts before the restart, and their provenance.
  auto values = store_.run_values(run_id_);
  if (!values) return tl::unexpected(values.error());
  for (const AttemptRecord& a : *attempts)
    if (a.state != TaskState::kRunning && a.state != TaskState::kQueued && a.task < packed_.size())
      traces_.push_back({a.task, a.attempt, a.exit_code, a.started_us, a.ended_us, a.host});
  for (const TaskRecord& t : *tasks) {
    if (t.state == TaskState::kSucceeded) {
      scheduler_.restore(t.index, TaskState::kSucceeded, t.attempts);
      struct stat st;
      const std::string dir = store_.attempt_dir(run_id_, t.name, t.attempts);
      has_artifact_[t.index] = ::stat(artifact_path(dir).c_str(), &st) == 0;
      continue;
    }
    if (auto r = reattached.find(t.index); r != reattached.end()) {
      scheduler_.restore_running(t.index, r->second, std::chrono::steady_clock::now());
      continue;
    }
    // Group commit lets an attempt start before its record: one whose directory exists
    // past the recorded attempts was launched (or prepared) but never recorded. Its
    // number is used up (its process may still write there): record it as lost.
    // A backend that recorded its intent before launching (Slurm) may find such an
    // attempt still queued or running: it is watched again, not run a second time.
    std::uint32_t used = t.attempts;
    bool found = false;
    for (struct stat st; !found;) {
      const std::string dir = store_.attempt_dir(run_id_, t.name, used + 1);
      if (::lstat(dir.c_str(), &st) != 0) break;
      if (never_launched(dir)) {
        remove_attempt_dir(AT_FDCWD, dir);
        break;
      }
      ++used;
      if (std::string handle = backend_.unrecorded_handle(dir);
          !handle.empty() && backend_.reattach(handle, t.index, used)) {
        AttemptRecord a;
        a.task = t.index;
        a.attempt = used;
        a.state = TaskState::kRunning;
        a.started_us = update.now_us;
        a.host = host_;
        a.handle = std::move(handle);
        update.attempt_starts.push_back(std::move(a));
        update.changes.push_back(
            {t.index, TaskState::kRunning, used, 0, "resumed: found launched"});
        scheduler_.restore_running(t.index, used, std::chrono::steady_clock::now());
        found = true;
        break;
      }
      AttemptRecord lost;
      lost.task = t.index;
      lost.attempt = used;
      lost.state = TaskState::kFailed;
      lost.reason = "lost: the coordinator stopped before recording its launch";
      lost.started_us = lost.ended_us = update.now_us;
      lost.exit_code = -1;
      lost.host = host_;
      update.attempt_ends.push_back(std::move(lost));
    }
    if (found) continue;
    scheduler_.restore(t.index, TaskState::kWaiting, used);
    if (t.state != TaskState::kWaiting || used != t.attempts)
      update.changes.push_back({t.index, TaskState::kWaiting, used, 0, "resumed"});
  }
  for (AttemptValues& v : *values) {
    if (v.task >= packed_.size() || scheduler_.state(v.task) != TaskState::kSucceeded ||
        scheduler_.attempts(v.task) != v.attempt)
      continue;
    packed_[v.task] = std::move(v.values);
    unsegmented_.push_back(v.task);
  }
  std::remove(cancel_request_path(run_dir_).c_str());
  return store_.apply(run_id_, update);
}

}  // namespace sluice
