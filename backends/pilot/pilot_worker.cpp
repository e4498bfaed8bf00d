#include "pilot_worker.hpp"

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "local_backend.hpp"
#include "pilot_net.hpp"
#include "pilot_policy.hpp"
#include "pilot_wire.hpp"
#include "sluice/duration.hpp"
#include "sluice/engine/host_info.hpp"
#include "sluice/engine/wall_clock.hpp"

namespace sluice::pilot {
namespace {

using Clock = std::chrono::steady_clock;

std::atomic<int> g_stop_signal{0};
std::atomic<int> g_functions_running{0};

FunctionTaskRunner& function_runner() {
  static FunctionTaskRunner runner;
  return runner;
}

// Completions of function tasks, handed from their threads to the worker's loop. Shared
// with the threads, so it outlives a Worker whose functions still run.
struct FunctionResults {
  std::mutex mu;
  // State below is protected by mu.
  std::uint64_t generation = 0;  // bumped when the coordinator is lost: late results drop
  std::vector<Completion> done;
};

void on_stop_signal(int sig) {
  g_stop_signal.store(sig);
}

std::uint64_t key_of(TaskId task, std::uint32_t attempt) {
  return (static_cast<std::uint64_t>(task) << 32) | attempt;
}

std::string read_word(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  in >> s;
  return s;
}

int node_cpus(const WorkerOptions& o) {
  if (o.cpus > 0) return o.cpus;
  const int share = std::max(1, o.workers_per_node);
  if (const char* s = std::getenv("SLURM_CPUS_ON_NODE"); s && std::atoi(s) > 0)
    return std::max(1, std::atoi(s) / share);
  return std::max(1, usable_cpus() / share);
}

// One worker of several on its node: CUDA_VISIBLE_DEVICES narrowed to this worker's
// contiguous block of the node's devices, so that detection here and in the local
// backend sees only those.
void take_gpu_block(int workers) {
  const std::vector<std::string> node = detect_local_gpus();
  const char* id = std::getenv("SLURM_LOCALID");
  const int i = std::clamp(id ? std::atoi(id) : 0, 0, workers - 1);
  const int n = static_cast<int>(node.size());
  const int chunk = n / workers, extra = n % workers;
  const int first = i * chunk + std::min(i, extra);
  const int count = chunk + (i < extra ? 1 : 0);
  std::string cvd;
  for (int k = first; k < first + count; ++k) cvd += (cvd.empty() ? "" : ",") + node[k];
  ::setenv("CUDA_VISIBLE_DEVICES", cvd.c_str(), 1);
  ::unsetenv("SLUICE_GPUS");
}

enum class End { kReleased, kLost, kSignaled, kRefused };

constexpr auto kSignalGrace = std::chrono::milliseconds(500);
constexpr TaskId kNoTask = ~TaskId{0};

class Worker {
 public:
  explicit Worker(const WorkerOptions& o) : o_(o) {
    if (o.workers_per_node > 1 && o.gpus < 0) take_gpu_block(o.workers_per_node);
    cpus_ = node_cpus(o);
    gpu_ids_ = o.gpus >= 0 ? local_gpu_ids(o.gpus) : detect_local_gpus();
    fresh_backend();
  }

  Hello hello(const std::string& secret) const {
    Hello h;
    h.secret = secret;
    if (const char* j = std::getenv("SLURM_JOB_ID")) h.job_id = j;
    h.host = host_name();
    h.pid = static_cast<std::int32_t>(::getpid());
    h.cpus = cpus_;
    h.gpu_ids = gpu_ids_;
    h.memory_mib = o_.memory_mib;
    if (const char* m = std::getenv("SLURM_MEM_PER_NODE"); h.memory_mib == 0 && m)
      h.memory_mib = std::atoll(m);
    h.executors = o_.executors;
    h.alloc_end_s = o_.alloc_end_s;
    return h;
  }

  // Kills whatever runs (the local backend's destructor does) and starts clean.
  void fresh_backend() {
    local_.reset();
    BackendOptions lo;
    lo.cpus = cpus_;
    // The same source as gpu_ids_: an explicit count, else detection (inside an
    // allocation: the CUDA_VISIBLE_DEVICES Slurm gave it).
    lo.gpus = o_.gpus;
    local_ = make_local_backend(lo);
    {
      std::lock_guard<std::mutex> lock(functions_->mu);
      functions_->generation++;
      functions_->done.clear();
    }
    functions_in_flight_ = 0;
    deadlines_.clear();
    killed_.clear();
    held_.clear();
    timed_out_.clear();
  }

  // `heartbeat_timeout` (0: none) is the coordinator's: heartbeats go out six times per
  // timeout, and a coordinator silent for twice that long is taken for gone (its host
  // died or the network split; a coordinator that exits closes the connection at once).
  // Twice, because a coordinator stalled on its store is slow, not gone, and giving up
  // on it kills every attempt here.
  End serve(Connection& conn, Millis heartbeat_timeout) {
    auto last_busy = Clock::now();
    auto heard = Clock::now();
    auto next_heartbeat = Clock::now();
    bool idle_sent = false;
    for (;;) {
      if (g_stop_signal.load() != 0) return End::kSignaled;
      if (heartbeat_timeout.count() > 0) {
        const auto now = Clock::now();
        if (now - heard > 2 * heartbeat_timeout) {
          std::fprintf(stderr, "sluice worker: the coordinator sent nothing for %s\n",
                       format_duration(2 * heartbeat_timeout).c_str());
          return End::kLost;
        }
        if (now >= next_heartbeat) {
          conn.send(MsgType::kHeartbeat, {});
          next_heartbeat = now + heartbeat_timeout / 6;
        }
      }
      const bool busy = local_->in_flight() > 0 || !held_.empty();
      pollfd p{conn.fd(), static_cast<short>(POLLIN | (conn.wants_write() ? POLLOUT : 0)), 0};
      // Function threads do not wake this loop: look for their results every 2 ms.
      const int n = ::poll(&p, 1, busy ? 0 : functions_in_flight_ > 0 ? 2 : 100);
      // Frames may wait in the buffer without the socket being readable (the launches
      // that came with the welcome), so the buffer is drained on every turn.
      if (n > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
        if (!conn.read_some()) return End::kLost;
        heard = Clock::now();
      }
      {
        MsgType type;
        std::string_view payload;
        bool bad = false;
        while (conn.next(type, payload, bad)) {
          if (type == MsgType::kLaunch) {
            auto l = decode_launch(payload);
            if (!l) {
              std::fprintf(stderr, "sluice worker: %s\n", l.error().message.c_str());
              return End::kLost;
            }
            start(*l);
            idle_sent = false;
            last_busy = Clock::now();
          } else if (type == MsgType::kKill) {
            if (auto k = decode_kill(payload)) {
              killed_.insert(key_of(k->first, k->second));
              local_->kill(k->first, k->second);
            }
          } else if (type == MsgType::kShutdown) {
            auto why = decode_text(payload);
            std::fprintf(stderr, "sluice worker: released by the coordinator (%s)\n",
                         why ? why->c_str() : "?");
            return End::kReleased;
          }
        }
        if (bad) return End::kLost;
      }
      // done_ may already hold launches that failed at once (start()).
      local_->poll(done_, std::chrono::milliseconds(busy ? 1 : 0));
      collect_functions();
      check_deadlines();
      const auto now = Clock::now();
      for (Completion& c : done_) {
        const auto k = key_of(c.task, c.attempt);
        deadlines_.erase(k);
        const bool asked = killed_.erase(k) > 0;
        if (auto t = timed_out_.find(k); t != timed_out_.end()) {
          c.kind = ExitKind::kSignaled;
          c.reason = "timed out after " + format_duration(std::chrono::milliseconds(t->second));
          timed_out_.erase(t);
        } else if (!asked && !(c.kind == ExitKind::kExited && c.code == 0)) {
          // scancel and the time limit signal every process of the job, the attempts
          // perhaps first (a shell then exits 143): hold a failure back a moment, and if
          // this worker is being stopped too, let the coordinator see the worker vanish
          // (lost, retried for free) instead of a failed attempt.
          held_.push_back({now + kSignalGrace, std::move(c)});
          c.task = kNoTask;
        }
      }
      std::erase_if(done_, [](const Completion& c) { return c.task == kNoTask; });
      while (!held_.empty() && held_.front().first <= now) {
        if (g_stop_signal.load() != 0) return End::kSignaled;
        done_.push_back(std::move(held_.front().second));
        held_.pop_front();
      }
      if (!done_.empty()) {
        if (g_stop_signal.load() != 0) return End::kSignaled;
        conn.send(MsgType::kCompletions, encode_completions(done_));
      }
      const bool reported = !done_.empty();
      done_.clear();
      if (local_->in_flight() > 0 || functions_in_flight_ > 0 || reported) {
        last_busy = Clock::now();
      } else if (!idle_sent && Clock::now() - last_busy >= o_.idle_timeout) {
        conn.send(MsgType::kIdle, {});
        idle_sent = true;
      }
      if (conn.wants_write() && !conn.flush()) return End::kLost;
    }
  }

 private:
  void report_now(const Launch& l, ExitKind kind, std::string reason) {
    Completion c;
    c.task = l.task;
    c.attempt = l.attempt;
    c.kind = kind;
    c.code = -1;
    c.reason = std::move(reason);
    c.started_us = c.ended_us = wall_us();
    done_.push_back(std::move(c));
  }

  void start(const Launch& l) {
    if (!fits_remaining(l.max_exec_ms, o_.alloc_end_s, wall_us() / 1'000'000)) {
      // The coordinator checks this too; a clock step could still get here. Lost: the
      // attempt never had a chance and is retried elsewhere without using a retry.
      report_now(l, ExitKind::kLost, "its max_exec_time does not fit in this allocation's time");
      return;
    }
    if (!l.function.empty() && l.gpus == 0 && function_runner()) {
      start_function(l);
    } else if (auto handle = local_->launch(wire::to_launch_request(l, spec_)); !handle) {
      report_now(l, ExitKind::kLaunchFailed, handle.error().message);
      return;
    }
    if (l.max_exec_ms > 0)
      deadlines_[key_of(l.task, l.attempt)] = {
          Clock::now() + std::chrono::milliseconds(l.max_exec_ms), l.max_exec_ms};
  }

  // Calls the function on a thread of its own; its completion reaches done_ through
  // collect_functions(), unless the coordinator was lost meanwhile.
  void start_function(const Launch& l) {
    std::uint64_t generation;
    {
      std::lock_guard<std::mutex> lock(functions_->mu);
      generation = functions_->generation;
    }
    ++functions_in_flight_;
    ++g_functions_running;
    std::thread([l, generation, results = functions_] {
      Completion c;
      c.task = l.task;
      c.attempt = l.attempt;
      c.started_us = wall_us();
      c.code = function_runner()(l, c.content_hash);
      c.ended_us = wall_us();
      {
        std::lock_guard<std::mutex> lock(results->mu);
        if (results->generation == generation) results->done.push_back(std::move(c));
      }
      --g_functions_running;
    }).detach();
  }

  void collect_functions() {
    if (functions_in_flight_ == 0) return;
    std::lock_guard<std::mutex> lock(functions_->mu);
    functions_in_flight_ -= static_cast<int>(functions_->done.size());
    for (Completion& c : functions_->done) done_.push_back(std::move(c));
    functions_->done.clear();
  }

  void check_deadlines() {
    if (deadlines_.empty()) return;
    const auto now = Clock::now();
    for (auto& [k, d] : deadlines_) {
      if (now < d.first || timed_out_.count(k)) continue;
      timed_out_[k] = d.second;
      local_->kill(static_cast<TaskId>(k >> 32), static_cast<std::uint32_t>(k & 0xffffffffu));
    }
  }

  WorkerOptions o_;
  int cpus_ = 1;
  std::vector<std::string> gpu_ids_;
  std::unique_ptr<Backend> local_;
  TaskSpec spec_;  // scratch: the local backend reads it only during launch()
  std::shared_ptr<FunctionResults> functions_ = std::make_shared<FunctionResults>();
  int functions_in_flight_ = 0;  // started and not yet collected
  std::vector<Completion> done_;
  std::unordered_map<std::uint64_t, std::pair<Clock::time_point, std::int64_t>> deadlines_;
  std::unordered_map<std::uint64_t, std::int64_t> timed_out_;
  std::set<std::uint64_t> killed_;  // by the coordinator's request
  std::deque<std::pair<Clock::time_point, Completion>> held_;
};

// Sends the hello and waits for the answer: kWelcome, kRefused or nothing (lost).
End handshake(Connection& conn, const Hello& hello, Welcome& welcome) {
  conn.send(MsgType::kHello, encode_hello(hello));
  if (!conn.flush_blocking(10'000)) return End::kLost;
  const auto until = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < until) {
    if (g_stop_signal.load() != 0) return End::kSignaled;
    pollfd p{conn.fd(), POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    if (!conn.read_some()) return End::kLost;
    MsgType type;
    std::string_view payload;
    bool bad = false;
    if (conn.next(type, payload, bad)) {
      if (type == MsgType::kWelcome) {
        auto w = decode_welcome(payload);
        if (!w) return End::kLost;
        welcome = *w;
        return End::kReleased;  // = accepted
      }
      if (type == MsgType::kRefused) {
        auto why = decode_text(payload);
        std::fprintf(stderr, "sluice worker: the coordinator refused the connection: %s\n",
                     why ? why->c_str() : "?");
        return End::kRefused;
      }
      return End::kLost;
    }
    if (bad) return End::kLost;
  }
  return End::kLost;
}

}  // namespace

void set_function_task_runner(FunctionTaskRunner runner) {
  function_runner() = std::move(runner);
}

bool function_tasks_running() {
  return g_functions_running.load() > 0;
}

int serve_worker(const WorkerOptions& o) {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  ::sigemptyset(&sa.sa_mask);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  if (o.connect.empty() && o.pilot_dir.empty()) {
    std::fprintf(stderr, "sluice worker: give --connect HOST:PORT or --pilot-dir DIR\n");
    return 3;
  }
  const std::string secret_path = o.secret_file.empty() ? o.pilot_dir + "/secret" : o.secret_file;
  const std::string secret = read_word(secret_path);
  if (secret.empty()) {
    std::fprintf(stderr, "sluice worker: no secret in %s\n", secret_path.c_str());
    return 3;
  }
  Worker worker(o);
  auto give_up = Clock::now() + o.reconnect_timeout;
  bool announced = false;
  for (;;) {
    if (int sig = g_stop_signal.load()) return 128 + sig;
    const std::string address = o.connect.empty() ? read_word(o.pilot_dir + "/address") : o.connect;
    auto fd = address.empty() ? Expected<Fd>(make_error(ErrorCode::kNotFound, "no address yet"))
                              : connect_tcp(address, 5'000);
    if (!fd) {
      if (Clock::now() >= give_up) {
        std::fprintf(stderr, "sluice worker: no coordinator at %s (%s); leaving\n",
                     address.empty() ? "?" : address.c_str(), fd.error().message.c_str());
        return 0;
      }
      std::this_thread::sleep_for(std::chrono::seconds(1));
      continue;
    }
    Connection conn(std::move(*fd));
    Welcome welcome;
    End end = handshake(conn, worker.hello(secret), welcome);
    if (end == End::kRefused) return 3;
    if (end == End::kSignaled) return 128 + g_stop_signal.load();
    if (end == End::kReleased) {
      if (!announced) std::fprintf(stderr, "sluice worker: connected to %s\n", address.c_str());
      announced = true;
      end = worker.serve(conn, Millis(welcome.heartbeat_timeout_ms));
      if (end == End::kReleased) return 0;
      if (end == End::kSignaled) return 128 + g_stop_signal.load();
      std::fprintf(stderr, "sluice worker: lost the coordinator at %s; killing its attempts\n",
                   address.c_str());
      worker.fresh_backend();
      give_up = Clock::now() + o.reconnect_timeout;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace sluice::pilot
