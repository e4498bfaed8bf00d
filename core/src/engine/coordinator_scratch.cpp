// The coordinator's scratch folders (scratch_folders.hpp): what a local or pilot attempt
// finds as SLUICE_ATTEMPT_DIR, renamed to RUN/tasks/TASK/N only when it wrote there.
#include "engine/coordinator_impl.hpp"
#include "sluice/engine/results_file.hpp"

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

void Coordinator::Impl::settle_scratch(TaskId task, std::uint32_t attempt, bool succeeded) {
  // A map-reduce child that only ran `sluice put`: its values are read now and packed by
  // seal_artifact(), and the folder goes back to the pool (no directory, rename or link).
  // A file that does not parse stays, and moves into place with the folder: seal_artifact()
  // then reports it with its path, where it can be looked at.
  std::string text;
  if (succeeded && scratch_.read_sole_file(task, attempt, kResultsFile, kMaxResultsBytes, text)) {
    const std::string name = store_.attempt_dir(run_id_, workflow_.tasks[task].name, attempt) +
                             "/" + std::string(kResultsFile);
    if (auto values = parse_results(text, name);
        values && scratch_.remove_file(task, attempt, kResultsFile))
      scratch_results_.insert_or_assign(attempt_key(task, attempt), std::move(*values));
  }
  scratch_.settle(task, attempt, tasks_fd_, workflow_.tasks[task].name, task_dir_made_[task]);
}

}  // namespace sluice
