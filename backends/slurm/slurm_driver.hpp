// SlurmDriver: the few verbs the Slurm backend needs from a cluster, behind one seam so
// that the same backend runs on the C API (libslurm) or the command-line tools (sbatch,
// squeue, scancel, sacct). Drivers are used from the coordinator thread only.
//
// Job keys are Slurm's own spelling: "123" for a plain job, "123_4" for element 4 of
// array 123. Every call that talks to slurmctld costs one round trip, so query() takes
// every job of interest at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sluice/error.hpp"
#include "slurm_version.hpp"

namespace sluice::slurm {

// One batch job (or array) to submit. Every field is also written as an #SBATCH line
// in `script`, so the CLI driver hands sbatch the script as it is (the file at
// `script_path`, or the text on stdin when there is none); libslurm fills a job
// description from the fields and sends `script` as the job's script.
struct SubmitRequest {
  std::string script;       // full text, starts with "#!"
  std::string script_path;  // where `script` was written; empty: nowhere (sbatch reads stdin)
  std::string name;
  std::string comment;  // sbatch --comment: what tells this submission from others of `name`
  std::string workdir;
  std::string output;  // Slurm's --output / --error (may contain %A, %a)
  std::string error;
  int cpus = 1;
  int gpus = 0;
  std::int64_t mem_mib = 0;  // 0: cluster default
  int time_min = 0;          // 0: partition default
  std::string partition, account, qos, constraint, reservation;
  std::vector<std::string> extra;  // free-form sbatch options ("--exclusive")
  std::string array;               // "0-99%10"; empty: not an array
};

// What the cluster says about one job (or array element).
struct JobStatus {
  std::string state;   // base state name: PENDING, RUNNING, COMPLETED, FAILED, TIMEOUT, ...
  std::string reason;  // pending reason ("Resources", "Priority"), "None" when none
  int exit_code = -1;  // -1: unknown
  int signal = 0;
  std::string raw_id;  // the job's own id (an array element has one too); may be empty
};

class SlurmDriver {
 public:
  virtual ~SlurmDriver() = default;
  virtual std::string name() const = 0;
  // Submits one job or array; returns its job id ("123").
  virtual Expected<std::string> submit(const SubmitRequest& request) = 0;
  // Status of every job and array element belonging to the job ids in `base_ids`, keyed
  // "123" / "123_4". Jobs purged from slurmctld (older than MinJobAge) are absent.
  virtual Expected<std::map<std::string, JobStatus>> query(
      const std::vector<std::string>& base_ids) = 0;
  // Cancels jobs or array elements (keys as above); unknown ids are ignored.
  virtual void cancel(const std::vector<std::string>& keys) = 0;
  // The cluster's MaxArraySize (array indexes must stay below it).
  virtual int max_array_size() = 0;
  // The jobs and array elements slurmctld still knows (queued, running, or ended less
  // than MinJobAge ago) named `name`, keyed "123" / "123_4", each with the command it
  // runs (the script path sbatch was given; "" when submitted through libslurm). An
  // error when the cluster cannot answer. Default: jobs_named() below.
  virtual Expected<std::map<std::string, std::string>> jobs_named(const std::string& name);
  // The same jobs, each with its comment (SubmitRequest::comment; "" when it has none).
  // An error when the cluster cannot answer. Default: job_comments() below.
  virtual Expected<std::map<std::string, std::string>> job_comments(const std::string& name);
  // While `stopping` returns true (the run is being cancelled or stopped), calls give up
  // waiting for answers the run can do without (see CommandPolicy::stopping). Default:
  // unused (libslurm calls have slurmctld's own timeouts).
  virtual void set_stopping_check(std::function<bool()> stopping) { (void)stopping; }
};

// How the CLI driver runs each sbatch, squeue, scontrol, sacct and scancel: none may
// block the coordinator for longer than `tries` x `timeout` plus the backoffs.
struct CommandPolicy {
  // Per try. Past it the command's process group is killed: a busy or restarting
  // slurmctld can leave squeue waiting for minutes.
  std::chrono::milliseconds timeout{30'000};
  // A command that timed out, or failed with a transient error (slurmctld unreachable
  // or busy), is tried again this many times in all, where asking again is safe.
  int tries = 3;
  // Before the second try; doubled before each next one.
  std::chrono::milliseconds backoff{500};
  // When set and true (the run is being cancelled or stopped): no command is tried
  // again, and a read-only one (squeue, scontrol, sacct) still running after
  // kStoppingGrace is killed, so that SIGINT, SIGTERM and `sluice cancel` take effect
  // within seconds of a hung slurmctld. scancel and sbatch keep their deadline.
  std::function<bool()> stopping;
};

// The libslurm this sluice can use: the release it was built against (nullopt: built
// without libslurm), the release of the library opened here (set when its
// slurm_api_version() is the API of the soname it was built for), or why none can be used.
struct LibslurmInfo {
  std::optional<SlurmVersion> built_for;
  std::optional<SlurmVersion> loaded;
  std::string library;  // the soname it opens: "libslurm.so.38"
  std::string error;    // empty when `loaded` is set
};
LibslurmInfo libslurm_info();

// How long a read-only command may still run once the run is stopping: a healthy
// slurmctld answers well within it, so a cancelled job is still seen as CANCELLED.
inline constexpr std::chrono::milliseconds kStoppingGrace{2'000};

// sbatch / squeue / scancel / scontrol, each run under `policy`.
std::unique_ptr<SlurmDriver> make_cli_driver(const CommandPolicy& policy = {});
// libslurm; nullptr when this build has no libslurm. It hands submissions with free-form
// sbatch options to a CLI driver run under `policy`.
std::unique_ptr<SlurmDriver> make_libslurm_driver(const CommandPolicy& policy = {});

// Finished jobs that slurmctld already forgot, from the jobcomp log (`sacct -c`): keyed
// by raw job id. Works without slurmdbd; empty when the cluster keeps no such log, or
// when sacct fails or times out under `policy` (the caller asks again later).
std::map<std::string, JobStatus> completed_jobs_from_sacct(const std::vector<std::string>& ids,
                                                           const CommandPolicy& policy = {});

// SlurmDriver::jobs_named() from `squeue -n NAME`, run under `policy`.
Expected<std::map<std::string, std::string>> jobs_named(const std::string& name,
                                                        const CommandPolicy& policy = {});

// SlurmDriver::job_comments() from `squeue -n NAME -o '%i|%k'`, run under `policy`.
Expected<std::map<std::string, std::string>> job_comments(const std::string& name,
                                                          const CommandPolicy& policy = {});

// Expands an array index expression ("0-5,7,9-11:2%4") into its indexes.
std::vector<std::uint32_t> expand_array_indexes(const std::string& expr);

}  // namespace sluice::slurm
