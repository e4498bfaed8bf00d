// The libslurm driver: the same verbs through Slurm's C API, one RPC each and no
// process per call (~600-1100 submits/s against ~200/s for sbatch). libslurm is opened
// when the driver is first made, not linked: every `sluice` process (a `sluice put` in
// each child of a map-reduce) would pay ~0.5 ms to load and relocate it. RTLD_GLOBAL:
// the plugins libslurm loads resolve their symbols from it.
#include <dlfcn.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstdlib>
#include <mutex>
#include <set>
#include <type_traits>

#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>
#include <slurm/slurm_version.h>

#include "slurm_driver.hpp"

// Exported by libslurm.so but not declared in the 22.05 headers.
extern "C" char* slurm_job_state_string(uint32_t state);
extern "C" const char* slurm_job_reason_string(int reason);

extern char** environ;

namespace sluice::slurm {
namespace {

// The libslurm functions the driver calls, named as in libslurm.
struct Api {
  decltype(&::slurm_init) init;
  decltype(&::slurm_fini) fini;
  decltype(&::slurm_get_errno) get_errno;
  decltype(&::slurm_strerror) strerror;
  decltype(&::slurm_init_job_desc_msg) init_job_desc_msg;
  decltype(&::slurm_submit_batch_job) submit_batch_job;
  decltype(&::slurm_free_submit_response_response_msg) free_submit_response_response_msg;
  decltype(&::slurm_load_jobs) load_jobs;
  decltype(&::slurm_free_job_info_msg) free_job_info_msg;
  decltype(&::slurm_job_state_string) job_state_string;
  decltype(&::slurm_job_reason_string) job_reason_string;
  decltype(&::slurm_kill_job2) kill_job2;
  decltype(&::slurm_load_ctl_conf) load_ctl_conf;
  decltype(&::slurm_free_ctl_conf) free_ctl_conf;
  decltype(&::slurm_api_version) api_version;
};

// Why api() is null, set when it is.
std::string& open_error() {
  static std::string error;
  return error;
}

// Null when libslurm cannot be opened here (or lacks a function): the CLI driver serves.
const Api* api() {
  static const Api* const loaded = []() -> const Api* {
    void* lib = ::dlopen(SLUICE_LIBSLURM, RTLD_NOW | RTLD_GLOBAL);
    if (lib == nullptr) {
      const char* why = ::dlerror();
      open_error() = why ? why : SLUICE_LIBSLURM " cannot be opened";
      return nullptr;
    }
    static Api a;
    bool ok = true;
    auto bind = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(lib, name));
      if (fn == nullptr && ok) open_error() = std::string(SLUICE_LIBSLURM " has no ") + name;
      ok = ok && fn != nullptr;
    };
    bind(a.init, "slurm_init");
    bind(a.fini, "slurm_fini");
    bind(a.get_errno, "slurm_get_errno");
    bind(a.strerror, "slurm_strerror");
    bind(a.init_job_desc_msg, "slurm_init_job_desc_msg");
    bind(a.submit_batch_job, "slurm_submit_batch_job");
    bind(a.free_submit_response_response_msg, "slurm_free_submit_response_response_msg");
    bind(a.load_jobs, "slurm_load_jobs");
    bind(a.free_job_info_msg, "slurm_free_job_info_msg");
    bind(a.job_state_string, "slurm_job_state_string");
    bind(a.job_reason_string, "slurm_job_reason_string");
    bind(a.kill_job2, "slurm_kill_job2");
    bind(a.load_ctl_conf, "slurm_load_ctl_conf");
    bind(a.free_ctl_conf, "slurm_free_ctl_conf");
    bind(a.api_version, "slurm_api_version");
    return ok ? &a : nullptr;
  }();
  return loaded;
}

// RAII owners for the messages libslurm allocates.
struct JobInfoMsg {
  job_info_msg_t* p = nullptr;
  ~JobInfoMsg() {
    if (p) api()->free_job_info_msg(p);
  }
};
struct SubmitResponse {
  submit_response_msg_t* p = nullptr;
  ~SubmitResponse() {
    if (p) api()->free_submit_response_response_msg(p);
  }
};
struct CtlConf {
  slurm_conf_t* p = nullptr;
  ~CtlConf() {
    if (p) api()->free_ctl_conf(p);
  }
};

// slurm_init must be the first libslurm call and slurm_fini the last; once per process.
void init_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    api()->init(nullptr);
    std::atexit([] { api()->fini(); });
  });
}

std::string error_text() {
  const int e = api()->get_errno();
  return std::to_string(e) + " " + api()->strerror(e);
}

char* c(const std::string& s) {
  return s.empty() ? nullptr : const_cast<char*>(s.c_str());
}

class LibslurmDriver final : public SlurmDriver {
 public:
  explicit LibslurmDriver(const CommandPolicy& policy) : cli_(make_cli_driver(policy)) {
    init_once();
  }

  std::string name() const override { return "libslurm"; }

  Expected<std::string> submit(const SubmitRequest& r) override {
    // Free-form sbatch options have no job-description field: let sbatch read them.
    if (!r.extra.empty()) return cli_->submit(r);
    job_desc_msg_t d;
    api()->init_job_desc_msg(&d);
    d.name = c(r.name);
    d.comment = c(r.comment);
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
    if (api()->submit_batch_job(&d, &resp.p) != SLURM_SUCCESS)
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
    if (api()->load_jobs(0, &msg.p, SHOW_ALL) != SLURM_SUCCESS)
      return make_error(ErrorCode::kBackend, "slurm_load_jobs: " + error_text());
    for (std::uint32_t i = 0; i < msg.p->record_count; ++i) {
      const slurm_job_info_t& j = msg.p->job_array[i];
      const bool is_array = j.array_job_id != 0;
      const std::uint32_t base = is_array ? j.array_job_id : j.job_id;
      if (!wanted.count(base)) continue;
      JobStatus st;
      st.state = api()->job_state_string(j.job_state & JOB_STATE_BASE);
      st.reason = api()->job_reason_string(j.state_reason);
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
    for (const auto& k : keys) api()->kill_job2(k.c_str(), SIGKILL, 0, nullptr);
  }

  int max_array_size() override {
    if (max_array_ > 0) return max_array_;
    CtlConf conf;
    max_array_ = api()->load_ctl_conf(0, &conf.p) == SLURM_SUCCESS
                     ? static_cast<int>(conf.p->max_array_sz)
                     : 1001;
    return max_array_;
  }

 private:
  std::unique_ptr<SlurmDriver> cli_;
  int max_array_ = 0;
};

}  // namespace

LibslurmInfo libslurm_info() {
  LibslurmInfo info;
  info.built_for = version_from_number(SLURM_VERSION_NUMBER);
  info.library = SLUICE_LIBSLURM;
  if (api() == nullptr) {
    info.error = open_error();
    return info;
  }
  // slurm_api_version() is the library's API number (38.0.0 for 22.05), not its release;
  // the headers do not carry it, but the soname that was opened does ("libslurm.so.38"):
  // the same API as that is the release the headers belong to.
  const SlurmVersion api_loaded = version_from_number(api()->api_version());
  const std::string soname = SLUICE_LIBSLURM;
  const auto dot = soname.rfind('.');
  const std::string want = dot == std::string::npos ? "" : soname.substr(dot + 1);
  if (want.empty() || want == std::to_string(api_loaded.major)) {
    info.loaded = info.built_for;
  } else {
    info.error = soname + " reports API " + std::to_string(api_loaded.major) + ", not " + want;
  }
  return info;
}

std::unique_ptr<SlurmDriver> make_libslurm_driver(const CommandPolicy& policy) {
  if (api() == nullptr) return nullptr;
  return std::make_unique<LibslurmDriver>(policy);
}

}  // namespace sluice::slurm
