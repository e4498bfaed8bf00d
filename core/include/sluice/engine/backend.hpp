// Backend: where attempts execute. The scheduler sees nothing else of the outside
// world. A backend launches attempts, reports their completions in batches, kills them
// on request and states its capacity. Backends are driven by one coordinator thread and
// need not be thread-safe.
//
// Contract for every backend, checked for each one by the conformance suite
// (tests/conformance/backend_conformance.hpp: fake, local, inproc, slurm and pilot with
// fake clusters in the unit tier, slurm on the real cluster under label `slurm`):
//  - launch() either starts the attempt and returns a handle, or returns an error and
//    leaves nothing running; a launched attempt produces exactly one Completion.
//  - launch_batch() returns one result per request, in order.
//  - poll() returns completions in the order the backend observed them and blocks at
//    most `timeout` when there are none.
//  - kill() of an attempt that already finished is a no-op.
//  - in_flight() counts attempts launched (or re-attached) and not yet reported.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "sluice/engine/log_spool.hpp"
#include "sluice/error.hpp"
#include "sluice/task_spec.hpp"
#include "sluice/value.hpp"

namespace sluice {

struct Capacity {
  int cpus = 1;
  int gpus = 0;
  // Executor labels offered. Empty means every label is accepted (a laptop runs the
  // same workflow as the cluster: a "gpu" work runs locally too).
  std::vector<std::string> executors;
  // The backend stops attempts past their max_exec_time itself (Slurm's --time, which
  // counts from the job's start, not its submission): the scheduler then sets no
  // deadline of its own and takes the backend's completion reason.
  bool enforces_exec_time = false;
  // The most GPUs one task can get where the backend's GPUs are split among places (the
  // workers of an MPI job): validation refuses a task needing more. -1: no split, a task
  // may have all `gpus`. Last, so that positional initialisers stay valid.
  int gpus_per_place = -1;

  bool offers(const std::string& executor) const;
};

// Everything a backend needs to start one attempt. Pointers stay valid until the
// attempt's Completion has been returned by poll().
struct LaunchRequest {
  TaskId task = 0;
  std::uint32_t attempt = 1;  // 1-based
  const TaskSpec* spec = nullptr;
  // The attempt's directory (SLUICE_ATTEMPT_DIR). It exists; a backend that spools
  // (Backend::spools_logs()) writes nothing there, and the coordinator removes it after
  // the attempt when the attempt left it empty.
  std::string attempt_dir;
  // For a backend that spools: the run's spool directory (RUN/spools), where the
  // attempt's stdout and stderr go (log_spool.hpp). Empty otherwise.
  std::string spool_dir;
  // Variables added on top of the coordinator's environment and the task's `env`.
  std::vector<std::pair<std::string, std::string>> env;
  // When set, replace spec->command / spec->shell: the engine resolved placeholders
  // such as {inputs.PARENT.KEY} for this attempt.
  const std::vector<std::string>* command = nullptr;
  const std::string* shell = nullptr;
  // Already open for writing (the attempt's stdout and stderr files), or -1: the
  // backend then opens attempt_dir/stdout and /stderr itself, unless it spools. The
  // caller closes them.
  int stdout_fd = -1;
  int stderr_fd = -1;
  // For a backend that reads parents' values from memory (!needs_input_files()): per
  // parent in spec->after order, the values the coordinator packed for it (null when the
  // parent packed none; its file, if any, is then in `env`).
  std::vector<std::shared_ptr<const Map>> parent_values;
};

enum class ExitKind {
  kExited,        // the process ended by itself; `code` is its exit status
  kSignaled,      // killed by signal `code`
  kLaunchFailed,  // could not be started; `reason` says why
  kLost,          // the backend lost track of it (node died, job vanished)
};

struct Completion {
  TaskId task = 0;
  std::uint32_t attempt = 0;
  ExitKind kind = ExitKind::kExited;
  int code = 0;
  std::string reason;
  std::int64_t started_us = 0;  // wall clock, microseconds since the epoch
  std::int64_t ended_us = 0;
  std::string host;
  // Set by the engine, not the backend: the process exited 0 but the attempt still
  // failed (for example "bad artifact: …").
  std::string failure;
  // The content hash of the artifact the attempt wrote (values_content_hash() of what it
  // put), when the writer still held the values: function tasks run in a process that
  // reports back. "" when unknown: the coordinator then reads the artifact to hash it.
  std::string content_hash;
  // Where a spooling backend put the attempt's stdout and stderr (empty: it printed
  // nothing, or the backend writes per-attempt files).
  LogSpan log;
  // Values the attempt produced for the coordinator to pack (a function's return under
  // "result"): stored with the attempt's success and shown in run.h5, with no file of
  // the attempt's own. Null: none (what the attempt wrote to SLUICE_OUTPUT, if anything,
  // is its artifact).
  std::shared_ptr<const Map> values;

  bool ok() const { return kind == ExitKind::kExited && code == 0 && failure.empty(); }
};

class Backend {
 public:
  Backend() = default;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;
  virtual ~Backend() = default;

  virtual std::string name() const = 0;
  virtual Capacity capacity() const = 0;

  // Starts an attempt. Returns an opaque handle that survives a coordinator restart
  // (for the local backend "pid:starttime"); the store keeps it so `resume` can clean up.
  virtual Expected<std::string> launch(const LaunchRequest& request) = 0;

  // Starts several attempts at once, one result per request in the same order. The
  // coordinator hands over every launch of one scheduling step together, so a backend
  // that can group them (Slurm: one job array for requests with identical resources)
  // overrides this. The default launches them one by one.
  virtual std::vector<Expected<std::string>> launch_batch(std::span<const LaunchRequest> requests);

  // Appends completions to `out`; waits up to `timeout` when none are ready.
  virtual void poll(std::vector<Completion>& out, std::chrono::milliseconds timeout) = 0;

  // Asks a running attempt to stop (whole process group / job). Its Completion follows.
  virtual void kill(TaskId task, std::uint32_t attempt) = 0;

  // Number of attempts launched and not yet reported by poll().
  virtual std::size_t in_flight() const = 0;

  // Kills what an earlier coordinator left behind, from the handle launch() returned.
  // Used by `sluice resume` before re-running attempts that were in flight.
  virtual void abandon(const std::string& handle) = 0;

  // After a coordinator restart: resume watching an attempt that an earlier coordinator
  // launched, from the handle launch() returned, instead of abandoning it (a queued or
  // running Slurm job keeps its place). Returns false when the backend cannot; the
  // attempt is then abandoned and run again. A re-attached attempt produces exactly one
  // Completion, like a launched one (also when it finished while nobody watched).
  virtual bool reattach(const std::string& handle, TaskId task, std::uint32_t attempt);

  // After a coordinator restart: an attempt whose directory exists but whose launch was
  // never recorded (the coordinator died between launching it and committing that). When
  // the backend can tell from `attempt_dir` that it may have been launched (Slurm: the
  // submission's intent written before sbatch), returns a handle for reattach(); the
  // attempt then keeps running instead of running twice. "" when it cannot: the attempt
  // is recorded as lost and run again. Default: "".
  virtual std::string unrecorded_handle(const std::string& attempt_dir);

  // While the run is being cancelled or stopped (SIGINT, SIGTERM, SIGHUP, `sluice
  // cancel`), `stopping` returns true. A backend that may block on the outside world
  // (an squeue that hangs) asks it while it waits, and stops waiting for answers it can
  // do without, so that the run ends within seconds. The coordinator sets it for the
  // length of run() and clears it (an empty function) before returning. Default: unused.
  virtual void set_stopping_check(std::function<bool()> stopping);

  // False for a backend that runs attempts inside the coordinator's process (inproc): the
  // coordinator then neither makes the attempt directory nor opens its logs before
  // launch(); the backend makes the directory only when an attempt writes into it.
  virtual bool wants_attempt_dir() const { return true; }

  // True for a backend that writes attempts' stdout and stderr into spools under
  // LaunchRequest::spool_dir and reports each attempt's range in Completion::log: the
  // coordinator then opens no log files, and removes an attempt's directory when the
  // attempt left nothing in it. Default: false (attempt_dir/stdout and /stderr).
  virtual bool spools_logs() const { return false; }

  // How this backend reaches what runs the attempts, in one line for `sluice run
  // --verbose` and the run's record (slurm: which driver and why); empty when there is
  // nothing to say.
  virtual std::string describe() const { return {}; }

  // The result of task `t`'s succeeded function attempt as this process still holds it
  // (inproc), the same value its artifact holds; null when the backend has none (the
  // caller reads the artifact). What an orchestration awaits comes from here first.
  virtual std::shared_ptr<const Value> result_in_memory(TaskId) const { return nullptr; }

  // False when the backend's attempts take their parents' packed values from
  // LaunchRequest::parent_values (inproc function tasks): the coordinator then writes no
  // value segment for them. Default: true (SLUICE_INPUT_<P> must name a closed file).
  virtual bool needs_input_files() const { return true; }
};

}  // namespace sluice
