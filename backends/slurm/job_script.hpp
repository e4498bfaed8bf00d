// The batch scripts the Slurm backend submits. Each attempt gets a standalone `job.sh`
// in its directory (readable, and resubmittable by hand with `sbatch job.sh`); a group of
// attempts with identical resources becomes one array whose script runs the attempt's
// job.sh selected by $SLURM_ARRAY_TASK_ID.
#pragma once

#include <string>
#include <vector>

#include "sluice/engine/backend.hpp"
#include "slurm_driver.hpp"

namespace sluice::slurm {

// Quotes `s` for a POSIX shell ('…', with embedded quotes escaped).
std::string shell_quote(const std::string& s);

// The #SBATCH options for the resources and placement of `r` (no name, output, array).
std::vector<std::string> resource_options(const SubmitRequest& r);

// job.sh for one attempt: #SBATCH lines, cd to the workdir, exports, the command, and
// the command's status written to ATTEMPT_DIR/exit_status before the script exits with it.
// `path_first` goes first on PATH (the directory of the sluice binary).
std::string attempt_script(const LaunchRequest& request, const SubmitRequest& job,
                           const std::string& path_first);

// The array wrapper: element i sends its output to dirs[i]/stdout and stderr and runs
// dirs[i]/job.sh.
std::string array_script(const SubmitRequest& job, const std::vector<std::string>& dirs);

}  // namespace sluice::slurm
