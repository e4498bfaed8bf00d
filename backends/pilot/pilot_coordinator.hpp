// The coordinator side of the pilot backend (pilot_backend.hpp), shared by the files that
// implement it: pilot_backend.cpp (the Backend verbs, start-up), pilot_connections.cpp
// (workers: accept, hello, messages, dispatch, liveness) and pilot_allocations.cpp
// (Slurm allocations and the state file for `sluice workers`). Not thread-safe: the
// engine calls a backend from one thread.
#pragma once

#include <sys/epoll.h>
#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "pilot_crypto.hpp"
#include "pilot_handshake.hpp"
#include "pilot_net.hpp"
#include "pilot_options.hpp"
#include "pilot_wire.hpp"
#include "placement.hpp"
#include "sluice/engine/backend.hpp"
#include "sluice/engine/wall_clock.hpp"
#include "slurm_driver.hpp"

namespace sluice::pilot {

using Clock = std::chrono::steady_clock;

using worker::attempt_key;
// Writes `text` to a temporary file and renames it over `path`.
bool write_atomically(const std::string& path, const std::string& text, mode_t mode);

class PilotBackend final : public Backend {
 public:
  PilotBackend(Options o, std::unique_ptr<slurm::SlurmDriver> driver);
  ~PilotBackend() override;

  std::string name() const override { return "pilot"; }
  // Each worker's local backend spools its slots' logs in the run's spools directory on
  // the shared filesystem (log_spool.hpp); completions bring each attempt's range back.
  bool spools_logs() const override { return true; }
  Capacity capacity() const override {
    // Allocations come and go: the scheduler gets a window of cores, and launches that no
    // worker can take yet wait here. Bounded because the coordinator makes each
    // launch's directory and opens its logs before handing it over: 10,000 at once would
    // be 20,000 open files.
    Capacity c;
    c.cpus = static_cast<int>(std::min<long>(o_.window, fd_window()));
    c.gpus = 1 << 20;
    c.executors = o_.executors;
    c.enforces_exec_time = true;
    return c;
  }
  Expected<std::string> launch(const LaunchRequest& request) override;
  void poll(std::vector<Completion>& out, std::chrono::milliseconds timeout) override;
  void kill(TaskId task, std::uint32_t attempt) override;
  std::size_t in_flight() const override { return placed_.size() + queue_.size() + ready_.size(); }
  void abandon(const std::string& handle) override;
  // Allocation queries (squeue) give up soon once the run is stopping.
  void set_stopping_check(std::function<bool()> stopping) override;

 private:
  struct Worker {
    std::uint32_t id = 0;
    std::unique_ptr<Connection> conn;
    std::unique_ptr<ServerHandshake> handshake;  // until the connection is sealed
    bool welcomed = false;                       // sealed, and its hello accepted
    bool retiring = false;
    Clock::time_point accepted;
    Clock::time_point heard;  // when it last sent anything
    pilot::Hello info;
    worker::FreeSlots free;
    int running = 0;
    std::uint64_t completed = 0;
    std::int64_t connected_us = 0;
    bool indexed = false;  // in by_free_, under its free cores when last indexed
    int indexed_cpus = 0;
    pilot::LaunchBatch batch;   // placed by this turn of dispatch(), not sent yet
    bool flush_queued = false;  // in to_flush_
    bool out_armed = false;     // registered for EPOLLOUT: its socket took less than queued
  };
  struct Placed {
    std::uint32_t worker = 0;
    int cpus = 0;
    int gpus = 0;
  };
  struct Queued {
    TaskId task = 0;
    std::uint32_t attempt = 0;
    int cpus = 0;
    int gpus = 0;
    std::int64_t max_exec_ms = 0;
    std::string executor;
    std::string bytes;
  };
  struct Allocation {
    std::string job;
    enum State { kPending, kRunning, kEnded } state = kPending;
    int workers = 0;  // connected now
    int ever = 0;     // connected at all
    std::int64_t submitted_us = 0, started_us = 0, ended_us = 0;
    std::string end_reason;
    int missing = 0;
  };
  struct Gone {  // a worker that left, for `sluice workers`
    nlohmann::json record;
  };

  // Launches the descriptor limit leaves room for: two log files each, beside one socket
  // per worker and a reserve for the store and the rest. A window of 64,000 cores
  // (1,000 workers of 64) under a limit of 20,000 descriptors made launches fail with
  // EMFILE (bench/fleet --engine).
  long fd_window() const;
  Expected<void> start(const std::string& run_dir);
  bool can_take(const Worker& w, const Queued& q, std::int64_t now_s) const;
  // The worker with the most free cores that can start `q` now (placement.hpp), or nullptr.
  Worker* pick(const Queued& q, std::int64_t now_s);
  // Puts `w` in by_free_ under its free cores now (welcomed and not retiring), or out.
  void index(Worker& w);
  void unindex(Worker& w);
  void dispatch();
  // Queues a frame to `w` and notes that it has bytes to write this turn.
  void send(Worker& w, MsgType type, std::string_view payload);
  void queue_flush(Worker& w);
  // Writes what the workers that were sent something this turn have queued; what their
  // socket does not take waits for EPOLLOUT.
  void flush_pending();
  void arm(Worker& w);
  // Removes a worker that was never welcomed (or is dropped) from the loop and the map.
  void forget(std::map<std::uint32_t, Worker>::iterator it);
  void accept_all();
  // Reads and handles what `w` sent; false when it must be dropped.
  bool serve(Worker& w, std::vector<Completion>& out);
  bool on_handshake(Worker& w, MsgType type, std::string_view payload);
  bool on_hello(Worker& w, std::string_view payload);
  void drop(std::uint32_t id, const std::string& why, std::vector<Completion>& out);
  // Watches allocations (one batched query), drops workers of ended ones (their attempts
  // go to `out` as lost) and submits a new one when the policy says so.
  void manage_allocations(std::vector<Completion>& out);
  // Sends heartbeats that are due, drops workers silent for heartbeat_timeout (their
  // attempts go to `out` as lost) and connections not welcomed within kHandshakeTimeout.
  void check_liveness(std::vector<Completion>& out);
  void submit_allocation();
  Allocation* allocation_of(const std::string& job);
  void write_state(bool force);
  nlohmann::json worker_json(const Worker& w, const char* state) const;
  void load_previous_state();

  Options o_;
  long fd_limit_ = 0;  // RLIMIT_NOFILE after the constructor raised it; 0: unknown
  std::unique_ptr<slurm::SlurmDriver> driver_;
  std::string host_;
  bool started_ = false;
  std::string start_error_;
  std::string run_dir_, pilot_dir_, run_id_;
  Key key_;
  std::string address_;
  pilot::Fd listener_;
  std::map<std::uint32_t, Worker> workers_;
  // The workers that may take launches, most free cores first, then by id: the order in
  // which placement.hpp's rule picks, so that pick() looks at one or a few workers per
  // launch instead of all of them (with 1,000 workers the scan was most of the
  // coordinator's CPU per task; bench/fleet).
  std::set<std::pair<int, std::uint32_t>> by_free_;  // (-free cores, id)
  std::uint32_t next_worker_ = 1;
  std::unordered_map<std::uint64_t, Placed> placed_;
  std::deque<Queued> queue_;
  std::vector<Completion> ready_;
  std::vector<Allocation> allocs_;
  std::vector<Gone> gone_;
  Clock::time_point next_query_{}, next_submit_{}, next_state_{}, next_heartbeat_{};
  bool dirty_ = true;
  Clock::time_point next_liveness_{};
  // One epoll set over the listener (data 0) and every worker's socket (data: its id;
  // ids are never reused, so an event of a worker dropped this turn finds nothing). With
  // 1,000 workers, poll() over every socket each turn was a tenth of the coordinator's
  // CPU (bench/fleet).
  pilot::Fd epoll_;
  std::vector<epoll_event> events_;
  std::vector<std::uint32_t> batched_;   // workers with a batch this turn
  std::vector<std::uint32_t> to_flush_;  // workers sent something this turn
};

}  // namespace sluice::pilot
