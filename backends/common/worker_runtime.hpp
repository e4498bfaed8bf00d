// The runtime of a remote worker (an `mpi` rank, a `pilot` worker): what it does with the
// attempts its coordinator sends, whatever carries them. A Runtime owns a `local` backend
// sized to the worker's share of its node (worker_share.hpp), given its GPUs and its
// attempts' base environment as options (no process-global state is touched), and
//   - starts command attempts as child processes (own process group, as on `local`);
//     when the coordinator leaves attempt directories to its workers, lends an attempt
//     whose logs go to spools a scratch folder of the worker's own (scratch_folders.hpp:
//     renamed to RUN/tasks/TASK/N only when the attempt wrote there, before its
//     completion is handed back), and makes the directories of the others;
//   - calls SDK function tasks through the process's FunctionTaskRunner, inline (mpi:
//     back to back on the caller's thread) or each on a thread of its own (pilot);
//   - kills an attempt past its max_exec_time when asked to enforce it (reported as
//     signaled, "timed out after …");
//   - may hold a failure nobody asked for back a moment (`failure_grace`), so that a
//     worker stopped meanwhile leaves it to be reported lost rather than failed;
//   - hands back completions in batches: a launch it cannot start is reported with the
//     next batch, never on its own.
// The transport (MPI messages, a TCP connection) stays with the caller, which loops:
// start()/kill() what arrived, collect() and send what is done.
//
// Thread-safety: a Runtime is used from one thread; function threads hand their results
// over under a lock of their own.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "sluice/engine/backend.hpp"
#include "sluice/engine/scratch_folders.hpp"
#include "wire_codec.hpp"

namespace sluice::worker {

// Runs function task `l` in this process and returns its exit status (0 = success),
// having written why it failed to the attempt's stderr; sets `content_hash` when it
// wrote a result artifact (see Completion). Called on the runtime's thread (inline) or
// on function threads, several at once. Set before serving; one per process.
using FunctionTaskRunner = std::function<int(const wire::Launch& l, std::string& content_hash)>;
void set_function_task_runner(FunctionTaskRunner runner);

// True while function tasks started on threads of this process still run (they cannot
// be stopped: a caller about to exit must leave with _Exit, not return from main).
bool function_tasks_running();

// SIGTERM, SIGINT and SIGHUP set stop_signal() (the serving loop notices and ends);
// SIGPIPE is ignored (a dropped connection shows as an error where it is written).
void install_stop_handlers();
// The signal that asked this process to stop, 0 until one did.
int stop_signal();

struct RuntimeOptions {
  int cpus = 1;
  std::vector<std::string> gpu_ids;      // the devices this worker hands out
  std::vector<std::string> environment;  // the attempts' base environment
  enum class Functions {
    kInline,   // every function task runs on the caller's thread; none without a runner
    kThreads,  // those without GPUs, on a thread each, when a runner is set; others as processes
  } functions = Functions::kInline;
  bool make_attempt_dirs = false;  // the coordinator leaves them to its workers
  std::string scratch_prefix;      // with make_attempt_dirs: names this worker's folders
  bool enforce_exec_time = false;  // kill attempts past their max_exec_time
  std::chrono::milliseconds failure_grace{0};  // 0: report failures at once
};

class Runtime {
 public:
  explicit Runtime(RuntimeOptions options);
  // Kills every attempt still running (whole process groups).
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Starts `l`; one it cannot start is reported by the next collect().
  void start(const wire::Launch& l);
  // Reports `l` with the next batch without starting it (`kind` and `reason` as given).
  void refuse(const wire::Launch& l, ExitKind kind, std::string reason);
  // The coordinator asks to kill an attempt (a function task ends when it returns).
  void kill(TaskId task, std::uint32_t attempt);

  // Appends to `out` what is ready to report, waiting up to `wait` for a process to end.
  void collect(std::vector<Completion>& out, std::chrono::milliseconds wait);

  // Kills whatever runs, forgets every attempt (function results still to come are
  // dropped) and starts clean, as after losing the coordinator.
  void reset();

  std::size_t processes_running() const { return local_->in_flight(); }
  int functions_running() const { return functions_in_flight_; }
  bool holding_failures() const { return !held_.empty(); }

 private:
  using Clock = std::chrono::steady_clock;
  struct FunctionResults;

  void start_function_thread(const wire::Launch& l);
  void collect_functions();
  void check_deadlines();
  // Deadline outcomes and held-back failures, over ready_.
  void settle(Clock::time_point now);

  RuntimeOptions o_;
  std::unique_ptr<Backend> local_;
  TaskSpec spec_;  // scratch: the local backend reads it only during launch()
  std::vector<Completion> ready_;
  std::shared_ptr<FunctionResults> functions_;
  int functions_in_flight_ = 0;  // started on threads and not yet collected
  // key -> (when, max_exec_ms); only with enforce_exec_time.
  std::unordered_map<std::uint64_t, std::pair<Clock::time_point, std::int64_t>> deadlines_;
  // With make_attempt_dirs, for attempts whose logs go to spools: lends `req` a scratch
  // folder of the attempt's run (SLUICE_ATTEMPT_DIR, SLUICE_OUTPUT and SLUICE_RESULTS
  // point into it). False when it cannot: the attempt then gets its directory made.
  bool lend_scratch(const wire::Launch& l, LaunchRequest& req);
  // Settles the folder lent to the attempt, if any (ScratchFolders::settle()).
  void settle_scratch(TaskId task, std::uint32_t attempt);
  void settle_all_scratch();

  ScratchFolders scratch_;  // of one run at a time; RUN/tasks open as tasks_fd_
  int tasks_fd_ = -1;
  std::unordered_map<std::uint64_t, std::string> lent_;  // attempt -> its task's name
  // Attempt directories this worker made for spooled attempts it could lend no folder:
  // removed when the attempt ends having left nothing there (with its task's, when empty).
  std::unordered_map<std::uint64_t, std::string> spooled_dirs_;
  std::unordered_map<std::uint64_t, std::int64_t> timed_out_;
  std::set<std::uint64_t> killed_;  // by the coordinator's request; only with a grace
  std::deque<std::pair<Clock::time_point, Completion>> held_;
};

}  // namespace sluice::worker
