#include "engine/coordinator_impl.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include "engine/reason_limit.hpp"
#include "sluice/engine/artifacts.hpp"
#include "sluice/engine/child_request.hpp"
#include "sluice/engine/file_modes.hpp"
#include "sluice/engine/host_info.hpp"
#include "sluice/engine/wall_clock.hpp"
#include "store/store_writer.hpp"

namespace sluice {
namespace {

// How often the coordinator wakes without events: checks for a cancel request and
// refreshes progress. Short enough to feel instant, long enough to cost nothing.
constexpr Millis kIdleWake{100};

// Group commit: how long state changes may wait for the store, and how many attempt
// starts one transaction takes at most. Readers see a running run at most this late.
constexpr Millis kCommitInterval{20};
constexpr std::size_t kCommitBatch = 1024;

// The umask open() applies, read without changing it (umask() would, for every thread).
unsigned process_umask() {
  if (std::FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    unsigned mask = 022;
    while (std::fgets(line, sizeof line, f))
      if (std::sscanf(line, "Umask: %o", &mask) == 1) break;
    std::fclose(f);
    return mask;
  }
  return 022;
}

}  // namespace

void remove_attempt_dir(int base, const std::string& dir) {
  ::unlinkat(base, (dir + "/stdout").c_str(), 0);
  ::unlinkat(base, (dir + "/stderr").c_str(), 0);
  ::unlinkat(base, dir.c_str(), AT_REMOVEDIR);  // fails, as it should, if more is there
}

std::string Coordinator::cancel_request_path(const std::string& run_dir) {
  return run_dir + "/cancel-requested";
}

Coordinator::Impl::Impl(RunStore& store, Backend& backend, Workflow& workflow, std::string run_id)
    : store_(store),
      backend_(backend),
      workflow_(workflow),
      run_id_(std::move(run_id)),
      run_dir_(store.run_dir(run_id_)),
      graph_(workflow),
      scheduler_(workflow, graph_, backend.capacity()),
      host_(host_name()),
      task_dir_made_(workflow.tasks.size(), 0),
      spooling_(backend.spools_logs()),
      spool_dir_(run_dir_ + "/spools"),
      prefetch_(static_cast<std::size_t>(std::clamp(backend.capacity().cpus, 1, 16))),
      launch_mode_(file_modes().file & ~process_umask()),
      dir_mode_(file_modes().dir & ~process_umask()),
      has_artifact_(workflow.tasks.size(), 0),
      packed_(workflow.tasks.size()),
      segment_of_(workflow.tasks.size(), 0),
      depth_(workflow.tasks.size(), 0),
      result_hash_(workflow.tasks.size()) {}

Coordinator::Impl::~Impl() {
  for (auto& [task, p] : prepared_) discard_prepared(task, p);
  close_scratch();
  if (tasks_fd_ >= 0) ::close(tasks_fd_);
}

void Coordinator::Impl::close_fds(PreparedAttempt& p) {
  if (p.out_fd >= 0) ::close(p.out_fd);
  if (p.err_fd >= 0) ::close(p.err_fd);
  p.out_fd = p.err_fd = -1;
}

std::string& Coordinator::Impl::relative_attempt_dir(const std::string& task,
                                                     std::uint32_t attempt) {
  rel_.assign(task).push_back('/');
  rel_.append(std::to_string(attempt));
  return rel_;
}

bool Coordinator::Impl::prepare_attempt(const Launch& l, const std::string& dir,
                                        PreparedAttempt& out, bool ahead) {
  const FileModes& modes = file_modes();
  // Relative to the run's tasks directory when it is open: the kernel walks three path
  // components instead of the whole home path, four times per attempt.
  int base = AT_FDCWD;
  const std::string* path = &dir;
  if (tasks_fd_ >= 0) {
    base = tasks_fd_;
    const std::string& task = workflow_.tasks[l.task].name;
    if (!task_dir_made_[l.task]) {
      ::mkdirat(base, task.c_str(), modes.dir);
      task_dir_made_[l.task] = 1;
    }
    path = &relative_attempt_dir(task, l.attempt);
  } else if (!task_dir_made_[l.task]) {
    ::mkdir(dir.substr(0, dir.rfind('/')).c_str(), modes.dir);
    task_dir_made_[l.task] = 1;
  }
  // Spooled: the directory alone marks an attempt made ahead, with mode 0 until launch.
  if (::mkdirat(base, path->c_str(), spooling_ && ahead ? 0 : modes.dir) != 0) {
    // An existing path must be a real directory: an earlier attempt may have planted a
    // symbolic link where this attempt's directory goes.
    struct stat st;
    if (errno != EEXIST) return false;
    if (::fstatat(base, path->c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) {
      errno = ENOTDIR;
      return false;
    }
  }
  out.attempt = l.attempt;
  out.ahead = ahead;
  if (spooling_) return true;  // the logs go to the backend's spools
  // O_NOFOLLOW: never truncate a file that a link in the attempt directory points at.
  constexpr int kFlags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW;
  out.attempt = l.attempt;
  out.ahead = ahead;
  const std::size_t len = path->size();
  std::string& file = file_path_;
  file.assign(*path).append("/stdout");
  out.out_fd = ::openat(base, file.c_str(), kFlags, ahead ? 0 : modes.file);
  file.resize(len);
  file.append("/stderr");
  out.err_fd = out.out_fd < 0 ? -1 : ::openat(base, file.c_str(), kFlags, modes.file);
  if (out.err_fd < 0) {
    close_fds(out);
    return false;
  }
  return true;
}

void Coordinator::Impl::discard_prepared(TaskId task, PreparedAttempt& p) {
  close_fds(p);
  const std::string& name = workflow_.tasks[task].name;
  const int base = tasks_fd_ >= 0 ? tasks_fd_ : AT_FDCWD;
  std::string dir = tasks_fd_ >= 0 ? relative_attempt_dir(name, p.attempt)
                                   : store_.attempt_dir(run_id_, name, p.attempt);
  remove_attempt_dir(base, dir);
  if (::unlinkat(base, dir.substr(0, dir.rfind('/')).c_str(), AT_REMOVEDIR) == 0)
    task_dir_made_[task] = 0;
}

// Creating a directory and two files costs ~100 us on ext4 (far more just after a mass
// deletion): do it ahead, one attempt at a time between checks for completions, so a
// freed slot is refilled without waiting on the disk. First the ready tasks while every
// slot is busy, then the tasks that the running ones release when they succeed (the
// next link of a chain, the next layer), which are discarded if they never launch.
// Returns false when nothing was left.
bool Coordinator::Impl::prepare_next_upcoming() {
  if (!backend_.wants_attempt_dir() || use_scratch_) return false;
  upcoming_.clear();
  scheduler_.peek_ready(prefetch_, upcoming_);
  const std::size_t limit = 2 * prefetch_;
  if (upcoming_.size() < limit && prepared_.size() < limit)
    for (TaskId t : last_launched_) scheduler_.peek_released_by(t, limit, upcoming_);
  for (const Launch& l : upcoming_) {
    auto it = prepared_.find(l.task);
    if (it != prepared_.end()) {
      if (it->second.attempt == l.attempt) continue;
      discard_prepared(it->first, it->second);
      prepared_.erase(it);
    }
    PreparedAttempt p;
    if (prepare_attempt(l, store_.attempt_dir(run_id_, workflow_.tasks[l.task].name, l.attempt), p,
                        true))
      prepared_.emplace(l.task, p);
    return true;
  }
  return false;
}

void Coordinator::Impl::refuse_launch(const Launch& l, std::string why, TimePoint now) {
  // The full text goes where the attempt may write: its scratch folder when it borrowed
  // one (renamed into place below), else its directory.
  const std::string lent = scratch_path_of(l.task, l.attempt);
  bound_reason(why, lent.empty() ? attempt_dir_if_any(l.task, l.attempt) : lent);
  scheduler_.on_launch_failed(l.task, l.attempt, why, now);
  AttemptRecord a;
  a.task = l.task;
  a.attempt = l.attempt;
  a.state = TaskState::kFailed;
  a.exit_code = -1;
  a.reason = "launch failed: " + why;
  a.started_us = a.ended_us = wall_us();
  a.host = host_;
  pending_.attempt_starts.push_back(std::move(a));
  settle_scratch(l.task, l.attempt);
  drop_empty_attempt_dir(l.task, l.attempt);
}

void Coordinator::Impl::drop_empty_attempt_dir(TaskId task, std::uint32_t attempt) {
  // Where workers make the directories (mpi), they remove them too.
  if (!spooling_ || !backend_.wants_attempt_dir()) return;
  // rmdir() removes only an empty directory: whatever the attempt left stays.
  const std::string& name = workflow_.tasks[task].name;
  if (tasks_fd_ >= 0) {
    if (::unlinkat(tasks_fd_, relative_attempt_dir(name, attempt).c_str(), AT_REMOVEDIR) == 0 &&
        ::unlinkat(tasks_fd_, name.c_str(), AT_REMOVEDIR) == 0)
      task_dir_made_[task] = 0;
    return;
  }
  const std::string dir = store_.attempt_dir(run_id_, name, attempt);
  if (::rmdir(dir.c_str()) == 0 && ::rmdir(dir.substr(0, dir.rfind('/')).c_str()) == 0)
    task_dir_made_[task] = 0;
}

std::string Coordinator::Impl::attempt_dir_if_any(TaskId task, std::uint32_t attempt) const {
  if (!backend_.wants_attempt_dir()) return {};
  return store_.attempt_dir(run_id_, workflow_.tasks[task].name, attempt);
}

bool Coordinator::Impl::prepare_launch(const Launch& l, TimePoint now, LaunchPlan& plan) {
  const TaskSpec& spec = workflow_.tasks[l.task];
  std::string dir = store_.attempt_dir(run_id_, spec.name, l.attempt);
  PreparedAttempt& prepared = plan.prepared;
  // Where the attempt may write: its canonical directory, or a lent scratch folder that
  // becomes it after the attempt if the attempt wrote there.
  std::string work = dir;
  if (!backend_.wants_attempt_dir()) {
    // In-process attempts: no directory or log files up front (they cost ~100 us).
  } else if (use_scratch_) {
    if (!take_scratch(l.task, l.attempt, work)) {
      refuse_launch(
          l, "cannot create a scratch folder in " + scratch_.dir() + ": " + std::strerror(errno),
          now);
      return false;
    }
  } else if (auto it = prepared_.find(l.task);
             it != prepared_.end() && it->second.attempt == l.attempt) {
    prepared = it->second;
    prepared_.erase(it);
  } else {
    if (it != prepared_.end()) {
      discard_prepared(it->first, it->second);
      prepared_.erase(it);
    }
    if (!prepare_attempt(l, dir, prepared)) {
      refuse_launch(l, "cannot create " + dir + ": " + std::strerror(errno), now);
      return false;
    }
  }
  // This attempt is used from here on (launched, refused or served from the cache): a
  // restarted coordinator must count it, not take it for a directory made ahead.
  if (prepared.ahead && prepared.out_fd >= 0) ::fchmod(prepared.out_fd, launch_mode_);
  if (prepared.ahead && spooling_) {
    if (tasks_fd_ >= 0)
      ::fchmodat(tasks_fd_, relative_attempt_dir(spec.name, l.attempt).c_str(), dir_mode_, 0);
    else
      ::chmod(dir.c_str(), dir_mode_);
  }
  LaunchRequest& req = plan.request;
  req.task = l.task;
  req.attempt = l.attempt;
  req.spec = &spec;
  req.env = {{"SLUICE_RUN_ID", run_id_},
             {"SLUICE_TASK", spec.name},
             {"SLUICE_ATTEMPT", std::to_string(l.attempt)},
             {"SLUICE_ATTEMPT_DIR", work},
             {"SLUICE_HOME", store_.home()}};
  if (!add_artifact_env(spec, work, req) ||
      !resolve_input_placeholders(spec, plan.command, plan.shell, why_)) {
    close_fds(prepared);
    refuse_launch(l, why_, now);
    return false;
  }
  // req.command / req.shell point into `plan`: set once the plans stopped moving.
  if (use_cache_ && spec.cache && try_cache(l, dir, plan.command, plan.shell, now)) {
    close_fds(prepared);
    settle_scratch(l.task, l.attempt);
    return false;  // completed from the cache: nothing to launch
  }
  req.attempt_dir = std::move(dir);
  if (spooling_) req.spool_dir = spool_dir_;
  req.stdout_fd = prepared.out_fd;
  req.stderr_fd = prepared.err_fd;
  return true;
}

void Coordinator::Impl::record_launch(const Launch& l, Expected<std::string> handle,
                                      TimePoint now) {
  if (!handle) {
    refuse_launch(l, handle.error().message, now);
    return;
  }
  scheduler_.on_attempt_started(l.task, l.attempt, now);
  AttemptRecord a;
  a.task = l.task;
  a.attempt = l.attempt;
  a.state = TaskState::kRunning;
  a.started_us = wall_us();
  a.host = host_;
  a.handle = std::move(*handle);
  pending_.attempt_starts.push_back(std::move(a));
}

// One launch_batch() per scheduling step, so a backend can group the requests (Slurm:
// one job array for a sweep).
void Coordinator::Impl::launch_all(const std::vector<Launch>& launches, TimePoint now) {
  if (launches.empty()) return;
  std::vector<LaunchPlan> plans(launches.size());
  std::vector<std::uint8_t> ok(launches.size(), 0);
  std::vector<const Launch*> planned;
  std::vector<LaunchRequest> requests;
  for (std::size_t i = 0; i < launches.size(); ++i) {
    ok[i] = prepare_launch(launches[i], now, plans[i]);
    if (ok[i]) planned.push_back(&launches[i]);
  }
  for (std::size_t i = 0; i < launches.size(); ++i) {
    LaunchPlan& p = plans[i];
    if (!ok[i]) continue;
    if (!p.command.empty()) p.request.command = &p.command;
    if (!p.shell.empty()) p.request.shell = &p.shell;
    requests.push_back(std::move(p.request));
  }
  last_launched_.clear();
  for (const Launch* l : planned) last_launched_.push_back(l->task);
  auto handles = backend_.launch_batch(requests);
  for (std::size_t i = 0; i < launches.size(); ++i) close_fds(plans[i].prepared);
  for (std::size_t i = 0; i < planned.size(); ++i)
    record_launch(*planned[i], std::move(handles[i]), now);
}

// SIGTERM (a Slurm time limit): the run is not cancelled. What was decided is committed,
// running attempts get SIGTERM (SIGKILL after the backend's grace) and are waited for,
// and their records stay "running" so that `sluice resume` treats them as lost and runs
// them again, exactly as after a crash.
Expected<RunState> Coordinator::Impl::stop_attempts() {
  if (auto r = flush(std::nullopt); !r) return tl::unexpected(r.error());
  for (TaskId t = 0; t < workflow_.tasks.size(); ++t)
    if (scheduler_.state(t) == TaskState::kRunning) backend_.kill(t, scheduler_.attempts(t));
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::vector<Completion> ignored;
  while (backend_.in_flight() > 0 && std::chrono::steady_clock::now() < until) {
    ignored.clear();
    backend_.poll(ignored, kIdleWake);
  }
  return RunState::kRunning;
}

Expected<RunState> Coordinator::Impl::run(const CoordinatorOptions& options) {
  using Clock = std::chrono::steady_clock;
  const std::string tasks_dir = run_dir_ + "/tasks";
  ::mkdir(run_dir_.c_str(), file_modes().dir);
  ::chmod(run_dir_.c_str(), file_modes().dir);  // the store created it with the umask's mode
  ::mkdir(tasks_dir.c_str(), file_modes().dir);
  if (tasks_fd_ < 0)
    tasks_fd_ = ::open(tasks_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  // Swept for every spooling backend: mpi's worker ranks lend folders from it too.
  const bool scratch = spooling_ && tasks_fd_ >= 0 && (scratch_.is_open() || open_scratch());
  use_scratch_ = scratch && backend_.wants_attempt_dir();
  const std::string cancel_path = cancel_request_path(run_dir_);
  // A backend blocked on the outside world (an squeue that hangs) learns that the run is
  // ending without waiting for this loop, which it blocks. The file is looked at no more
  // often than the loop itself looks.
  std::chrono::steady_clock::time_point next_look{};
  bool cancel_file = false;
  backend_.set_stopping_check([&] {
    if (cancelling_ || (options.stop && options.stop->load()) ||
        (options.interrupt && options.interrupt->load()))
      return true;
    const auto t = std::chrono::steady_clock::now();
    if (!cancel_file && t >= next_look) {
      next_look = t + kIdleWake;
      struct stat st;
      cancel_file = ::stat(cancel_path.c_str(), &st) == 0;
    }
    return cancel_file;
  });
  struct ClearCheck {
    Backend& backend;
    ~ClearCheck() { backend.set_stopping_check({}); }
  } clear_check{backend_};

  if (auto rec = store_.get_run(run_id_); rec) workflow_id_ = rec->workflow_id();
  if (!writer_) {  // without a second connection, every commit is made on this thread
    if (auto conn = RunStore::open(store_.home(), RunStore::Mode::kReadWrite); conn)
      writer_ = std::make_unique<StoreWriter>(std::move(*conn), run_id_);
  }
  use_cache_ = options.use_cache;
  if (use_cache_) {
    auto filter = CacheKeyFilter::load(store_, workflow_.project);
    if (filter) cache_filter_ = std::move(*filter);  // unreadable: look each key up
  }
  TimePoint now = Clock::now();
  scheduler_.start(now);
  // The run's start is durable before anything launches. The tasks' first moves (every
  // root to ready: 10,000 rows and events for a sweep, ~50 ms) ride on the first group
  // commit instead of delaying the first launch: a resumed run recomputes readiness.
  {
    RunUpdate start;
    start.run_state = RunState::kRunning;
    start.now_us = wall_us();
    if (auto r = commit_now(start); !r) return tl::unexpected(r.error());
  }
  RunDriver* const driver = options.driver;
  if (driver) driver->start(*this);

  std::vector<Completion> completions;
  TimePoint next_progress = now;
  TimePoint next_cancel_check = now;
  bool cancelling = false;
  auto cancel = [&] {
    if (cancelling) return;
    cancelling = cancelling_ = true;
    for (const Kill& k : scheduler_.on_cancel_requested()) backend_.kill(k.task, k.attempt);
  };

  // Group commit: state changes go to the store in one transaction at most every
  // kCommitInterval (or kCommitBatch attempts), not once per scheduling step. Launches
  // therefore may precede their record by up to that long; after a crash,
  // restore_from_store() finds such an attempt by its directory and never reuses it.
  TimePoint last_commit = Clock::now();
  bool uncommitted = false;
  auto commit = [&](TimePoint t) -> Expected<void> {
    last_commit = t;
    uncommitted = false;
    return flush(std::nullopt, /*file_cache=*/false);
  };
  // The periodic commit goes to the writer thread. While that still commits the last
  // batch, the changes wait here and the handoff is tried again shortly.
  constexpr Millis kHandoffRetry{2};
  auto commit_in_background = [&](TimePoint t) -> Expected<void> {
    auto taken = flush_in_background();
    if (!taken) return tl::unexpected(taken.error());
    last_commit = *taken ? t : t - kCommitInterval + kHandoffRetry;
    uncommitted = !*taken;
    return {};
  };

  // Starts what the scheduler can start now.
  auto launch_ready = [&](std::vector<Launch>& launches) -> Expected<void> {
    launches = scheduler_.take_launches();
    // Children join the store before any of them runs: a resume must know every task
    // whose attempt directory exists. And no task starts before its parents' success is
    // recorded: after a crash a task whose dependents had started never runs again.
    // (Independent tasks, a sweep, still share one commit per interval.)
    if (!pending_.new_tasks.empty() || success_pending_for(launches)) {
      if (auto r = commit(Clock::now()); !r) {
        cancel();
        return tl::unexpected(r.error());
      }
    }
    launch_all(launches, now);
    return {};
  };

  std::vector<Launch> launches;
  auto drive_step = [&]() -> Expected<void> {
    if (!driver) return {};
    if (auto r = drive(*driver); !r) {
      cancel();
      return r;
    }
    if (driver->must_stop()) cancel();
    return {};
  };
  if (auto r = drive_step(); !r) return tl::unexpected(r.error());
  while (!scheduler_.done()) {
    if (auto r = launch_ready(launches); !r) return tl::unexpected(r.error());
    const TimePoint t = Clock::now();
    if (t - last_commit >= kCommitInterval ||
        pending_.attempt_starts.size() - held_starts_ >= kCommitBatch) {
      if (auto r = commit_in_background(t); !r) {
        cancel();
        return tl::unexpected(r.error());
      }
    } else {
      uncommitted = true;
    }
    if (!cached_.empty()) {
      finish_cached(now);  // their dependents may be ready now: schedule again at once
      if (auto r = drive_step(); !r) return tl::unexpected(r.error());
      continue;
    }

    if (scheduler_.done()) break;
    auto wait = kIdleWake;
    const TimePoint deadline = scheduler_.next_deadline();
    if (deadline != TimePoint::max()) {
      auto until = std::chrono::duration_cast<Millis>(deadline - Clock::now()) + Millis(1);
      wait = std::clamp(until, Millis(0), wait);
    }
    if (uncommitted) {  // wake in time to commit what is pending
      auto until = std::chrono::duration_cast<Millis>(last_commit + kCommitInterval - Clock::now());
      wait = std::clamp(until + Millis(1), Millis(0), wait);
    }
    if (!launches.empty() && backend_.in_flight() == 0) wait = Millis(0);
    completions.clear();
    backend_.poll(completions, Millis(0));
    while (completions.empty() && wait.count() > 0 && prepare_next_upcoming())
      backend_.poll(completions, Millis(0));
    if (completions.empty()) backend_.poll(completions, wait);
    now = Clock::now();
    // The attempts' processes are gone: their slots take the next ready tasks before
    // the artifacts are sealed (~0.3-0.7 ms each here), which would otherwise leave a
    // slot idle for that long after every task that passes data.
    if (!completions.empty()) {
      // A scratch folder the attempt wrote into becomes its directory before anything
      // reads it (seal_artifact, children), and a free one serves the early launches.
      for (const Completion& c : completions) {
        scheduler_.on_attempt_exited(c.task, c.attempt);
        settle_scratch(c.task, c.attempt, c.ok());
      }
      std::vector<Launch> early;
      if (auto r = launch_ready(early); !r) return tl::unexpected(r.error());
    }
    for (Completion& c : completions) {
      if (c.ok()) seal_artifact(c);
      if (c.ok()) keep_outputs(c);
      if (c.ok()) ingest_children(c);
      if (c.failure.size() > kMaxReasonBytes || c.reason.size() > kMaxReasonBytes) {
        const std::string dir = attempt_dir_if_any(c.task, c.attempt);
        if (!dir.empty()) make_attempt_dir(dir);  // with scratch folders it may not exist
        bound_reason(c.failure, dir);
        bound_reason(c.reason, dir);
      }
      if (driver)
        driver->on_attempt_ended(c.task, c.kind == ExitKind::kExited ? c.code : -1,
                                 c.failure.empty() ? c.reason : c.failure);
      auto outcome = scheduler_.on_attempt_finished(c, now);
      if (!outcome) continue;
      if (outcome->state == TaskState::kSucceeded) file_in_cache(c.task, c.attempt, c.content_hash);
      AttemptRecord a;
      a.task = c.task;
      a.attempt = c.attempt;
      a.state = outcome->state;
      a.exit_code = c.kind == ExitKind::kExited ? c.code : -1;
      a.reason = std::move(outcome->reason);
      a.ended_us = c.ended_us ? c.ended_us : wall_us();
      traces_.push_back({c.task, c.attempt, a.exit_code, c.started_us, a.ended_us, c.host});
      pending_.attempt_ends.push_back(std::move(a));
    }
    // The logs' place rides on the same commit as the attempt's end: a finished attempt
    // is never recorded without it. Attempts the scheduler ignored (stale) count too.
    for (Completion& c : completions) {
      if (!c.log.empty()) pending_.logs.push_back({c.task, c.attempt, std::move(c.log)});
      drop_empty_attempt_dir(c.task, c.attempt);
    }
    for (const Kill& k : scheduler_.on_tick(now)) backend_.kill(k.task, k.attempt);
    if (auto r = drive_step(); !r) return tl::unexpected(r.error());

    if (now >= next_cancel_check) {
      if (options.stop && options.stop->load()) return stop_attempts();
      next_cancel_check = now + kIdleWake;
      struct stat st;
      if ((options.interrupt && options.interrupt->load()) || ::stat(cancel_path.c_str(), &st) == 0)
        cancel();
    }
    if (options.on_progress && now >= next_progress) {
      next_progress = now + options.progress_interval;
      options.on_progress(scheduler_, false);
    }
  }
  write_run_view();
  const RunState final_state =
      driver ? driver->final_state(scheduler_.run_state()) : scheduler_.run_state();
  if (auto r = flush(final_state); !r) return tl::unexpected(r.error());
  writer_.reset();
  if (options.on_progress) options.on_progress(scheduler_, true);
  return final_state;
}

Coordinator::Coordinator(RunStore& store, Backend& backend, Workflow& workflow, std::string run_id)
    : impl_(std::make_unique<Impl>(store, backend, workflow, std::move(run_id))) {}
Coordinator::~Coordinator() = default;
Expected<void> Coordinator::restore_from_store() {
  return impl_->restore_from_store();
}
Expected<RunState> Coordinator::run(const CoordinatorOptions& options) {
  return impl_->run(options);
}
const Scheduler& Coordinator::scheduler() const {
  return impl_->scheduler();
}

}  // namespace sluice
