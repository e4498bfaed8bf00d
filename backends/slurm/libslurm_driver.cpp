// The libslurm driver: the same verbs through Slurm's C API, one RPC each and no
// process per call (~600-1100 submits/s against ~200/s for sbatch). Linked dynamically:
// libslurm's plugins need symbols from the shared library.
#include <signal.h>
#include <sys/wait.h>

#include <cstdlib>
#include <mutex>
#include <set>

#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>

#include "slurm_driver.hpp"

// Exported by libslurm.so but not declared in the 22.05 headers.
extern "C" char* slurm_job_state_string(uint32_t state);
extern "C" const char* slurm_job_reason_string(int reason);

extern char** environ;

namespace sluice::slurm {
namespace {

// RAII owners for the messages libslurm allocates.
struct JobInfoMsg {
  job_info_msg_t* p = nullptr;
  ~JobInfoMsg() {
    if (p) slurm_free_job_info_msg(p);
  }
};
struct SubmitResponse {
  submit_response_msg_t* p = nullptr;
  ~SubmitResponse() {
    if (p) slurm_free_submit_response_response_msg(p);
  }
};
struct CtlConf {
  slurm_conf_t* p = nullptr;
  ~CtlConf() {
    if (p) slurm_free_ctl_conf(p);
  }
};

// slurm_init must be the first libslurm call and slurm_fini the last; once per process.
void init_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    slurm_init(nullptr);
    std::atexit([] { slurm_fini(); });
  });
}

std::string error_text() {
  const int e = slurm_get_errno();
  return std::to_string(e) + " " + slurm_strerror(e);
}

char* c(const std::string& s) {
  return s.empty() ? nullptr : const_cast<char*>(s.c_str());
}

class LibslurmDriver final : public SlurmDriver {
 public:
  LibslurmDriver() : cli_(make_cli_driver()) { init_once(); }

  std::string name() const override { return "libslurm"; }

  Expected<std::string> submit(const SubmitRequest& r) override {
    // Free-form sbatch options have no job-description field: let sbatch read them.
    if (!r.extra.empty()) return cli_->submit(r);
    job_desc_msg_t d;
    slurm_init_job_desc_msg(&d);
    d.name = c(r.name);
    d.script = c(r.script);
    d.work_dir = c(r.workdir);  // required: without it the job fails at launch
    d.std_out = c(r.output);
    d.std_err = c(r.error);
    // Like sbatch's default --export=ALL: the job starts from the submitter's environment
    // (required: an empty one fails the submit with ESLURM_WRITING_TO_FILE).
    std::uint32_t n = 0;
    while (environ[n]) ++n;
    d.environment = environ;
    d.env_size = n;
    d.min_cpus = static_cast<std::uint32_t>(r.cpus);
    d.cpus_per_task = static_cast<std::uint16_t>(r.cpus);
    d.num_tasks = 1;
    if (r.mem_mib > 0) d.pn_min_memory = static_cast<std::uint64_t>(r.mem_mib);
    if (r.time_min > 0) d.time_limit = static_cast<std::uint32_t>(r.time_min);
    const std::string gres = r.gpus > 0 ? "gres:gpu:" + std::to_string(r.gpus) : "";
    d.tres_per_node = c(gres);
    d.partition = c(r.partition);
    d.account = c(r.account);
    d.qos = c(r.qos);
    d.features = c(r.constraint);
    d.reservation = c(r.reservation);
    d.array_inx = c(r.array);
    SubmitResponse resp;
    if (slurm_submit_batch_job(&d, &resp.p) != SLURM_SUCCESS)
      return make_error(ErrorCode::kBackend, "slurm_submit_batch_job: " + error_text());
    return std::to_string(resp.p->job_id);
  }

  Expected<std::map<std::string, JobStatus>> query(
      const std::vector<std::string>& base_ids) override {
    std::map<std::string, JobStatus> out;
    if (base_ids.empty()) return out;
    std::set<std::uint32_t> wanted;
    for (const auto& id : base_ids) wanted.insert(static_cast<std::uint32_t>(std::stoul(id)));
    // One RPC for every job: cheaper than one slurm_load_job per id.
    JobInfoMsg msg;
    if (slurm_load_jobs(0, &msg.p, SHOW_ALL) != SLURM_SUCCESS)
      return make_error(ErrorCode::kBackend, "slurm_load_jobs: " + error_text());
    for (std::uint32_t i = 0; i < msg.p->record_count; ++i) {
      const slurm_job_info_t& j = msg.p->job_array[i];
      const bool is_array = j.array_job_id != 0;
      const std::uint32_t base = is_array ? j.array_job_id : j.job_id;
      if (!wanted.count(base)) continue;
      JobStatus st;
      st.state = slurm_job_state_string(j.job_state & JOB_STATE_BASE);
      st.reason = slurm_job_reason_string(j.state_reason);
      if (WIFEXITED(j.exit_code)) st.exit_code = WEXITSTATUS(j.exit_code);
      if (WIFSIGNALED(j.exit_code)) st.signal = WTERMSIG(j.exit_code);
      st.raw_id = std::to_string(j.job_id);
      if (!is_array) {
        out[std::to_string(j.job_id)] = st;
      } else if (j.array_task_id == NO_VAL - 1 || j.array_task_id == NO_VAL) {
        // The record of array elements not started yet: "0-5" in array_task_str.
        st.raw_id.clear();
        // No index list left (the whole array was cancelled while pending): the record
        // stands for every element not listed on its own; the backend looks it up by
        // the array's id.
        if (!j.array_task_str || !*j.array_task_str) out[std::to_string(base)] = st;
        if (j.array_task_str)
          for (std::uint32_t idx : expand_array_indexes(j.array_task_str))
            out[std::to_string(base) + "_" + std::to_string(idx)] = st;
      } else {
        out[std::to_string(base) + "_" + std::to_string(j.array_task_id)] = st;
      }
    }
    return out;
  }

  void cancel(const std::vector<std::string>& keys) override {
    for (const auto& k : keys) slurm_kill_job2(k.c_str(), SIGKILL, 0, nullptr);
  }

  int max_array_size() override {
    if (max_array_ > 0) return max_array_;
    CtlConf conf;
    max_array_ = slurm_load_ctl_conf(0, &conf.p) == SLURM_SUCCESS
                     ? static_cast<int>(conf.p->max_array_sz)
                     : 1001;
    return max_array_;
  }

 private:
  std::unique_ptr<SlurmDriver> cli_;
  int max_array_ = 0;
};

}  // namespace

std::unique_ptr<SlurmDriver> make_libslurm_driver() {
  return std::make_unique<LibslurmDriver>();
}

}  // namespace sluice::slurm
