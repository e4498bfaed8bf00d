// Reading an attempt's stdout or stderr, wherever the run kept it: in a spool (the store
// records its range, log_spool.hpp) and, for runs of older homes or text the coordinator
// added (the full reason of an attempt whose reason was cut), in the attempt directory's
// stdout and stderr files. Shared by `sluice logs` and WorkflowRun::logs().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "sluice/engine/log_spool.hpp"
#include "sluice/engine/store.hpp"

namespace sluice {

// A Slurm job of its own (backend `slurm`, jobs mode) keeps the exit status of its command
// in the last line of its own stderr file rather than in a file beside it: the
// record kExitTrailer, the decimal status and a newline. It is what tells the status of
// a job slurmctld has forgotten. The record starts with an ASCII unit separator (0x1f),
// which no line of ordinary text holds, so it is recognised wherever the command's own
// last line ended, and readers remove it: the attempt's stderr is what the command wrote.
inline constexpr std::string_view kExitTrailer = "\x1fsluice-exit-status ";

// Removes the last exit-status record from `text`, if any. Returns its status, or -1 (text
// unchanged) when `text` holds none.
int strip_exit_trailer(std::string& text);

// The status in the last exit-status record of `text`, or -1.
int find_exit_trailer(std::string_view text);

// Appends the attempt's `stream` to `out`. Returns false when the attempt has no such log
// at all (it printed nothing); an error when a recorded spool cannot be read.
Expected<bool> read_attempt_log(RunStore& store, const std::string& run_id, TaskId task,
                                const std::string& task_name, std::uint32_t attempt,
                                LogStream stream, std::string& out);
// The file-based part strips the exit-status record of a Slurm job (see kExitTrailer).

}  // namespace sluice
