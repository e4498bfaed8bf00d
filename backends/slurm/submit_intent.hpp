// A submission's intent: what the Slurm backend writes into an attempt directory just
// before sbatch runs (the job's name, the script sbatch is given, the attempt's array
// index), so that a coordinator killed between sbatch and recording the job id neither
// loses the job nor submits it again. On resume the job is found by name and script among
// those slurmctld still knows; one that slurmctld has forgotten (ended more than MinJobAge
// ago) is known only by the exit status its script left.
#pragma once

#include <string>

#include "slurm_driver.hpp"

namespace sluice::slurm {

// Writes DIR/slurm_intent for `job`; `array_index` is "-" for a plain job. False when
// it cannot be written (the submission then goes ahead: resume would run it again).
bool write_submit_intent(const std::string& dir, const SubmitRequest& job,
                         const std::string& array_index);

// Whether DIR holds an intent: sbatch was at least started for this attempt.
bool has_submit_intent(const std::string& dir);

// The key ("123" or "123_4") of the one job slurmctld knows that matches the intent in
// DIR, recorded into DIR/slurm_job_id; "" when there is no intent, no match, more than
// one, or the cluster cannot answer (said on stderr: the attempt then runs again).
std::string find_submitted_job(SlurmDriver& driver, const std::string& dir);

}  // namespace sluice::slurm
