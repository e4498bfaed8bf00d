// The CLI driver: sbatch, squeue, scancel and scontrol, as a user would type them.
// Needs nothing at build time, so it is always available. Every command runs through
// run_command with the policy's deadline; what they print is read by slurm_parse.
#include <cstdio>
#include <optional>
#include <thread>

#include "sluice/engine/capture.hpp"
#include "slurm_driver.hpp"
#include "slurm_parse.hpp"

namespace sluice::slurm {
namespace {

std::string join(const std::vector<std::string>& v, char sep) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

// When a failed try may be repeated.
enum class Retry {
  kReadOnly,    // squeue, scontrol show, sacct: asking again changes nothing
  kIdempotent,  // scancel: cancelling twice is cancelling once
  kSubmission,  // sbatch: only when the request never reached slurmctld
};

// How one command went after all its tries: the last try's output, and a message naming
// the command and what happened when it did not succeed.
struct Ran {
  CapturedOutput result;
  std::string failure;  // empty: exited 0
  bool ok() const { return failure.empty(); }
};

Ran run_slurm_command(const std::vector<std::string>& argv, const CommandPolicy& policy,
                      Retry retry, std::optional<std::string> input = std::nullopt) {
  CommandOptions options;
  options.input = std::move(input);
  options.timeout = policy.timeout;
  options.max_bytes = 64 << 20;  // squeue of a large array
  auto stopping = [&] { return policy.stopping && policy.stopping(); };
  auto backoff = policy.backoff;
  const int tries = std::max(1, policy.tries);
  Ran ran;
  for (int attempt = 1;; ++attempt) {
    if (retry == Retry::kReadOnly && policy.stopping) {
      const auto start = std::chrono::steady_clock::now();
      options.abandon = [&stopping, start] {
        return std::chrono::steady_clock::now() - start >= kStoppingGrace && stopping();
      };
    }
    auto r = run_command(argv, options);
    if (!r) {  // not on PATH, or cannot start: asking again will not help
      ran.failure = r.error().message;
      return ran;
    }
    ran.result = std::move(*r);
    if (ran.result.ok()) {
      ran.failure.clear();
      return ran;
    }
    ran.failure = describe_outcome(argv, ran.result, policy.timeout);
    if (attempt > 1) ran.failure += " (tried " + std::to_string(attempt) + " times)";
    // sbatch that timed out, or failed on a socket, may have reached slurmctld and
    // submitted the job with only the answer lost: trying again could run the attempt
    // twice, so it is reported instead (the scheduler then decides, as for any failed
    // launch). A connection that was never made submitted nothing.
    const bool again = retry == Retry::kSubmission
                           ? !ran.result.timed_out && is_connect_failure(ran.result.err)
                           : ran.result.timed_out || is_transient_error(ran.result.err);
    if (!again || attempt >= tries || ran.result.abandoned || stopping()) return ran;
    std::this_thread::sleep_for(backoff);
    backoff *= 2;
  }
}

class CliDriver final : public SlurmDriver {
 public:
  explicit CliDriver(const CommandPolicy& policy) : policy_(policy) {}

  std::string name() const override { return "cli"; }

  Expected<std::string> submit(const SubmitRequest& request) override {
    // Every option is an #SBATCH line of the script: what runs is what a user would
    // resubmit by hand. Without a file the script goes to sbatch's stdin.
    const bool from_file = !request.script_path.empty();
    std::vector<std::string> argv{"sbatch", "--parsable"};
    if (from_file) argv.push_back(request.script_path);
    const std::string what = from_file ? request.script_path : "(script on stdin) " + request.name;
    auto r = run_slurm_command(argv, policy_, Retry::kSubmission,
                               from_file ? std::nullopt : std::optional(request.script));
    if (!r.ok()) {
      std::string why = "sbatch " + what + ": " + r.failure;
      if (r.result.timed_out)
        why += "; the job may have been submitted all the same, so it was not submitted again";
      return make_error(ErrorCode::kBackend, why);
    }
    // Output that is no job id is no job: the request may still have gone through, so
    // it is reported, quoted, and not submitted again.
    auto id = parse_sbatch_output(r.result.out);
    if (!id)
      return make_error(ErrorCode::kBackend, "sbatch " + what + ": " + id.error().message +
                                                 "; a job may have been submitted all the same");
    return id;
  }

  Expected<std::map<std::string, JobStatus>> query(
      const std::vector<std::string>& base_ids) override {
    std::map<std::string, JobStatus> out;
    if (base_ids.empty()) return out;
    // -r: one line per array element, also for pending ones; -t all: finished jobs too
    // (until MinJobAge).
    auto r = run_slurm_command(
        {"squeue", "-h", "-r", "-t", "all", "-o", "%i|%T|%r|%A", "-j", join(base_ids, ',')},
        policy_, Retry::kReadOnly);
    if (!r.ok()) {
      // squeue fails when *every* id is unknown (all purged): that is an empty answer.
      if (!r.result.timed_out && is_unknown_job_error(r.result.err)) return out;
      return make_error(ErrorCode::kBackend, r.failure);
    }
    out = parse_squeue(r.result.out);
    // squeue shows no exit codes: ask scontrol for the few failed ones. Without an
    // answer the code stays unknown (the job's exit-status record usually has it).
    for (auto& [key, st] : out) {
      if (st.state != "FAILED" && st.state != "OUT_OF_MEMORY") continue;
      auto s = run_slurm_command({"scontrol", "show", "job", "-o", key}, policy_, Retry::kReadOnly);
      if (s.ok()) apply_scontrol_exit_code(s.result.out, st);
    }
    return out;
  }

  void cancel(const std::vector<std::string>& keys) override {
    if (keys.empty()) return;
    std::vector<std::string> argv{"scancel", "--quiet"};
    argv.insert(argv.end(), keys.begin(), keys.end());
    auto r = run_slurm_command(argv, policy_, Retry::kIdempotent);
    if (!r.ok())
      std::fprintf(stderr, "sluice: slurm: cancelling %s: %s\n", join(keys, ',').c_str(),
                   r.failure.c_str());
  }

  Expected<std::map<std::string, std::string>> jobs_named(const std::string& name) override {
    return slurm::jobs_named(name, policy_);
  }

  Expected<std::map<std::string, std::string>> job_comments(const std::string& name) override {
    return slurm::job_comments(name, policy_);
  }

  void set_stopping_check(std::function<bool()> stopping) override {
    policy_.stopping = std::move(stopping);
  }

  int max_array_size() override {
    if (max_array_ > 0) return max_array_;
    constexpr int kSlurmDefault = 1001;
    auto r = run_slurm_command({"scontrol", "show", "config"}, policy_, Retry::kReadOnly);
    if (!r.ok()) {
      // Not remembered: the next batch asks again.
      std::fprintf(stderr, "sluice: slurm: %s; assuming MaxArraySize=%d\n", r.failure.c_str(),
                   kSlurmDefault);
      return kSlurmDefault;
    }
    max_array_ = parse_max_array_size(r.result.out, kSlurmDefault);
    return max_array_;
  }

 private:
  CommandPolicy policy_;
  int max_array_ = 0;
};

}  // namespace

std::unique_ptr<SlurmDriver> make_cli_driver(const CommandPolicy& policy) {
  return std::make_unique<CliDriver>(policy);
}

Expected<std::map<std::string, std::string>> jobs_named(const std::string& name,
                                                        const CommandPolicy& policy) {
  const std::vector<std::string> argv{"squeue", "-h", "-r", "-t", "all", "-n", name, "-o", "%i|%o"};
  auto r = run_slurm_command(argv, policy, Retry::kReadOnly);
  if (!r.ok()) return make_error(ErrorCode::kBackend, r.failure);
  return parse_squeue_commands(r.result.out);
}

Expected<std::map<std::string, std::string>> job_comments(const std::string& name,
                                                          const CommandPolicy& policy) {
  const std::vector<std::string> argv{"squeue", "-h", "-r", "-t", "all", "-n", name, "-o", "%i|%k"};
  auto r = run_slurm_command(argv, policy, Retry::kReadOnly);
  if (!r.ok()) return make_error(ErrorCode::kBackend, r.failure);
  auto jobs = parse_squeue_commands(r.result.out);
  for (auto& [key, comment] : jobs)
    if (comment == "(null)") comment.clear();
  return jobs;
}

Expected<std::map<std::string, std::string>> SlurmDriver::job_comments(const std::string& name) {
  return slurm::job_comments(name, CommandPolicy{});
}

Expected<std::map<std::string, std::string>> SlurmDriver::jobs_named(const std::string& name) {
  return slurm::jobs_named(name, CommandPolicy{});
}

std::map<std::string, JobStatus> completed_jobs_from_sacct(const std::vector<std::string>& ids,
                                                           const CommandPolicy& policy) {
  if (ids.empty()) return {};
  auto r = run_slurm_command(
      {"sacct", "-c", "-n", "-P", "-o", "jobid,state,exitcode", "-j", join(ids, ',')}, policy,
      Retry::kReadOnly);
  // sacct without a jobcomp log also fails; either way there is nothing to learn now.
  return r.ok() ? parse_sacct(r.result.out) : std::map<std::string, JobStatus>{};
}

}  // namespace sluice::slurm
