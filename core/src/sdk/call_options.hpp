// How a call's options become the resources and limits of its task: the same for a task
// declared in a Flow and for a call an orchestration makes while it runs.
#pragma once

#include "sluice/flow.hpp"
#include "sluice/task_spec.hpp"

namespace sluice {

inline void apply_call_options(const CallOptions& o, TaskSpec& t) {
  t.cpus = o.cpus;
  t.gpus = o.gpus;
  t.memory_mib = o.memory_mib;
  t.executor = o.executor;
  t.retries = o.retries;
  t.max_exec_time = o.max_exec_time;
  t.max_wait_time = o.max_wait_time;
}

}  // namespace sluice
