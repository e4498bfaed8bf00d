// Coordinator: drives one run to its end. It owns the loop that connects the
// Scheduler (what should happen), the Backend (where attempts execute) and the
// RunStore (what has happened). State changes are committed in groups, at most 20 ms
// late, by a writer thread with a store connection of its own (store_writer.hpp); a
// task's success and new child tasks are committed before anything that depends on
// them starts. That is what lets `sluice resume` pick up a run after the coordinator
// was killed without rerunning a task whose dependents already ran.
//
//   sluice::Coordinator c(store, backend, workflow, run_id);
//   auto state = c.run(options);   // blocks until every task is finished
//
// Not thread-safe; one coordinator per run, guarded by RunLock.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "sluice/engine/backend.hpp"
#include "sluice/engine/run_driver.hpp"
#include "sluice/engine/scheduler.hpp"
#include "sluice/engine/store.hpp"
#include "sluice/workflow.hpp"

namespace sluice {

struct CoordinatorOptions {
  // Called about every `progress_interval` and once at the end (final = true).
  std::function<void(const Scheduler&, bool final)> on_progress;
  Millis progress_interval{250};
  // Set from a signal handler (Ctrl-C): the run is cancelled cleanly.
  const std::atomic<bool>* interrupt = nullptr;
  // Set from a signal handler (SIGTERM, as Slurm sends at a time limit): running
  // attempts are killed and waited for, the run is NOT cancelled, and run() returns
  // RunState::kRunning; `sluice resume` finishes it later.
  const std::atomic<bool>* stop = nullptr;
  // Reuse earlier successful attempts with the same cache key (see cache.hpp), and file
  // this run's successes for later runs. Tasks with `cache = false` always run.
  bool use_cache = true;
  // Decides tasks as the run goes on (an SDK orchestration); null: none. Must outlive run().
  RunDriver* driver = nullptr;
};

class Coordinator {
 public:
  // REQUIRES: the run exists in `store` and was created from `workflow`; the caller
  // holds the run's RunLock. All references must outlive the coordinator. Dynamic
  // children that attempts add are appended to `workflow` as the run goes on.
  Coordinator(RunStore& store, Backend& backend, Workflow& workflow, std::string run_id);
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // Before run(): rebuilds task states from the store, dynamic children included
  // (their parents are not asked again). Succeeded tasks stay done; attempts that were
  // in flight stay running when Backend::reattach() takes them back, else they are
  // killed through Backend::abandon() and recorded as lost; failed, cancelled and
  // skipped tasks are queued again with a fresh retry budget.
  Expected<void> restore_from_store();

  // Runs until every task is finished, cancelled (interrupt or `sluice cancel`) or
  // skipped. Returns the final run state, or an error if the store failed.
  Expected<RunState> run(const CoordinatorOptions& options);

  const Scheduler& scheduler() const;

  // The file whose existence asks the coordinator of a run to cancel it.
  static std::string cancel_request_path(const std::string& run_dir);

  class Impl;  // core/src/engine/coordinator_impl.hpp

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice
