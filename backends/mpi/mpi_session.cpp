#include "mpi_session.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "mpi_wire.hpp"

namespace sluice::mpi {

MpiSession& MpiSession::get() {
  static MpiSession session;
  return session;
}

MpiSession::MpiSession() {
  // Open MPI turns on "yield when idle" when a node runs more ranks than it has cores,
  // which is the usual layout here (rank 0 beside a worker per core): every MPI call
  // that finds nothing to do then calls sched_yield(), ~30,000 times per 50,000 function
  // tasks on rank 0, each one handing the core to whatever else is runnable. Sluice
  // never spins in MPI (its ranks sleep or wait on epoll between looks), so yielding
  // only loses the core. An explicit setting by the user still wins.
  ::setenv("OMPI_MCA_mpi_yield_when_idle", "0", /*overwrite=*/0);
  int provided = 0;
  if (MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
    std::fprintf(stderr, "sluice: MPI_Init_thread failed\n");
    std::_Exit(3);
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int len = 0;
  MPI_Get_processor_name(name, &len);
  host_.assign(name, static_cast<std::size_t>(std::max(len, 0)));

  MPI_Comm node = MPI_COMM_NULL;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &node_rank_);
  int is_worker = rank_ == 0 ? 0 : 1;
  MPI_Allreduce(&is_worker, &node_workers_, 1, MPI_INT, MPI_SUM, node);
  int before = 0;
  MPI_Exscan(&is_worker, &before, 1, MPI_INT, MPI_SUM, node);
  if (node_rank_ == 0) before = 0;  // MPI_Exscan leaves rank 0's result undefined
  node_worker_index_ = is_worker ? before : -1;
  int has_coordinator = rank_ == 0 ? 1 : 0;
  int any = 0;
  MPI_Allreduce(&has_coordinator, &any, 1, MPI_INT, MPI_MAX, node);
  coordinator_on_node_ = any != 0;
  MPI_Comm_free(&node);

  // A job killed from outside must not leave a coordinator running on: it would hold
  // the run's lock and keep writing the store that `sluice resume` needs.
  if (rank_ == 0) ::prctl(PR_SET_PDEATHSIG, SIGKILL);
}

void MpiSession::release_workers() {
  if (rank_ != 0 || workers_released_) return;
  workers_released_ = true;
  SendQueue sends;
  for (int r = 1; r < size_; ++r) sends.send(r, kTagShutdown, {});
  sends.flush(std::chrono::seconds(10));
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  release_workers();
  MPI_Finalize();
}

SendQueue::~SendQueue() {
  if (flush(std::chrono::seconds(1))) return;
  for (Pending& p : pending_) {
    if (p.request == MPI_REQUEST_NULL) continue;
    MPI_Request_free(&p.request);
    // MPI may still read the buffer after the request is freed: leak it on purpose.
    new std::vector<char>(std::move(p.bytes));
  }
}

void SendQueue::send(int dest, int tag, std::vector<char> bytes) {
  Pending& p = pending_.emplace_back();
  p.bytes = std::move(bytes);
  // An empty vector may have no buffer; MPI wants a valid address even for 0 bytes.
  static char empty = 0;
  void* data = p.bytes.empty() ? &empty : p.bytes.data();
  MPI_Isend(data, static_cast<int>(p.bytes.size()), MPI_BYTE, dest, tag, MPI_COMM_WORLD,
            &p.request);
}

void SendQueue::progress() {
  if (pending_.empty()) return;
  // One MPI call for all of them (one pass of MPI's progress engine, not one per send).
  requests_.clear();
  for (const Pending& p : pending_) requests_.push_back(p.request);
  indices_.resize(requests_.size());
  int count = 0;
  MPI_Testsome(static_cast<int>(requests_.size()), requests_.data(), &count, indices_.data(),
               MPI_STATUSES_IGNORE);
  if (count == MPI_UNDEFINED || count == 0) return;
  // MPI_Testsome set the completed ones to MPI_REQUEST_NULL in requests_.
  std::size_t i = 0;
  for (auto it = pending_.begin(); it != pending_.end(); ++i) {
    if (requests_[i] == MPI_REQUEST_NULL) {
      it->request = MPI_REQUEST_NULL;
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
}

bool SendQueue::flush(std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  Backoff backoff;
  for (;;) {
    progress();
    if (pending_.empty()) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    backoff.pause();
  }
}

bool try_receive(int source, int& from, int& tag, std::vector<char>& bytes) {
  int flag = 0;
  MPI_Message message = MPI_MESSAGE_NULL;
  MPI_Status status;
  MPI_Improbe(source, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &message, &status);
  if (!flag) return false;
  int count = 0;
  MPI_Get_count(&status, MPI_BYTE, &count);
  bytes.resize(static_cast<std::size_t>(count));
  char dummy = 0;
  MPI_Mrecv(count > 0 ? bytes.data() : &dummy, count, MPI_BYTE, &message, MPI_STATUS_IGNORE);
  from = status.MPI_SOURCE;
  tag = status.MPI_TAG;
  return true;
}

void Backoff::pause(std::chrono::microseconds limit) {
  delay_ = std::clamp(delay_ * 2, std::chrono::microseconds(20), std::chrono::microseconds(1000));
  std::this_thread::sleep_for(std::min(delay_, limit));
}

}  // namespace sluice::mpi
