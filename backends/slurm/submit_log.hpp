// The run's record of its Slurm submissions: one append-only file per run,
// RUN/slurm/submissions, instead of files in every attempt directory. Before each sbatch
// the coordinator appends the submission's intent (the job's name and comment, its script,
// and which attempt is which array element) and waits for it to reach the disk
// (fdatasync); after sbatch it appends the job ids it got. A coordinator killed between
// sbatch and recording the job id in the store neither loses the job nor submits it again:
// resume finds the id here or, when the coordinator died before appending it, asks
// slurmctld for the jobs of that name and comment. The scripts kept here are what
// `sluice job-script` prints.
//
// Only the coordinator writes the file (jobs never do), from one thread, so appends need
// no lock and never interleave; a record cut short by a kill is the file's last bytes and
// is ignored by readers (its sbatch never ran: the intent is written, and synced, first).
//
// Older homes kept the intent in each attempt directory (slurm_intent, slurm_job_id next
// to job.sh): read_legacy_submission() reads those, so their runs still resume.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "slurm_driver.hpp"

namespace sluice::slurm {

// What the run's record says about one attempt's submission.
struct Submission {
  std::string name;     // the job's name
  std::string comment;  // the job's comment, unique to the submission within the run
  std::string index;    // the attempt's array index, "-" for a plain job
  std::string key;      // "123" or "123_4" once recorded; "" when not known
  std::string script;   // the submitted script, when loaded with scripts
  // From an older home's attempt directory: the job is told by the script path it ran.
  bool legacy = false;
  std::string script_path;
};

// The submissions file of run directory `run_dir`.
std::string submissions_path(const std::string& run_dir);

// One run's submissions file, open for appending, and what it holds by attempt directory.
// Not thread-safe.
class SubmitLog {
 public:
  // Loads RUN_DIR/slurm/submissions as far as it is intact (scripts are not kept in
  // memory unless `with_scripts`); the file is opened for writing on the first record.
  explicit SubmitLog(std::string run_dir, bool with_scripts = false);
  ~SubmitLog();
  SubmitLog(const SubmitLog&) = delete;
  SubmitLog& operator=(const SubmitLog&) = delete;

  // Appends the intent to submit `job` for the attempts in `dirs` (dirs[k] is array
  // element k; a plain job has one and no array), synced before it returns. False when
  // it cannot be written: the caller submits all the same (a resume would then run the
  // attempts again), as it would without a log.
  bool record_intent(const SubmitRequest& job, const std::vector<std::string>& dirs);

  // Appends the job key each attempt got (keys[k] for dirs[k]). Not synced: a key lost to
  // a crash is found again by name and comment.
  void record_keys(const std::vector<std::string>& dirs, const std::vector<std::string>& keys);

  // The attempt's submission, or null when this run's file has none for it.
  const Submission* find(const std::string& attempt_dir) const;

 private:
  bool append(const std::string& bytes, bool sync);

  std::string run_dir_;
  int fd_ = -1;
  std::map<std::string, Submission> by_dir_;
};

// The submission an older home recorded in the attempt directory (slurm_intent, and
// slurm_job_id once known), or nullopt.
std::optional<Submission> read_legacy_submission(const std::string& attempt_dir);

// The key ("123" or "123_4") of the one job slurmctld still knows that matches `s` (its
// name, array index and comment; for a legacy submission its script path); "" when none,
// more than one, or the cluster cannot answer (said on stderr: the attempt then runs
// again). `dir` names the attempt in that message.
std::string find_submitted_job(SlurmDriver& driver, const Submission& s, const std::string& dir);

}  // namespace sluice::slurm
