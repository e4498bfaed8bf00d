// What the Slurm command-line tools print, read into values: pure functions over the
// text of sbatch, squeue, scontrol and sacct (as of Slurm 22.05), so that every format
// the CLI driver relies on is tested over captured outputs without a cluster.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "sluice/error.hpp"
#include "slurm_driver.hpp"

namespace sluice::slurm {

// `text` in single quotes for an error message: control characters escaped (printable()),
// cut after `max` bytes with the full length said, so that a command's odd output (an
// HTML error page) can neither flood nor drive the terminal that shows the message.
std::string quote_output(std::string_view text, std::size_t max = 200);

// The job id from sbatch's stdout: "Submitted batch job 123" (optionally followed by
// " on cluster NAME"), or --parsable's "123" / "123;NAME". Surrounding blank lines and
// spaces are ignored. Anything else, including an empty output, is kBackend naming the
// text: a job id is never guessed.
Expected<std::string> parse_sbatch_output(std::string_view out);

// `squeue -h -r -t all -o '%i|%T|%r|%A'`: one line per job or array element, keyed by
// its %i ("123", "123_4"). Lines that do not have the four fields are skipped.
std::map<std::string, JobStatus> parse_squeue(std::string_view out);

// `squeue -h -r -t all -n NAME -o '%i|%o'`: the command (the script sbatch was given)
// of every job or array element, keyed by its %i. Lines whose id is not one are skipped.
std::map<std::string, std::string> parse_squeue_commands(std::string_view out);

// squeue's complaint when every id it was given is unknown (purged): an empty answer,
// not a failure.
bool is_unknown_job_error(std::string_view err);

// The ExitCode=CODE:SIGNAL field of `scontrol show job -o ID` applied to `status`;
// false (status unchanged) when the field is absent or malformed.
bool apply_scontrol_exit_code(std::string_view out, JobStatus& status);

// MaxArraySize from `scontrol show config`; `fallback` when absent or not a number.
int parse_max_array_size(std::string_view out, int fallback);

// `sacct -c -n -P -o jobid,state,exitcode`: keyed by job id; "CANCELLED by 0" is
// CANCELLED, and a later line for the same id (a requeue) wins.
std::map<std::string, JobStatus> parse_sacct(std::string_view out);

// Whether a failed command's stderr says slurmctld could not be reached or was too busy
// to answer ("Socket timed out on send/recv operation", "Unable to contact slurm
// controller"): worth asking again shortly.
bool is_transient_error(std::string_view err);

// Whether stderr says the request never reached slurmctld (no connection was made):
// only then is a failed sbatch known not to have submitted anything.
bool is_connect_failure(std::string_view err);

}  // namespace sluice::slurm
