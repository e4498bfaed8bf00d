// RunDriver: code that decides a run's next tasks while the run goes on, inside the
// coordinator (the SDK's orchestrations, orchestration.hpp). The coordinator tells it
// which tasks finished, commits their outcome to the store, and only then lets it take
// a step, in which it may add tasks through RunDriverHost. A driver keeps the run from
// ending while it is not finished only by having added tasks that have not finished:
// every step happens on the coordinator's thread, between two scheduling steps.
//
// Not thread-safe: used by the coordinator's thread alone.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "sluice/state.hpp"
#include "sluice/task_spec.hpp"
#include "sluice/value.hpp"
#include "sluice/workflow.hpp"

namespace sluice {

// What the coordinator offers a driver during start() and step().
class RunDriverHost {
 public:
  virtual ~RunDriverHost() = default;
  // Adds `spec` as a dynamic child of `parent` (recorded in the store before it
  // launches; restored by `resume` like any dynamic child). Returns its id.
  // REQUIRES: no task of the run has spec.name.
  virtual TaskId add_task(TaskSpec spec, TaskId parent) = 0;
  // The run's tasks so far, restored dynamic ones included; a driver may fill in
  // fields of its own tasks (function, arguments) that their stored form lacks.
  virtual Workflow& workflow() = 0;
  virtual TaskState state(TaskId t) const = 0;
  // The final attempt's artifact path of a task (it may not exist).
  virtual std::string artifact(TaskId t) const = 0;
  // A succeeded function task's result without reading its artifact, when the backend
  // still holds it (Backend::result_in_memory); null otherwise.
  virtual std::shared_ptr<const Value> result_in_memory(TaskId t) const = 0;
  // The values a succeeded task's final attempt packed (docs/artifacts.md), null when it
  // packed none (its artifact, if any, is then a file of its own).
  virtual std::shared_ptr<const Map> packed_values(TaskId) const { return nullptr; }
  virtual const std::string& run_dir() const = 0;
};

class RunDriver {
 public:
  virtual ~RunDriver() = default;
  // Once, after restore_from_store() and before the first launch.
  virtual void start(RunDriverHost& host) = 0;
  // An attempt ended (`exit_code` -1 when it did not exit), before its task's new state
  // is known: a retry may follow.
  virtual void on_attempt_ended(TaskId t, int exit_code, const std::string& reason) = 0;
  // True when step() has work (a task it waits for is finished): the coordinator
  // commits what is pending first.
  virtual bool wants_step(const RunDriverHost& host) const = 0;
  virtual void step(RunDriverHost& host) = 0;
  // Set when the run must stop (the driver's code failed or did not replay): the
  // coordinator cancels what still runs.
  virtual bool must_stop() const = 0;
  // The run's final state, given the scheduler's.
  virtual RunState final_state(RunState scheduler_state) const = 0;
};

}  // namespace sluice
