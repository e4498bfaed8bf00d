// The batch scripts the Slurm backend submits. They are handed to Slurm as text (sbatch
// reads them from stdin; libslurm sends them in the job description), never written
// into the attempt directory: the run's submission log keeps them (submit_log.hpp), and
// `sluice job-script RUN TASK` prints the one an attempt ran, ready for `| sbatch`. A
// group of attempts with identical resources becomes one array whose script holds every
// element's body and picks its own by $SLURM_ARRAY_TASK_ID.
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

// What one attempt runs, without #SBATCH lines: cd to the workdir, exports, the
// command, then the command's status appended to the job's stderr as the exit-status
// record (attempt_logs.hpp, kExitTrailer) before the script exits with it. `path_first`
// goes first on PATH (the directory of the sluice binary).
std::string attempt_body(const LaunchRequest& request, const SubmitRequest& job,
                         const std::string& path_first);

// The script of a plain job: #SBATCH lines for `job`, then `body`.
std::string attempt_script(const SubmitRequest& job, const std::string& body);

// The array's script: element i sends its output to dirs[i]/stdout and /stderr, then
// runs bodies[i]. REQUIRES: dirs.size() == bodies.size()
std::string array_script(const SubmitRequest& job, const std::vector<std::string>& dirs,
                         const std::vector<std::string>& bodies);

// `script` (a plain job's or an array's) as a script that runs only array element
// `index` when resubmitted: its --array line becomes --array=INDEX. A plain job's
// script (index "-") is returned as it is.
std::string script_for_element(const std::string& script, const std::string& index);

}  // namespace sluice::slurm
