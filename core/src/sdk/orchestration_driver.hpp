// The engine's side of an orchestration (sluice/orchestration.hpp): a RunDriver that
// runs the coroutine on the coordinator's thread, turns its calls into dynamic tasks and
// replays a resumed run. Private to sluice_core (WorkflowRun::run() makes one).
#pragma once

#include <memory>
#include <string>

#include "sluice/engine/run_driver.hpp"
#include "sluice/orchestration.hpp"

namespace sluice {

class OrchestrationDriver : public RunDriver {
 public:
  // Why the run was stopped because a replay did not match the record ("" when it was
  // not): the caller reports it as bad input (exit 2).
  virtual const std::string& nondeterminism() const = 0;
};

// REQUIRES: `def` outlives the driver.
std::unique_ptr<OrchestrationDriver> make_orchestration_driver(const OrchestrationDef& def);

}  // namespace sluice
