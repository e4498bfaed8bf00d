// `sluice logs --follow`: prints a running attempt's stdout and stderr as they come, then
// exactly what the store records once it ends.
#pragma once

#include <cstdint>
#include <string>

#include "sluice/engine/store.hpp"

namespace sluice::cli {

// Follows attempt `attempt` of task (`task`, named `name`) in `run_id` until it ends,
// writing its stdout to stdout and its stderr to stderr unless `want_stdout` /
// `want_stderr` say otherwise.
void follow_attempt_log(RunStore& store, const std::string& run_id, TaskId task,
                        const std::string& name, std::uint32_t attempt, bool want_stdout,
                        bool want_stderr);

}  // namespace sluice::cli
