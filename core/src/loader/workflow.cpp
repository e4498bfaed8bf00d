#include "sluice/workflow.hpp"

namespace sluice {

const TaskSpec* Workflow::find(const std::string& task_name) const {
  auto it = index.find(task_name);
  if (it == index.end() || it->second >= tasks.size()) return nullptr;
  return &tasks[it->second];
}

}  // namespace sluice
