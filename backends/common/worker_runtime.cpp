#include "worker_runtime.hpp"

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
    : o_(std::move(options)), functions_(std::make_shared<FunctionResults>()) {
  local_ = make_local(o_);
}

Runtime::~Runtime() {
  local_.reset();
}

void Runtime::reset() {
  local_.reset();  // kills whatever runs
  local_ = make_local(o_);
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
    if (o_.make_attempt_dirs && !make_attempt_dir(l.attempt_dir)) {
      refuse(l, ExitKind::kLaunchFailed,
             "cannot create " + l.attempt_dir + ": " + std::strerror(errno));
      return;
    }
    if (auto handle = local_->launch(wire::to_launch_request(l, spec_)); !handle) {
      refuse(l, ExitKind::kLaunchFailed, handle.error().message);
      return;
    }
    if (o_.make_attempt_dirs && !l.spool_dir.empty())
      spooled_dirs_[attempt_key(l.task, l.attempt)] = l.attempt_dir;
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

}  // namespace sluice::worker
