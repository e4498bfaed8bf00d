#include "mpi_worker.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <string_view>
#include <thread>

#include "local_backend.hpp"
#include "mpi_session.hpp"
#include "sluice/engine/host_info.hpp"
#include "sluice/engine/wall_clock.hpp"

extern char** environ;

namespace sluice::mpi {
namespace {

FunctionTaskRunner& function_runner() {
  static FunctionTaskRunner runner;
  return runner;
}

std::atomic<int> g_stop_signal{0};

constexpr int kMaxBatch = 256;  // messages handled between two reports to rank 0

void on_stop_signal(int sig) {
  g_stop_signal.store(sig);
}

int worker_cpus(const BackendOptions& options, const MpiSession& s) {
  if (options.cpus > 0) return options.cpus;
  const int mine = usable_cpus();
  const int node = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (mine < node) return mine;  // bound by mpirun/srun to its own cores
  return std::max(1, mine / std::max(1, s.node_workers()));
}

std::vector<std::string> worker_gpus(const BackendOptions& options, const MpiSession& s) {
  std::vector<std::string> node =
      options.gpus >= 0 ? local_gpu_ids(options.gpus) : detect_local_gpus();
  const int n = static_cast<int>(node.size());
  const int m = std::max(1, s.node_workers());
  const int i = std::max(0, s.node_worker_index());
  const int chunk = n / m, extra = n % m;
  const int first = i * chunk + std::min(i, extra);
  const int count = chunk + (i < extra ? 1 : 0);
  return std::vector<std::string>(node.begin() + first, node.begin() + first + count);
}

// ATTEMPT_DIR's parent (the task directory) and ATTEMPT_DIR itself.
bool make_attempt_dir(const std::string& dir) {
  ::mkdir(dir.substr(0, dir.rfind('/')).c_str(), 0755);
  return ::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST;
}

bool is_mpi_variable(std::string_view entry) {
  for (std::string_view prefix : {"OMPI_", "PMIX_", "OPAL_", "PRTE_", "ORTE_", "HYDRA_", "PMI_"}) {
    if (entry.starts_with(prefix)) return true;
  }
  return false;
}

// The local backend captures the environment when it is created: create it with the
// MPI runtime's variables hidden and CUDA_VISIBLE_DEVICES naming this worker's GPUs.
std::unique_ptr<Backend> make_worker_backend(int cpus, const std::vector<std::string>& gpus,
                                             bool node_has_gpus) {
  if (node_has_gpus) {
    std::string cvd;
    for (const auto& g : gpus) cvd += (cvd.empty() ? "" : ",") + g;
    ::setenv("CUDA_VISIBLE_DEVICES", cvd.c_str(), 1);
  }
  ::unsetenv("SLUICE_GPUS");
  std::vector<char*> filtered;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e)
    if (!is_mpi_variable(*e)) filtered.push_back(*e);
  filtered.push_back(nullptr);
  char** saved = environ;
  environ = filtered.data();
  BackendOptions opts;
  opts.cpus = cpus;
  opts.gpus = static_cast<int>(gpus.size());
  auto backend = make_local_backend(opts);
  environ = saved;
  return backend;
}

// Kills what attempts of an earlier job left running on this node: every process whose
// environment names one of `dirs` as its SLUICE_ATTEMPT_DIR, with its process group.
void kill_attempts_in(const std::set<std::string>& dirs) {
  if (dirs.empty()) return;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return;
  const pid_t self = ::getpid();
  const pid_t own_group = ::getpgrp();
  std::string env;
  while (dirent* d = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(d->d_name, &end, 10);
    if (*end != '\0' || pid <= 1 || pid == self) continue;
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%ld/environ", pid);
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    env.clear();
    char buf[8192];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) env.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    constexpr std::string_view kVar = "SLUICE_ATTEMPT_DIR=";
    for (std::size_t pos = 0; pos < env.size();) {
      std::size_t nul = env.find('\0', pos);
      if (nul == std::string::npos) nul = env.size();
      std::string_view entry(env.data() + pos, nul - pos);
      if (entry.starts_with(kVar) && dirs.count(std::string(entry.substr(kVar.size())))) {
        const pid_t group = ::getpgid(static_cast<pid_t>(pid));
        if (group > 1 && group != own_group) ::kill(-group, SIGKILL);
        ::kill(static_cast<pid_t>(pid), SIGKILL);
        break;
      }
      pos = nul + 1;
    }
  }
  ::closedir(proc);
}

class Worker {
 public:
  explicit Worker(const BackendOptions& options) : session_(MpiSession::get()) {
    const int cpus = worker_cpus(options, session_);
    std::vector<std::string> node_gpus =
        options.gpus >= 0 ? local_gpu_ids(options.gpus) : detect_local_gpus();
    std::vector<std::string> gpus = worker_gpus(options, session_);
    local_ = make_worker_backend(cpus, gpus, !node_gpus.empty());
    WireHello hello;
    hello.host = session_.host();
    hello.cpus = cpus;
    hello.gpu_ids = gpus;
    hello.node_rank = session_.node_rank();
    sends_.send(0, kTagHello, encode_hello(hello));
  }

  // Returns the exit status: 0 after kTagShutdown, 128 + signal when the job was lost.
  int serve() {
    const pid_t parent = ::getppid();
    Backoff backoff;
    std::vector<char> bytes;
    for (;;) {
      bool busy = false;
      int from = 0, tag = 0;
      // At most a bounded batch, so finished functions are reported while more arrive.
      for (int n = 0; n < kMaxBatch && try_receive(0, from, tag, bytes); ++n) {
        busy = true;
        if (tag == kTagShutdown) return 0;
        handle(tag, bytes);
      }
      kill_attempts_in(abandoned_);
      abandoned_.clear();
      sends_.progress();

      // Function tasks that ran while draining the messages go back with the processes'
      // completions: one message for the batch.
      done_.swap(functions_done_);
      functions_done_.clear();
      local_->poll(done_, std::chrono::milliseconds(0));
      if (!done_.empty()) {
        sends_.send(0, kTagCompletions, encode_completions(done_));
        busy = true;
      }
      if (int sig = g_stop_signal.load(); sig != 0) return 128 + sig;
      if (::getppid() != parent) return 128 + SIGHUP;  // mpirun is gone
      if (busy) {
        backoff.reset();
        continue;
      }
      // Idle: wait for a child to end (epoll) or, with nothing running, just sleep;
      // either way at most ~1 ms before looking for messages again.
      if (local_->in_flight() > 0 && backoff.next() >= std::chrono::microseconds(1000)) {
        local_->poll(done_, std::chrono::milliseconds(1));
        if (!done_.empty()) {
          sends_.send(0, kTagCompletions, encode_completions(done_));
          backoff.reset();
        }
      } else {
        backoff.pause();
      }
    }
  }

  // Kills every attempt still running (the local backend's destructor does).
  ~Worker() { local_.reset(); }

 private:
  void handle(int tag, const std::vector<char>& bytes) {
    if (tag == kTagLaunch) {
      auto launch = decode_launch(bytes);
      if (!launch) {
        std::fprintf(stderr, "sluice worker %d: %s\n", session_.rank(),
                     launch.error().message.c_str());
        return;  // cannot even say which attempt: rank 0 sees no completion
      }
      start(*launch);
    } else if (tag == kTagKill) {
      if (auto k = decode_kill(bytes)) local_->kill(k->first, k->second);
    } else if (tag == kTagAbandon) {
      abandoned_.emplace(bytes.begin(), bytes.end());
    }
  }

  void start(const WireLaunch& l) {
    Completion failed;
    failed.task = l.task;
    failed.attempt = l.attempt;
    failed.started_us = wall_us();
    if (!l.function.empty()) {
      if (!function_runner()) {
        failed.kind = ExitKind::kLaunchFailed;
        failed.code = -1;
        failed.reason = "function task '" + l.function + "': no function runner in this worker";
        failed.ended_us = wall_us();
        sends_.send(0, kTagCompletions, encode_completions({&failed, 1}));
        return;
      }
      failed.code = function_runner()(l, failed.content_hash);
      failed.ended_us = wall_us();
      functions_done_.push_back(std::move(failed));
      return;
    }
    // Rank 0 leaves making attempt directories to the workers (mpi_backend.hpp).
    if (!make_attempt_dir(l.attempt_dir)) {
      failed.kind = ExitKind::kLaunchFailed;
      failed.code = -1;
      failed.reason = "cannot create " + l.attempt_dir + ": " + std::strerror(errno);
      failed.ended_us = wall_us();
      sends_.send(0, kTagCompletions, encode_completions({&failed, 1}));
      return;
    }
    auto handle = local_->launch(wire::to_launch_request(l, spec_));
    if (handle) return;
    failed.kind = ExitKind::kLaunchFailed;
    failed.code = -1;
    failed.reason = handle.error().message;
    failed.ended_us = wall_us();
    sends_.send(0, kTagCompletions, encode_completions({&failed, 1}));
  }

  MpiSession& session_;
  std::unique_ptr<Backend> local_;
  SendQueue sends_;
  TaskSpec spec_;  // scratch: the local backend reads it only during launch()
  std::vector<Completion> done_;
  std::vector<Completion> functions_done_;  // reported after the current batch of messages
  std::set<std::string> abandoned_;
};

}  // namespace

void set_function_task_runner(FunctionTaskRunner runner) {
  function_runner() = std::move(runner);
}

int serve_as_worker(const BackendOptions& options) {
  MpiSession& session = MpiSession::get();
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  ::sigemptyset(&sa.sa_mask);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  (void)session;
  int status;
  {
    Worker worker(options);
    status = worker.serve();
  }
  if (status != 0) {
    // The job is gone or going: MPI_Finalize would wait for ranks that will never
    // come. The attempts are dead (~Worker); leave now.
    std::fflush(nullptr);
    std::_Exit(status);
  }
  return status;
}

}  // namespace sluice::mpi
