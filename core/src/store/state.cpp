#include "sluice/state.hpp"

#include <array>

namespace sluice {
namespace {

constexpr std::array<std::string_view, kTaskStateCount> kTaskNames = {
    "waiting", "ready", "queued", "running", "succeeded", "failed", "cancelled", "skipped"};
constexpr std::array<std::string_view, 5> kRunNames = {"submitted", "running", "succeeded",
                                                       "failed", "cancelled"};

}  // namespace

std::string_view to_string(TaskState s) {
  return kTaskNames[static_cast<int>(s)];
}
std::string_view to_string(RunState s) {
  return kRunNames[static_cast<int>(s)];
}

std::optional<TaskState> task_state_from_string(std::string_view s) {
  for (std::size_t i = 0; i < kTaskNames.size(); ++i)
    if (kTaskNames[i] == s) return static_cast<TaskState>(i);
  return std::nullopt;
}

std::optional<RunState> run_state_from_string(std::string_view s) {
  for (std::size_t i = 0; i < kRunNames.size(); ++i)
    if (kRunNames[i] == s) return static_cast<RunState>(i);
  return std::nullopt;
}

}  // namespace sluice
