// The life cycle of tasks and runs, with the names used in the store, CLI and JSON.
//
//   task: waiting -> ready -> queued -> running -> succeeded | failed | cancelled
//         waiting -> skipped            (a dependency failed or was cancelled)
//         running -> ready              (a failed attempt with retries left)
//   run:  submitted -> running -> succeeded | failed | cancelled
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

enum class TaskState {
  kWaiting,
  kReady,
  kQueued,
  kRunning,
  kSucceeded,
  kFailed,
  kCancelled,
  kSkipped
};
enum class RunState { kSubmitted, kRunning, kSucceeded, kFailed, kCancelled };

constexpr int kTaskStateCount = 8;

std::string_view to_string(TaskState s);
std::string_view to_string(RunState s);
std::optional<TaskState> task_state_from_string(std::string_view s);
std::optional<RunState> run_state_from_string(std::string_view s);

inline bool is_terminal(TaskState s) {
  return s == TaskState::kSucceeded || s == TaskState::kFailed || s == TaskState::kCancelled ||
         s == TaskState::kSkipped;
}
inline bool is_terminal(RunState s) {
  return s == RunState::kSucceeded || s == RunState::kFailed || s == RunState::kCancelled;
}

// Tasks are numbered densely from 0 in a run: definition order, then dynamic children.
using TaskId = std::uint32_t;

// One transition, in the order it happened; the store writes these in batches.
struct StateChange {
  TaskId task = 0;
  TaskState state = TaskState::kWaiting;
  std::uint32_t attempt = 0;  // the attempt concerned (0: none yet)
  int exit_code = 0;
  std::string reason;  // why it failed / was skipped ("timed out", "no slot", …)
};

}  // namespace sluice
