// RunView: what `sluice graph` and `sluice report` draw, read in one go: a run's record,
// tasks, attempts and dependency edges from the store (read-only), or just the tasks and
// edges of a workflow file that has not run.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sluice/engine/store.hpp"
#include "sluice/error.hpp"

namespace sluice::cli {

struct RunView {
  std::optional<RunRecord> run;  // absent for a workflow file
  std::string project, workflow;
  // Indexed by TaskId. For a file every task is waiting with no attempts.
  std::vector<TaskRecord> tasks;
  // parents[t]: the tasks t runs after; a matrix's instances share one list.
  std::vector<TaskIdList> parents;
  std::vector<AttemptRecord> attempts;  // every attempt of every task
};

// Reads run `run_id` (already resolved): its stored definition gives the declared edges;
// dynamic children run after the task that added them and before their `before` task.
Expected<RunView> load_run_view(RunStore& store, const std::string& run_id);

// Loads a workflow file without running it (executables are not checked).
Expected<RunView> load_file_view(const std::string& path);

}  // namespace sluice::cli
