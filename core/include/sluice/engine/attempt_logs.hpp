// Reading an attempt's stdout or stderr, wherever the run kept it: in a spool (the store
// records its range, log_spool.hpp) and, for runs of older homes or text the coordinator
// added (the full reason of an attempt whose reason was cut), in the attempt directory's
// stdout and stderr files. Shared by `sluice logs` and WorkflowRun::logs().
#pragma once

#include <cstdint>
#include <string>

#include "sluice/engine/log_spool.hpp"
#include "sluice/engine/store.hpp"

namespace sluice {

// Appends the attempt's `stream` to `out`. Returns false when the attempt has no such log
// at all (it printed nothing); an error when a recorded spool cannot be read.
Expected<bool> read_attempt_log(RunStore& store, const std::string& run_id, TaskId task,
                                const std::string& task_name, std::uint32_t attempt,
                                LogStream stream, std::string& out);

}  // namespace sluice
