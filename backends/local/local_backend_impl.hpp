#pragma once
// The local backend's state, shared by the files that implement it: local_backend.cpp
// (the Backend interface: slots and launch), attempt_reaping.cpp (completions: reaping,
// the pipes' bytes into the spools) and attempt_kill.cpp (kill escalation, abandon).
// local_backend.hpp documents the behaviour.
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "child_env.hpp"
#include "local_backend.hpp"
#include "process_spawner.hpp"
#include "program_search.hpp"
#include "sluice/engine/log_spool.hpp"
#include "spawn_file_actions.hpp"

namespace sluice::local {

using SteadyClock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kDefaultKillGrace{2000};
constexpr int kMaxEvents = 64;
#if defined(__SANITIZE_THREAD__)
constexpr bool kFastSpawnByDefault = false;
#else
constexpr bool kFastSpawnByDefault = true;
#endif
// Set to their default in every attempt even when the coordinator ignores them.
constexpr int kDefaultSignals[] = {SIGINT, SIGTERM, SIGCHLD, SIGPIPE};

// Parses a non-negative integer; -1 when malformed.
long long parse_count(std::string_view s);

class LocalBackend final : public Backend {
 public:
  explicit LocalBackend(const LocalBackendOptions& local);
  ~LocalBackend() override;

  std::string name() const override { return "local"; }
  Capacity capacity() const override { return capacity_; }
  Expected<std::string> launch(const LaunchRequest& request) override;
  void poll(std::vector<Completion>& out, std::chrono::milliseconds timeout) override;
  void kill(TaskId task, std::uint32_t attempt) override;
  std::size_t in_flight() const override { return active_; }
  void abandon(const std::string& handle) override;
  bool spools_logs() const override { return true; }

 private:
  struct Proc {
    bool active = false;
    bool term_sent = false;
    pid_t pid = 0;
    int pidfd = -1;
    TaskId task = 0;
    std::uint32_t attempt = 0;
    std::int64_t started_us = 0;
    SteadyClock::time_point kill_at{};
    std::vector<int> gpus;  // indices into gpu_ids_
    // The read ends of the attempt's stdout and stderr pipes while it spools, else -1.
    int out_pipe = -1;
    int err_pipe = -1;
    bool spooled = false;  // its logs go to the slot's spool (the pipes may be closed already)
  };
  // What an epoll event is about: bits 32+ of its data, the slot in the low bits.
  enum EventKind : std::uint64_t { kExitEvent = 0, kStdoutEvent = 1, kStderrEvent = 2 };

  // Starts `program`; `pidfd` is the child's pidfd where the spawn path gives one, else -1.
  // `out_fd`/`err_fd`: the child's stdout and stderr (-1: attempt_dir/stdout, /stderr).
  int spawn(const std::string& program, const LaunchRequest& request, int out_fd, int err_fd,
            pid_t& pid, int& pidfd);
  // Moves what the slot's pipes hold into its spool; `to_end`: until the pipes are
  // empty, then closes them (the attempt is over: a process that escaped its group
  // writes into a closed pipe from here on).
  void read_pipes(std::uint32_t slot, bool to_end);
  std::uint32_t take_slot();
  void release(std::uint32_t slot);
  // Reaps slot if its process has ended (`exited`: known to have ended, its pidfd is
  // readable) and appends its Completion.
  bool try_reap(std::uint32_t slot, bool exited, std::vector<Completion>& out);
  void escalate_kills(SteadyClock::time_point now);
  SteadyClock::time_point next_kill() const;

  Capacity capacity_;
  std::vector<std::string> gpu_ids_;
  std::vector<bool> gpu_busy_;
  std::string host_;
  std::chrono::milliseconds kill_grace_ = kDefaultKillGrace;

  posix_spawnattr_t attr_;
  // clone + execve by default; posix_spawn when asked (tests run both) or under TSan,
  // which cannot follow a child that shares the parent's memory.
  Spawner spawner_;
  bool fast_spawn_ = kFastSpawnByDefault;
  int epfd_ = -1;
  bool use_pidfd_ = true;

  ChildEnv env_;
  ProgramSearch programs_;
  SpawnFileActions file_actions_;
  std::vector<char*> argv_;
  std::string out_path_;
  std::string err_path_;
  std::string cvd_;

  std::vector<Proc> procs_;
  std::vector<std::uint32_t> free_slots_;
  std::size_t active_ = 0;
  std::size_t kills_pending_ = 0;
  epoll_event events_[kMaxEvents];
  SpoolSet spools_;  // one lane per slot
  std::vector<char> pipe_buffer_ = std::vector<char>(64 * 1024);
};

}  // namespace sluice::local
