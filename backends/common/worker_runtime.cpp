#include "worker_runtime.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

#include "local_backend.hpp"
#include "placement.hpp"
#include "sluice/duration.hpp"
#include "sluice/engine/file_modes.hpp"
#include "sluice/engine/wall_clock.hpp"

namespace sluice::worker {
namespace {

std::atomic<int> g_stop_signal{0};
std::atomic<int> g_functions_running{0};

FunctionTaskRunner& function_runner() {
  static FunctionTaskRunner runner;
  return runner;
}

void on_stop_signal(int sig) {
  g_stop_signal.store(sig);
}

std::unique_ptr<Backend> make_local(const RuntimeOptions& o) {
  LocalBackendOptions lo;
  lo.backend.cpus = o.cpus;
  lo.gpu_ids = o.gpu_ids;
  lo.environment = o.environment;
  return make_local_backend(lo);
}

// Calls function task `l` through the runner, on this thread.
Completion run_function(const wire::Launch& l) {
  Completion c;
  c.task = l.task;
  c.attempt = l.attempt;
  c.started_us = wall_us();
  c.code = function_runner()(l, c.content_hash);
  c.ended_us = wall_us();
  return c;
}

}  // namespace

void set_function_task_runner(FunctionTaskRunner runner) {
  function_runner() = std::move(runner);
}

bool function_tasks_running() {
  return g_functions_running.load() > 0;
}

void install_stop_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  ::sigemptyset(&sa.sa_mask);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

int stop_signal() {
  return g_stop_signal.load();
}

// Completions of function threads, handed to the runtime's thread. Shared with the
// threads, so it outlives a Runtime whose functions still run.
struct Runtime::FunctionResults {
  std::mutex mu;
  // State below is protected by mu.
  std::uint64_t generation = 0;  // bumped by reset(): late results drop
  std::vector<Completion> done;
};

Runtime::Runtime(RuntimeOptions options)
    : o_(std::move(options)),
      functions_(std::make_shared<FunctionResults>()),
      scratch_(o_.scratch_prefix) {
  local_ = make_local(o_);
}

Runtime::~Runtime() {
  local_.reset();
  settle_all_scratch();
  scratch_.close();
  if (tasks_fd_ >= 0) ::close(tasks_fd_);
}

void Runtime::reset() {
  local_.reset();  // kills whatever runs
  local_ = make_local(o_);
  settle_all_scratch();
  {
    std::lock_guard<std::mutex> lock(functions_->mu);
    functions_->generation++;
    functions_->done.clear();
  }
  functions_in_flight_ = 0;
  ready_.clear();
  deadlines_.clear();
  killed_.clear();
  held_.clear();
  timed_out_.clear();
}

void Runtime::refuse(const wire::Launch& l, ExitKind kind, std::string reason) {
  Completion c;
  c.task = l.task;
  c.attempt = l.attempt;
  c.kind = kind;
  c.code = -1;
  c.reason = std::move(reason);
  c.started_us = c.ended_us = wall_us();
  ready_.push_back(std::move(c));
}

void Runtime::start(const wire::Launch& l) {
  const bool function = !l.function.empty();
  if (function && o_.functions == RuntimeOptions::Functions::kInline) {
    if (!function_runner()) {
      refuse(l, ExitKind::kLaunchFailed,
             "function task '" + l.function + "': no function runner in this worker");
      return;
    }
    ready_.push_back(run_function(l));
    return;  // it has ended: no deadline to watch
  }
  if (function && l.gpus == 0 && function_runner()) {
    start_function_thread(l);
  } else {
    LaunchRequest req = wire::to_launch_request(l, spec_);
    const bool spooled = o_.make_attempt_dirs && !l.spool_dir.empty();
    const bool lent = spooled && lend_scratch(l, req);
    if (o_.make_attempt_dirs && !lent && !make_attempt_dir(l.attempt_dir)) {
      refuse(l, ExitKind::kLaunchFailed,
             "cannot create " + l.attempt_dir + ": " + std::strerror(errno));
      return;
    }
    // A refused launch's folder is settled with its completion, by collect().
    if (auto handle = local_->launch(req); !handle) {
      refuse(l, ExitKind::kLaunchFailed, handle.error().message);
      return;
    }
    if (spooled && !lent) spooled_dirs_[attempt_key(l.task, l.attempt)] = l.attempt_dir;
  }
  if (o_.enforce_exec_time && l.max_exec_ms > 0)
    deadlines_[attempt_key(l.task, l.attempt)] = {
        Clock::now() + std::chrono::milliseconds(l.max_exec_ms), l.max_exec_ms};
}

void Runtime::kill(TaskId task, std::uint32_t attempt) {
  if (o_.failure_grace.count() > 0) killed_.insert(attempt_key(task, attempt));
  local_->kill(task, attempt);
}

void Runtime::start_function_thread(const wire::Launch& l) {
  std::uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(functions_->mu);
    generation = functions_->generation;
  }
  ++functions_in_flight_;
  ++g_functions_running;
  std::thread([l, generation, results = functions_] {
    Completion c = run_function(l);
    {
      std::lock_guard<std::mutex> lock(results->mu);
      if (results->generation == generation) results->done.push_back(std::move(c));
    }
    --g_functions_running;
  }).detach();
}

void Runtime::collect_functions() {
  if (functions_in_flight_ == 0) return;
  std::lock_guard<std::mutex> lock(functions_->mu);
  functions_in_flight_ -= static_cast<int>(functions_->done.size());
  for (Completion& c : functions_->done) ready_.push_back(std::move(c));
  functions_->done.clear();
}

void Runtime::check_deadlines() {
  if (deadlines_.empty()) return;
  const auto now = Clock::now();
  for (auto& [k, d] : deadlines_) {
    if (now < d.first || timed_out_.count(k)) continue;
    timed_out_[k] = d.second;
    local_->kill(task_of_key(k), attempt_of_key(k));
  }
}

void Runtime::settle(Clock::time_point now) {
  const bool grace = o_.failure_grace.count() > 0;
  std::size_t keep = 0;
  for (std::size_t i = 0; i < ready_.size(); ++i) {
    Completion& c = ready_[i];
    const auto k = attempt_key(c.task, c.attempt);
    deadlines_.erase(k);
    const bool asked = killed_.erase(k) > 0;
    if (auto t = timed_out_.find(k); t != timed_out_.end()) {
      c.kind = ExitKind::kSignaled;
      c.reason = "timed out after " + format_duration(std::chrono::milliseconds(t->second));
      timed_out_.erase(t);
    } else if (grace && !asked && !(c.kind == ExitKind::kExited && c.code == 0)) {
      // scancel and a time limit signal every process of the job, the attempts perhaps
      // first (a shell then exits 143): a failure is held back a moment, and if this
      // worker is being stopped too, the coordinator sees the worker vanish (lost,
      // retried for free) instead of a failed attempt.
      held_.push_back({now + o_.failure_grace, std::move(c)});
      continue;
    }
    if (keep != i) ready_[keep] = std::move(c);
    ++keep;
  }
  ready_.resize(keep);
  while (!held_.empty() && held_.front().first <= now) {
    ready_.push_back(std::move(held_.front().second));
    held_.pop_front();
  }
}

void Runtime::collect(std::vector<Completion>& out, std::chrono::milliseconds wait) {
  // ready_ may already hold launches that failed at once and inline function tasks.
  local_->poll(ready_, wait);
  collect_functions();
  if (o_.enforce_exec_time || o_.failure_grace.count() > 0) {
    check_deadlines();
    settle(Clock::now());
  }
  // A folder the attempt wrote into is in place before the coordinator hears it ended.
  if (!lent_.empty())
    for (const Completion& c : ready_) settle_scratch(c.task, c.attempt);
  if (!spooled_dirs_.empty()) {
    for (const Completion& c : ready_) {
      auto it = spooled_dirs_.find(attempt_key(c.task, c.attempt));
      if (it == spooled_dirs_.end()) continue;
      const std::string& dir = it->second;  // rmdir: only an empty one goes
      if (::rmdir(dir.c_str()) == 0) ::rmdir(dir.substr(0, dir.rfind('/')).c_str());
      spooled_dirs_.erase(it);
    }
  }
  if (out.empty()) {
    out.swap(ready_);
  } else {
    for (Completion& c : ready_) out.push_back(std::move(c));
  }
  ready_.clear();
}

bool Runtime::lend_scratch(const wire::Launch& l, LaunchRequest& req) {
  // l.attempt_dir is RUN/tasks/TASK/N (RunStore::attempt_dir()).
  const std::string& dir = l.attempt_dir;
  const std::size_t n = dir.rfind('/');
  const std::size_t t = n == std::string::npos || n == 0 ? n : dir.rfind('/', n - 1);
  if (t == std::string::npos || t < 6 || dir.compare(t - 6, 6, "/tasks") != 0) return false;
  const std::string run_dir = dir.substr(0, t - 6);
  if (scratch_.run_dir() != run_dir) {
    if (!lent_.empty()) return false;  // still lending for another run: rare, not worth more
    scratch_.close();
    if (tasks_fd_ >= 0) ::close(tasks_fd_);
    tasks_fd_ = ::open(dir.substr(0, t).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    // The coordinator swept RUN/scratch before its first launch: a worker never sweeps.
    if (tasks_fd_ < 0 || !scratch_.open(run_dir, /*sweep=*/false)) return false;
  }
  std::string path;
  if (!scratch_.take(l.task, l.attempt, path)) return false;
  lent_[attempt_key(l.task, l.attempt)] = dir.substr(t + 1, n - t - 1);
  for (auto& [name, value] : req.env) {
    if (name == "SLUICE_ATTEMPT_DIR") {
      value = path;
    } else if ((name == "SLUICE_OUTPUT" || name == "SLUICE_RESULTS") && value.size() > dir.size() &&
               value.compare(0, dir.size(), dir) == 0 && value[dir.size()] == '/') {
      value = path + value.substr(dir.size());
    }
  }
  return true;
}

void Runtime::settle_scratch(TaskId task, std::uint32_t attempt) {
  auto it = lent_.find(attempt_key(task, attempt));
  if (it == lent_.end()) return;
  std::uint8_t task_dir_made = 0;  // not tracked here: mkdir, when needed, may say EEXIST
  scratch_.settle(task, attempt, tasks_fd_, it->second, task_dir_made);
  lent_.erase(it);
}

void Runtime::settle_all_scratch() {
  while (!lent_.empty()) {
    const std::uint64_t k = lent_.begin()->first;
    settle_scratch(task_of_key(k), attempt_of_key(k));
  }
}

}  // namespace sluice::worker
