#include "mpi_worker.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string_view>
#include <thread>

#include "attempt_reaper.hpp"
#include "local_backend.hpp"
#include "mpi_session.hpp"
#include "mpi_wire.hpp"
#include "sluice/engine/host_info.hpp"
#include "worker_runtime.hpp"
#include "worker_share.hpp"

namespace sluice::mpi {
namespace {

constexpr int kMaxBatch = 256;  // launches handled between two reports to rank 0

// The MPI runtime's variables (Open MPI and PMIx; MPICH's Hydra: PMI_FD, PMI_RANK,
// MPI_LOCALRANKID, HYDI_CONTROL_FD): an attempt that itself calls mpirun, or starts an
// MPI program as a singleton, starts a job of its own instead of joining this one.
constexpr std::string_view kMpiVariables[] = {"OMPI_",           "PMIX_",          "OPAL_", "PRTE_",
                                              "ORTE_",           "HYDRA_",         "HYDI_", "PMI_",
                                              "MPI_LOCALRANKID", "MPI_LOCALNRANKS"};

// This rank's share of its node: cores (its affinity mask, whole when mpirun/srun bound
// it to its own) and a contiguous block of the node's GPUs; its attempts' environment
// without the MPI runtime's variables and narrowed to that block.
worker::RuntimeOptions runtime_options(const BackendOptions& options, const MpiSession& s) {
  worker::RuntimeOptions r;
  const int mine = usable_cpus();
  const int node_cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  r.cpus = worker::cpu_share(options.cpus, mine, s.node_workers(), mine < node_cores);
  const std::vector<std::string> node =
      options.gpus >= 0 ? local_gpu_ids(options.gpus) : detect_local_gpus();
  r.gpu_ids = worker::gpu_block(node, s.node_workers(), s.node_worker_index());
  r.environment = worker::process_environment();
  worker::drop_variables(r.environment, kMpiVariables);
  // One mark: a worker started by an attempt of another one marks its attempts anew
  // (the outer reaper still finds them through their process groups' leader, the rank).
  constexpr std::string_view kMark[] = {"SLUICE_WORKER_MARK="};
  worker::drop_variables(r.environment, kMark);
  r.environment.push_back(worker_mark());
  worker::narrow_gpus(r.environment, r.gpu_ids, !node.empty());
  r.functions = worker::RuntimeOptions::Functions::kInline;
  r.make_attempt_dirs = true;  // rank 0 leaves them to the workers (mpi_backend.hpp)
  r.scratch_prefix = "r" + std::to_string(s.rank()) + ".";
  return r;
}

// Kills what attempts of an earlier job left running on this node: every process whose
// environment says it is the attempt whose directory is one of `dirs`, with its process
// group. Such a process's SLUICE_ATTEMPT_DIR names the scratch folder it was lent, not
// `dirs` (RUN/tasks/TASK/N): its run, task and attempt say which it is.
void kill_attempts_in(const std::set<std::string>& dirs) {
  if (dirs.empty()) return;
  for (const std::string& dir : dirs) {
    const std::size_t n = dir.rfind('/');
    if (n == std::string::npos || n == 0) continue;
    const std::size_t t = dir.rfind('/', n - 1);
    if (t == std::string::npos || t < 7 || dir.compare(t - 6, 6, "/tasks") != 0) continue;
    const std::size_t r = dir.rfind('/', t - 7);
    if (r == std::string::npos) continue;
    kill_processes_whose_environment_has({"SLUICE_RUN_ID=" + dir.substr(r + 1, t - 7 - r),
                                          "SLUICE_TASK=" + dir.substr(t + 1, n - t - 1),
                                          "SLUICE_ATTEMPT=" + dir.substr(n + 1)});
  }
  // Attempts that had the directory itself (sluice before scratch folders on mpi).
  constexpr std::string_view kVar = "SLUICE_ATTEMPT_DIR=";
  kill_processes_whose_environment([&](std::string_view entry) {
    return entry.starts_with(kVar) && dirs.count(std::string(entry.substr(kVar.size()))) > 0;
  });
}

class Worker {
 public:
  // Says what this worker offers: rank 0 waits for every worker's hello.
  Worker(const worker::RuntimeOptions& share, MpiSession& session)
      : session_(session), runtime_(share) {
    WireHello hello;
    hello.host = session_.host();
    hello.cpus = share.cpus;
    hello.gpu_ids = share.gpu_ids;
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
      for (int n = 0; n < kMaxBatch && try_receive(0, from, tag, bytes);) {
        busy = true;
        if (tag == kTagShutdown) return 0;
        n += handle(tag, bytes);
      }
      kill_attempts_in(abandoned_);
      abandoned_.clear();
      sends_.progress();

      // Function tasks that ran while draining the messages go back with the processes'
      // completions: one message for the batch.
      runtime_.collect(done_, std::chrono::milliseconds(0));
      if (report()) busy = true;
      if (int sig = worker::stop_signal(); sig != 0) return 128 + sig;
      if (::getppid() != parent) return 128 + SIGHUP;  // mpirun is gone
      if (busy) {
        backoff.reset();
        continue;
      }
      // Idle: with processes running, wait for one to end (epoll wakes at its exit, so
      // a short command is reported at once instead of after a sleep of up to 1 ms);
      // with nothing running, sleep. Either way at most ~1 ms before looking for
      // messages again (while a process runs, rank 0 rarely has more for this worker:
      // it fills the worker's slots and then waits for a completion).
      if (runtime_.processes_running() > 0) {
        runtime_.collect(done_, std::chrono::milliseconds(1));
        if (report()) backoff.reset();
      } else {
        backoff.pause();
      }
    }
  }

 private:
  // Sends done_ to rank 0 as one message; false when there was nothing to send.
  bool report() {
    if (done_.empty()) return false;
    sends_.send(0, kTagCompletions, encode_completions(done_));
    done_.clear();
    return true;
  }

  // Returns how many launches (at least 1: any message counts) it handled.
  int handle(int tag, const std::vector<char>& bytes) {
    if (tag == kTagLaunch) {
      if (auto r = decode_launches(bytes, launches_); !r) {
        std::fprintf(stderr, "sluice worker %d: %s\n", session_.rank(), r.error().message.c_str());
        return 1;  // cannot even say which attempts: rank 0 sees no completion
      }
      for (const WireLaunch& l : launches_) runtime_.start(l);
      return std::max<int>(1, static_cast<int>(launches_.size()));
    } else if (tag == kTagKill) {
      if (auto k = decode_kill(bytes)) runtime_.kill(k->first, k->second);
    } else if (tag == kTagAbandon) {
      abandoned_.emplace(bytes.begin(), bytes.end());
    }
    return 1;
  }

  MpiSession& session_;
  worker::Runtime runtime_;  // its destructor kills every attempt still running
  SendQueue sends_;
  std::vector<Completion> done_;
  std::vector<WireLaunch> launches_;  // scratch for handle()
  std::set<std::string> abandoned_;
};

}  // namespace

int serve_as_worker(const BackendOptions& options) {
  MpiSession& session = MpiSession::get();
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  worker::install_stop_handlers();
  start_attempt_reaper(worker_mark());
  int status;
  {
    Worker worker(runtime_options(options, session), session);
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
