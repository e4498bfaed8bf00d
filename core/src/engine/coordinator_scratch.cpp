// The coordinator's scratch folders (scratch_folders.hpp): what a local or pilot attempt
// finds as SLUICE_ATTEMPT_DIR, renamed to RUN/tasks/TASK/N only when it wrote there.
#include "engine/coordinator_impl.hpp"

namespace sluice {

bool Coordinator::Impl::open_scratch() {
  return scratch_.open(run_dir_, /*sweep=*/true);
}

void Coordinator::Impl::close_scratch() {
  scratch_.close();
}

bool Coordinator::Impl::take_scratch(TaskId task, std::uint32_t attempt, std::string& path) {
  return scratch_.take(task, attempt, path);
}

std::string Coordinator::Impl::scratch_path_of(TaskId task, std::uint32_t attempt) const {
  return scratch_.path_of(task, attempt);
}

void Coordinator::Impl::settle_scratch(TaskId task, std::uint32_t attempt) {
  scratch_.settle(task, attempt, tasks_fd_, workflow_.tasks[task].name, task_dir_made_[task]);
}

}  // namespace sluice
