// WorkflowRun: one run of a workflow, from the program that starts it or from any other
// process that knows its id. The run store is the truth, so a run started by
// `./app run`, by `sluice run` or by another program reads the same everywhere.
//
//   auto run = sluice::WorkflowRun::prepare(flow, sluice::Config::load("inproc"));
//   run.run();                                  // executes here, blocks until it ends
//
//   auto other = sluice::WorkflowRun::by_id(id);          // read-only, any process
//   sluice::RunState s = other.get_status();
//   sluice::Map results = other.get_results(/*wait=*/true);
//
// Errors are thrown as sluice::Error (error.hpp: this is an edge of the engine). Not
// thread-safe; distinct WorkflowRun objects may be used from distinct threads.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/config.hpp"
#include "sluice/error.hpp"
#include "sluice/records.hpp"
#include "sluice/state.hpp"
#include "sluice/value.hpp"

namespace sluice {

class Flow;
struct OrchestrationDef;

struct RunOptions {
  std::string home;  // "" : $SLUICE_HOME, else ./.sluice
  // Called about every 250 ms and at the end with (finished tasks, all tasks).
  std::function<void(std::size_t done, std::size_t total, bool final)> on_progress;
  const std::atomic<bool>* interrupt = nullptr;  // set (e.g. on SIGINT) to cancel the run
  bool use_cache = true;  // false: run every task, reuse nothing from earlier runs
  // The run is this orchestration's (prepared from orchestration->flow()): run() drives
  // its coroutine in the coordinator. Must outlive run(). Null for a Flow's run.
  const OrchestrationDef* orchestration = nullptr;
};

class WorkflowRun {
 public:
  // Registers the workflow (a new revision when its content hash is new) and creates the
  // run in the store with every task waiting; nothing executes until run().
  static WorkflowRun prepare(const Flow& flow, const Config& config, RunOptions options = {});
  // Opens the run `id` (or a unique prefix) read-only.
  static WorkflowRun by_id(const std::string& id, const std::string& home = "");
  // Opens the run `id` (or a unique prefix) to execute it in this process with `config`
  // and `options` (a detached `submit` prepares in one process and runs in another).
  // The store is opened for writing only by run().
  static WorkflowRun attach(const std::string& id, const Config& config, RunOptions options);

  WorkflowRun(WorkflowRun&&) noexcept;
  WorkflowRun& operator=(WorkflowRun&&) noexcept;
  ~WorkflowRun();

  const std::string& id() const;
  std::string workflow_id() const;     // "project:workflow:revision"
  const std::string& backend() const;  // the backend it was prepared for
  std::string run_dir() const;         // HOME/runs/ID: its attempts, logs and artifacts

  // Executes a prepared run (or resumes one whose coordinator stopped) in this
  // process with the backend it was prepared for; blocks until it ends and returns the
  // final state. Throws kConflict when another process coordinates it,
  // kInvalidInput when a task fits no slot of the backend or when an orchestration did
  // not replay its record (orchestration.hpp).
  RunState run();

  RunState get_status();
  std::vector<TaskRecord> tasks();
  // The result of one task (its artifact's "result", or all its keys as a Map for a
  // command task); null for a task that returned nothing. Throws kNotFound for an
  // unknown task, kConflict when it has not succeeded.
  Value get_result(const std::string& task);
  // The results of the final tasks (those nothing depends on), by task name. With
  // `wait`, blocks until the run ends (or `timeout` passes: kConflict); without, throws
  // kConflict while the run is still going.
  Map get_results(bool wait = true, std::chrono::milliseconds timeout = {});
  // The latest attempt's stdout (or stderr); "" when it wrote none.
  std::string logs(const std::string& task, bool stderr_log = false);
  // Where the task's final values are: the path of its own artifact file, or for values
  // packed into the run's HDF5 files "RUN_DIR/run.h5#/TASK" (the file, then the group;
  // run.h5 is written when the run ends); "" when it has none.
  std::string artifact(const std::string& task);

 private:
  struct Impl;
  explicit WorkflowRun(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice
