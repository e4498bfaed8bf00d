// MpiSession: this process's membership in an MPI job, for the `mpi` backend. MPI is
// initialised (MPI_THREAD_FUNNELED: only the thread that initialised it calls MPI) on
// the first call of MpiSession::get() and finalised when the process exits normally.
// Nothing else in Sluice initialises MPI, so every other backend runs without mpirun.
//
// Topology: world rank and size, and the node-local view (MPI_Comm_split_type with
// MPI_COMM_TYPE_SHARED): how many workers (ranks other than 0) share this node and
// this rank's index among them, which is how workers split a node's cores and GPUs.
//
// Losing the job: rank 0 asks the kernel for SIGKILL when its parent (mpirun, orted
// or slurmstepd) dies, so a killed job leaves no coordinator behind; the run store
// stays consistent (every change is committed before it is acted on). Workers watch
// for the same event themselves (see mpi_worker.hpp).
//
// Not thread-safe: one thread uses MPI.
#pragma once

#include <mpi.h>

#include <chrono>
#include <list>
#include <string>
#include <vector>

namespace sluice::mpi {

class MpiSession {
 public:
  // Initialises MPI on first use. Aborts the process when MPI cannot start (there is
  // no way to report to the other ranks without it).
  static MpiSession& get();

  int rank() const { return rank_; }
  int size() const { return size_; }
  const std::string& host() const { return host_; }
  int node_rank() const { return node_rank_; }                  // among every rank of the node
  int node_workers() const { return node_workers_; }            // ranks > 0 on this node
  int node_worker_index() const { return node_worker_index_; }  // -1 on rank 0
  bool coordinator_on_node() const { return coordinator_on_node_; }

  // Rank 0: tells every worker to stop (once); called by the backend when the run
  // ends and, as a fallback, when the process exits before a backend existed.
  void release_workers();

  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

 private:
  MpiSession();

  int rank_ = 0;
  int size_ = 1;
  std::string host_;
  int node_rank_ = 0;
  int node_workers_ = 0;
  int node_worker_index_ = -1;
  bool coordinator_on_node_ = false;
  bool workers_released_ = false;
};

// Sends that never block the caller: each message is handed to MPI_Isend and its
// buffer kept until MPI reports the send complete. Blocking sends could deadlock when
// rank 0 and a worker both send a large (rendezvous) message to each other.
class SendQueue {
 public:
  SendQueue() = default;
  SendQueue(const SendQueue&) = delete;
  SendQueue& operator=(const SendQueue&) = delete;
  // Waits up to a second for outstanding sends; then frees their requests and, since
  // MPI may still read them, deliberately leaks their buffers.
  ~SendQueue();

  void send(int dest, int tag, std::vector<char> bytes);
  // Completes what MPI has finished; cheap when nothing is outstanding.
  void progress();
  // Progresses until every send completed or `timeout` passed; true when all did.
  bool flush(std::chrono::milliseconds timeout);
  bool empty() const { return pending_.empty(); }

 private:
  struct Pending {
    std::vector<char> bytes;
    MPI_Request request = MPI_REQUEST_NULL;
  };
  std::list<Pending> pending_;         // a list: buffers must not move while MPI holds them
  std::vector<MPI_Request> requests_;  // scratch for progress()
  std::vector<int> indices_;
};

// Receives one message matching `source` (or MPI_ANY_SOURCE) with any tag if one has
// arrived; false when none is waiting. Never blocks.
bool try_receive(int source, int& from, int& tag, std::vector<char>& bytes);

// Waiting without spinning: idle ranks share the cores with busy ones. Each call to
// pause() sleeps a little longer, from 20 us up to 1 ms; reset() after activity.
class Backoff {
 public:
  void reset() { delay_ = std::chrono::microseconds(0); }
  // Sleeps at most `limit`.
  void pause(std::chrono::microseconds limit = std::chrono::microseconds(1000));
  std::chrono::microseconds next() const { return delay_; }

 private:
  std::chrono::microseconds delay_{0};
};

}  // namespace sluice::mpi
