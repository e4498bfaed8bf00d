// The coordinator side of the pilot backend (pilot_backend.hpp), shared by the files that
// implement it: pilot_backend.cpp (the Backend verbs, start-up), pilot_connections.cpp
// (workers: accept, hello, messages, dispatch, liveness) and pilot_allocations.cpp
// (Slurm allocations and the state file for `sluice workers`). Not thread-safe: the
// engine calls a backend from one thread.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
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
    c.cpus = o_.window;
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

  Expected<void> start(const std::string& run_dir);
  bool can_take(const Worker& w, const Queued& q, std::int64_t now_s) const;
  // The worker with the most free cores that can start `q` now (placement.hpp), or nullptr.
  Worker* pick(const Queued& q, std::int64_t now_s);
  void dispatch();
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
  std::unique_ptr<slurm::SlurmDriver> driver_;
  std::string host_;
  bool started_ = false;
  std::string start_error_;
  std::string run_dir_, pilot_dir_, run_id_;
  Key key_;
  std::string address_;
  pilot::Fd listener_;
  std::map<std::uint32_t, Worker> workers_;
  std::uint32_t next_worker_ = 1;
  std::unordered_map<std::uint64_t, Placed> placed_;
  std::deque<Queued> queue_;
  std::vector<Completion> ready_;
  std::vector<Allocation> allocs_;
  std::vector<Gone> gone_;
  Clock::time_point next_query_{}, next_submit_{}, next_state_{}, next_heartbeat_{};
  bool dirty_ = true;
  std::vector<pollfd> pfds_;
  std::vector<std::uint32_t> pfd_worker_;
};

}  // namespace sluice::pilot
