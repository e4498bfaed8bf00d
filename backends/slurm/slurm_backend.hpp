// The `slurm` backend: every attempt is a Slurm batch job. Per job it adds no file of its
// own: the script goes to Slurm as text (kept in the run's submission log, submit_log.hpp,
// and printed by `sluice job-script`), Slurm writes the attempt's stdout and stderr into
// the attempt directory, and the script ends that stderr with the command's exit status
// (attempt_logs.hpp, kExitTrailer: the most reliable source once slurmctld forgot the
// job; readers of the logs strip it). Requests of one launch_batch() with identical
// resources and workdir become one job array.
//
// Watching: poll() asks the cluster about every live job in one batched call at most
// every `poll_interval`. State mapping: COMPLETED / FAILED -> exited with the job's code;
// TIMEOUT, OUT_OF_MEMORY, CANCELLED, DEADLINE -> signaled with "Slurm: STATE" as reason;
// NODE_FAIL, PREEMPTED, BOOT_FAIL -> lost (the scheduler retries without using up
// retries). A job still pending after its task's max_wait_time is cancelled and fails
// with Slurm's pending reason. Slurm enforces max_exec_time itself (--time, in minutes,
// rounded up).
//
// Handles: "slurm:JOBID:DIR" or "slurm:ARRAYID_INDEX:DIR" (DIR: the attempt directory),
// "slurm:held:DIR" while the backend still holds the request (max_queued reached).
//
// BackendOptions::extra: driver (auto | libslurm | cli; default auto: libslurm only when
// the controller runs the Slurm release it was built for, driver_choice.hpp),
// partition, account, qos, constraint, reservation, sbatch (free-form options separated by
// spaces), executor.LABEL (the partition for tasks with executor LABEL), max_queued
// (default 1000), poll_interval (default 1s), command_timeout (default 30s: how long one
// sbatch, squeue, scontrol, sacct or scancel of the CLI driver may take before it is
// killed; read-only and cancel commands are tried 3 times, with backoff), arrays (on |
// off), array_throttle (N: at most N elements of an array run at once).
//
// When the cluster does not answer a poll, jobs that wrote their exit status finish,
// cancelled ones end as signaled, and after 10 such polls in a row the rest are lost.
// Once the run is stopping (set_stopping_check), a hung query is given up after
// slurm::kStoppingGrace, so that signals and `sluice cancel` do not wait for it.
//
// Before each sbatch, the run's submission log gets the intent (the job's name and
// comment, its script, each attempt's array index), synced; the job id follows after.
// After a coordinator died between sbatch and recording the job id, unrecorded_handle()
// and reattach() find the job id there, or by the job's name (`sluice:RUN:TASK`, or
// `sluice:RUN:GROUP` for an array) and comment, instead of submitting it again. Attempts
// of older homes (slurm_intent, slurm_job_id and exit_status in their directories) are
// read as before.
#pragma once

#include <memory>
#include <string>

#include "sluice/engine/backend.hpp"
#include "sluice/engine/backend_registry.hpp"

namespace sluice {
namespace slurm {
struct SubmitRequest;
class SlurmDriver;
}  // namespace slurm

Expected<std::unique_ptr<Backend>> make_slurm_backend(const BackendOptions& options);

// The same backend talking to the cluster through `driver` (tests pass a fake cluster);
// the option `driver` is still checked but no driver is made from it.
Expected<std::unique_ptr<Backend>> make_slurm_backend_with(
    const BackendOptions& options, std::unique_ptr<slurm::SlurmDriver> driver);

// Where jobs go, as every Slurm-submitting backend (this one, `pilot`) reads it: applies
// option `key` (partition, account, qos, constraint, reservation, or sbatch: free-form
// sbatch options separated by spaces, appended) to `placement`. Returns false, changing
// nothing, when `key` is none of these.
bool parse_placement_option(const std::string& key, const std::string& value,
                            slurm::SubmitRequest& placement);

// The keys parse_placement_option() takes, documented, for every Slurm-submitting
// backend's options table.
const OptionTable& placement_option_table();

// How Slurm is asked (driver, command_timeout): the keys of every backend that talks to
// Slurm, jobs and pilot mode alike.
const OptionTable& slurm_command_option_table();

// The options "slurm" takes (jobs mode) besides cpus, gpus and executors.
const OptionTable& slurm_option_table();

// Registers make_slurm_backend under the name "slurm", with slurm_option_table().
void register_slurm_backend();

}  // namespace sluice
