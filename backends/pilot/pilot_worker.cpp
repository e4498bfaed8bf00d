#include "pilot_worker.hpp"

#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "local_backend.hpp"
#include "pilot_handshake.hpp"
#include "pilot_net.hpp"
#include "pilot_policy.hpp"
#include "pilot_wire.hpp"
#include "sluice/duration.hpp"
#include "sluice/engine/host_info.hpp"
#include "sluice/engine/wall_clock.hpp"
#include "worker_runtime.hpp"
#include "worker_share.hpp"

namespace sluice::pilot {
namespace {

using Clock = std::chrono::steady_clock;

// How long a failure nobody asked for is held back (worker_runtime.hpp): scancel and the
// time limit signal the attempts and this worker about together.
constexpr auto kSignalGrace = std::chrono::milliseconds(500);

std::string read_word(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  in >> s;
  return s;
}

// This worker's share of its node: `cpus`, else Slurm's cores for the node (or the ones
// it may use) split among the node's workers; its GPUs, the SLURM_LOCALID-th block of
// the node's when several workers share the node and no count was given (its attempts'
// CUDA_VISIBLE_DEVICES narrowed to it). Function tasks run on threads; the coordinator
// makes attempt directories.
worker::RuntimeOptions runtime_options(const WorkerOptions& o) {
  worker::RuntimeOptions r;
  int offered = usable_cpus();
  if (const char* s = std::getenv("SLURM_CPUS_ON_NODE"); s && std::atoi(s) > 0)
    offered = std::atoi(s);
  r.cpus = worker::cpu_share(o.cpus, offered, o.workers_per_node, false);
  const std::vector<std::string> node = o.gpus >= 0 ? local_gpu_ids(o.gpus) : detect_local_gpus();
  r.environment = worker::process_environment();
  if (o.workers_per_node > 1 && o.gpus < 0) {
    const char* id = std::getenv("SLURM_LOCALID");
    r.gpu_ids = worker::gpu_block(node, o.workers_per_node, id ? std::atoi(id) : 0);
    worker::narrow_gpus(r.environment, r.gpu_ids, !node.empty());
  } else {
    r.gpu_ids = node;
  }
  r.functions = worker::RuntimeOptions::Functions::kThreads;
  r.enforce_exec_time = true;
  r.failure_grace = kSignalGrace;
  return r;
}

enum class End { kReleased, kLost, kSignaled };

class Worker {
 public:
  Worker(const WorkerOptions& o, const worker::RuntimeOptions& share)
      : o_(o), cpus_(share.cpus), gpu_ids_(share.gpu_ids), runtime_(share) {}

  Hello hello() const {
    Hello h;
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

  // Kills whatever runs and starts clean.
  void fresh_backend() { runtime_.reset(); }

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
      if (worker::stop_signal() != 0) return End::kSignaled;
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
      const bool busy = runtime_.processes_running() > 0 || runtime_.holding_failures();
      pollfd p{conn.fd(), static_cast<short>(POLLIN | (conn.wants_write() ? POLLOUT : 0)), 0};
      // Function threads do not wake this loop: look for their results every 2 ms.
      const int n = ::poll(&p, 1, busy ? 0 : runtime_.functions_running() > 0 ? 2 : 100);
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
          if (type == MsgType::kLaunch || type == MsgType::kLaunches) {
            launches_.clear();
            if (auto r = decode_any_launch(type, payload, launches_); !r) {
              std::fprintf(stderr, "sluice worker: %s\n", r.error().message.c_str());
              return End::kLost;
            }
            for (const Launch& l : launches_) start(l);
            idle_sent = false;
            last_busy = Clock::now();
          } else if (type == MsgType::kKill) {
            if (auto k = decode_kill(payload)) runtime_.kill(k->first, k->second);
          } else if (type == MsgType::kShutdown) {
            auto why = decode_text(payload);
            std::fprintf(stderr, "sluice worker: released by the coordinator (%s)\n",
                         why ? why->c_str() : "?");
            return End::kReleased;
          }
        }
        if (bad) return End::kLost;
      }
      runtime_.collect(done_, std::chrono::milliseconds(busy ? 1 : 0));
      if (!done_.empty()) {
        // A worker being stopped sends nothing more: its held failures stay unreported.
        if (worker::stop_signal() != 0) return End::kSignaled;
        conn.send(MsgType::kCompletions, encode_completions(done_));
      }
      const bool reported = !done_.empty();
      done_.clear();
      if (runtime_.processes_running() > 0 || runtime_.functions_running() > 0 || reported) {
        last_busy = Clock::now();
      } else if (!idle_sent && Clock::now() - last_busy >= o_.idle_timeout) {
        conn.send(MsgType::kIdle, {});
        idle_sent = true;
      }
      if (conn.wants_write() && !conn.flush()) return End::kLost;
    }
  }

 private:
  void start(const Launch& l) {
    if (!fits_remaining(l.max_exec_ms, o_.alloc_end_s, wall_us() / 1'000'000)) {
      // The coordinator checks this too; a clock step could still get here. Lost: the
      // attempt never had a chance and is retried elsewhere without using a retry.
      runtime_.refuse(l, ExitKind::kLost,
                      "its max_exec_time does not fit in this allocation's time");
      return;
    }
    runtime_.start(l);
  }

  WorkerOptions o_;
  int cpus_ = 1;
  std::vector<std::string> gpu_ids_;
  worker::Runtime runtime_;  // its destructor kills every attempt still running
  std::vector<Completion> done_;
  std::vector<Launch> launches_;  // of the frame being handled
};

bool stopping() {
  return worker::stop_signal() != 0;
}

// Proves the key (pilot_handshake.hpp), sends the hello and waits for the answer:
// kWelcome, kRefused, or nothing (lost). kImpostor: the peer could not prove the key.
enum class Greeting { kWelcomed, kImpostor, kRefused, kLost, kSignaled };
Greeting greet(Connection& conn, const Key& key, const Hello& hello, Welcome& welcome,
               std::string& why) {
  const AuthResult auth = authenticate(conn, key, 10'000, why, stopping);
  if (stopping()) return Greeting::kSignaled;
  if (auth == AuthResult::kImpostor) return Greeting::kImpostor;
  if (auth == AuthResult::kRefused) return Greeting::kRefused;
  if (auth != AuthResult::kAccepted) return Greeting::kLost;
  conn.send(MsgType::kHello, encode_hello(hello));
  if (!conn.flush_blocking(10'000)) return Greeting::kLost;
  const auto until = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < until) {
    if (stopping()) return Greeting::kSignaled;
    MsgType type;
    std::string_view payload;
    bool bad = false;
    if (conn.next(type, payload, bad)) {
      if (type == MsgType::kWelcome) {
        auto w = decode_welcome(payload);
        if (!w) return Greeting::kLost;
        welcome = *w;
        return Greeting::kWelcomed;
      }
      if (type == MsgType::kRefused) {
        auto text = decode_text(payload);
        why = text ? *text : "?";
        return Greeting::kRefused;
      }
      return Greeting::kLost;
    }
    if (bad) return Greeting::kLost;
    pollfd p{conn.fd(), POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    if (!conn.read_some()) return Greeting::kLost;
  }
  return Greeting::kLost;
}

}  // namespace

int serve_worker(const WorkerOptions& o) {
  worker::install_stop_handlers();
  if (o.connect.empty() && o.pilot_dir.empty()) {
    std::fprintf(stderr, "sluice worker: give --connect HOST:PORT or --pilot-dir DIR\n");
    return 3;
  }
  if (auto r = init_crypto(); !r) {
    std::fprintf(stderr, "sluice worker: %s\n", r.error().message.c_str());
    return 3;
  }
  const std::string key_path = o.secret_file.empty() ? o.pilot_dir + "/secret" : o.secret_file;
  const auto key = Key::from_hex(read_word(key_path));
  if (!key) {
    std::fprintf(stderr, "sluice worker: no run key in %s (%s)\n", key_path.c_str(),
                 key.error().message.c_str());
    return 3;
  }
  Worker worker(o, runtime_options(o));
  auto give_up = Clock::now() + o.reconnect_timeout;
  bool announced = false;
  // A coordinator that cannot prove the key is refused and never told anything; the
  // worker goes on looking for the real one (a resumed coordinator writes a new address)
  // and exits 3 if none shows up in time.
  std::string impostor;
  for (;;) {
    if (int sig = worker::stop_signal()) return 128 + sig;
    const std::string address = o.connect.empty() ? read_word(o.pilot_dir + "/address") : o.connect;
    auto fd = address.empty() ? Expected<Fd>(make_error(ErrorCode::kNotFound, "no address yet"))
                              : connect_tcp(address, 5'000);
    if (Clock::now() >= give_up && !impostor.empty()) {
      std::fprintf(stderr,
                   "sluice worker: refused the coordinator at %s: %s; no other one came, "
                   "leaving\n",
                   impostor.c_str(), "it did not prove the run's key");
      return 3;
    }
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
    std::string why;
    const Greeting greeting = greet(conn, *key, worker.hello(), welcome, why);
    if (greeting == Greeting::kRefused) {
      std::fprintf(stderr, "sluice worker: the coordinator refused the connection: %s\n",
                   why.c_str());
      return 3;
    }
    if (greeting == Greeting::kSignaled) return 128 + worker::stop_signal();
    if (greeting == Greeting::kImpostor && impostor != address) {
      std::fprintf(stderr, "sluice worker: refused the coordinator at %s: %s\n", address.c_str(),
                   why.c_str());
      impostor = address;
    }
    if (greeting == Greeting::kWelcomed) {
      impostor.clear();
      if (!announced) std::fprintf(stderr, "sluice worker: connected to %s\n", address.c_str());
      announced = true;
      const End end = worker.serve(conn, Millis(welcome.heartbeat_timeout_ms));
      if (end == End::kReleased) return 0;
      if (end == End::kSignaled) return 128 + worker::stop_signal();
      std::fprintf(stderr, "sluice worker: lost the coordinator at %s; killing its attempts\n",
                   address.c_str());
      worker.fresh_backend();
      give_up = Clock::now() + o.reconnect_timeout;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace sluice::pilot
