#include "pilot_backend.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "job_script.hpp"
#include "pilot_net.hpp"
#include "pilot_policy.hpp"
#include "pilot_wire.hpp"
#include "sluice/duration.hpp"
#include "slurm_backend.hpp"
#include "slurm_driver.hpp"

namespace sluice {
namespace {

using Clock = std::chrono::steady_clock;
using pilot::Connection;
using pilot::MsgType;

constexpr auto kHelloTimeout = std::chrono::seconds(10);
constexpr auto kStateInterval = std::chrono::seconds(1);
constexpr auto kSubmitBackoff = std::chrono::seconds(10);
// Allocations the cluster stopped listing for this many queries in a row have ended.
constexpr int kMissingQueries = 3;

std::int64_t wall_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::uint64_t key_of(TaskId task, std::uint32_t attempt) {
  return (static_cast<std::uint64_t>(task) << 32) | attempt;
}

std::string exe_path() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "sluice";
}

std::string run_dir_of(const std::string& attempt_dir) {
  const auto pos = attempt_dir.rfind("/tasks/");
  return pos == std::string::npos ? attempt_dir : attempt_dir.substr(0, pos);
}

bool write_atomically(const std::string& path, const std::string& text, mode_t mode) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return false;
  pilot::Fd owner(fd);
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return ::rename(tmp.c_str(), path.c_str()) == 0;
}

std::string random_secret() {
  unsigned char bytes[32] = {};
  pilot::Fd fd(::open("/dev/urandom", O_RDONLY | O_CLOEXEC));
  if (!fd.valid() || ::read(fd.get(), bytes, sizeof bytes) != static_cast<ssize_t>(sizeof bytes))
    return {};
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned char b : bytes) {
    s += hex[b >> 4];
    s += hex[b & 15];
  }
  return s;
}

// Compares without an early exit, so the time taken says nothing about the secret.
bool same_secret(const std::string& a, const std::string& b) {
  if (a.size() != b.size() || a.empty()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

bool is_running_state(const std::string& s) {
  return s == "RUNNING" || s == "COMPLETING" || s == "CONFIGURING" || s == "SUSPENDED";
}

bool is_pending_state(const std::string& s) {
  return s == "PENDING" || s == "REQUEUED" || s == "REQUEUE_HOLD" || s == "REQUEUE_FED";
}

struct Options {
  int max_allocations = 4;
  int nodes = 1;
  Millis time_limit{3'600'000};
  Millis idle_timeout{60'000};
  Millis poll_interval{2'000};
  Millis heartbeat_timeout{30'000};
  int cpus = 0;  // per node; 0: the whole node
  int gpus = 0;
  std::int64_t memory_mib = 0;
  std::vector<std::string> executors;
  slurm::SubmitRequest placement;
  int window = 0;  // cores' worth of launches handed to the backend at once
};

Expected<Options> parse_options(const BackendOptions& in) {
  Options o;
  o.cpus = std::max(0, in.cpus);
  o.gpus = std::max(0, in.gpus);
  o.executors = in.executors;
  auto bad = [](const std::string& k, const std::string& v, const std::string& why) {
    return make_error(ErrorCode::kInvalidInput, "pilot option " + k + "=" + v + ": " + why);
  };
  auto positive = [&](const std::string& k, const std::string& v, int& out) -> Expected<void> {
    char* end = nullptr;
    const long n = std::strtol(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || n < 1 || n > 100000) return bad(k, v, "not a positive number");
    out = static_cast<int>(n);
    return {};
  };
  auto duration = [&](const std::string& k, const std::string& v, Millis& out) -> Expected<void> {
    auto d = parse_duration(v);
    if (!d || d->count() <= 0) return bad(k, v, "not a duration (use 30s, 10m, 2h)");
    out = *d;
    return {};
  };
  for (const auto& [k, v] : in.extra) {
    Expected<void> r;
    if (k == "max_allocations") {
      r = positive(k, v, o.max_allocations);
    } else if (k == "nodes") {
      r = positive(k, v, o.nodes);
    } else if (k == "time_limit") {
      r = duration(k, v, o.time_limit);
    } else if (k == "idle_timeout") {
      r = duration(k, v, o.idle_timeout);
    } else if (k == "poll_interval") {
      r = duration(k, v, o.poll_interval);
    } else if (k == "heartbeat_timeout") {
      r = duration(k, v, o.heartbeat_timeout);
      if (r && o.heartbeat_timeout < Millis(1'000)) r = bad(k, v, "less than 1s");
    } else if (k == "max_queued") {
      r = positive(k, v, o.window);
    } else if (k == "memory") {
      int mib = 0;
      r = positive(k, v, mib);
      o.memory_mib = mib;
    } else if (parse_placement_option(k, v, o.placement)) {
      // partition, account, qos, constraint, reservation, sbatch
    } else if (k == "mode" || k == "driver" || k == "auto_threshold" || k == "cpus" ||
               k == "gpus" || k == "executors") {
      // Read by the factory or through BackendOptions.
    } else {
      return make_error(
          ErrorCode::kInvalidInput,
          "unknown pilot option '" + k +
              "' (known: mode, max_allocations, nodes, time_limit, idle_timeout, "
              "max_queued, memory, poll_interval, heartbeat_timeout, auto_threshold, driver, "
              "partition, account, qos, constraint, reservation, sbatch)");
    }
    if (!r) return tl::unexpected(r.error());
  }
  if (o.window == 0)
    o.window = std::max(1024, 2 * o.max_allocations * o.nodes * std::max(o.cpus, 64));
  return o;
}

class PilotBackend final : public Backend {
 public:
  PilotBackend(Options o, std::unique_ptr<slurm::SlurmDriver> driver)
      : o_(std::move(o)), driver_(std::move(driver)), host_(pilot::host_name()) {
    // Two log files per launch in the window, one socket per worker: the common soft
    // limit of 1024 descriptors is too low, the hard limit rarely is.
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
      rl.rlim_cur = rl.rlim_max;
      ::setrlimit(RLIMIT_NOFILE, &rl);
    }
  }
  ~PilotBackend() override;

  std::string name() const override { return "pilot"; }
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

 private:
  struct Worker {
    std::uint32_t id = 0;
    std::unique_ptr<Connection> conn;
    bool welcomed = false;
    bool retiring = false;
    Clock::time_point accepted;
    Clock::time_point heard;  // when it last sent anything
    pilot::Hello info;
    int free_cpus = 0;
    int free_gpus = 0;
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
  // The worker with the most free cores that can start `q` now, or nullptr.
  Worker* pick(const Queued& q, std::int64_t now_s);
  void dispatch();
  void accept_all();
  // Reads and handles what `w` sent; false when it must be dropped.
  bool serve(Worker& w, std::vector<Completion>& out);
  bool on_hello(Worker& w, std::string_view payload);
  void drop(std::uint32_t id, const std::string& why, std::vector<Completion>& out);
  // Watches allocations (one batched query), drops workers of ended ones (their attempts
  // go to `out` as lost) and submits a new one when the policy says so.
  void manage_allocations(std::vector<Completion>& out);
  // Sends heartbeats that are due and drops workers silent for heartbeat_timeout.
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
  std::string secret_, address_;
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

PilotBackend::~PilotBackend() {
  if (!started_) return;
  std::vector<std::string> cancel;
  for (auto& [id, w] : workers_) {
    w.conn->send(MsgType::kShutdown, pilot::encode_text("the run ended"));
    w.conn->flush_blocking(1000);
  }
  for (Allocation& a : allocs_) {
    if (a.state == Allocation::kEnded) continue;
    // A worker that got the shutdown ends its job by itself; the others never started.
    if (a.workers == 0) cancel.push_back(a.job);
    a.state = Allocation::kEnded;
    a.ended_us = wall_us();
    a.end_reason = a.workers == 0 ? "cancelled: the run ended" : "released: the run ended";
    a.workers = 0;
  }
  if (!cancel.empty()) driver_->cancel(cancel);
  for (auto& [id, w] : workers_) gone_.push_back({worker_json(w, "released")});
  workers_.clear();
  write_state(true);
  std::remove((pilot_dir_ + "/address").c_str());
}

Expected<void> PilotBackend::start(const std::string& run_dir) {
  if (started_) return {};
  if (!start_error_.empty()) return make_error(ErrorCode::kBackend, start_error_);
  auto failed = [&](const std::string& why) -> Expected<void> {
    start_error_ = "pilot backend: " + why;
    return make_error(ErrorCode::kBackend, start_error_);
  };
  run_dir_ = run_dir;
  run_id_ = run_dir.substr(run_dir.rfind('/') + 1);
  pilot_dir_ = run_dir + "/pilot";
  ::mkdir(pilot_dir_.c_str(), 0700);
  // A resumed run keeps its secret: workers of the crashed coordinator may reconnect.
  const std::string secret_path = pilot_dir_ + "/secret";
  {
    std::ifstream in(secret_path);
    in >> secret_;
  }
  if (secret_.size() < 32) {
    secret_ = random_secret();
    if (secret_.empty()) return failed("cannot read /dev/urandom");
    if (!write_atomically(secret_path, secret_ + "\n", 0600))
      return failed("cannot write " + secret_path);
  }
  int port = 0;
  auto l = pilot::listen_tcp(0, port);
  if (!l) return failed(l.error().message);
  listener_ = std::move(*l);
  address_ = host_ + ":" + std::to_string(port);
  if (!write_atomically(pilot_dir_ + "/address", address_ + "\n", 0644))
    return failed("cannot write " + pilot_dir_ + "/address");
  load_previous_state();
  started_ = true;
  return {};
}

// Allocations an earlier coordinator of this run submitted and did not see end: their
// workers may reconnect, so they count (and are watched) like our own.
void PilotBackend::load_previous_state() {
  std::ifstream in(pilot_dir_ + "/workers.json");
  if (!in) return;
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.contains("allocations")) return;
  for (const auto& a : j["allocations"]) {
    Allocation x;
    x.job = a.value("job", "");
    x.submitted_us = a.value("submitted_us", std::int64_t{0});
    x.started_us = a.value("started_us", std::int64_t{0});
    x.ended_us = a.value("ended_us", std::int64_t{0});
    x.end_reason = a.value("end_reason", "");
    const std::string st = a.value("state", "ended");
    x.state = st == "ended" ? Allocation::kEnded : Allocation::kPending;
    if (!x.job.empty()) allocs_.push_back(std::move(x));
  }
  for (const auto& w : j.value("workers", nlohmann::json::array())) gone_.push_back({w});
  if (gone_.size() > 200) gone_.erase(gone_.begin(), gone_.end() - 200);
}

Expected<std::string> PilotBackend::launch(const LaunchRequest& request) {
  if (request.spec == nullptr) return make_error(ErrorCode::kBackend, "launch without a task");
  if (auto r = start(run_dir_of(request.attempt_dir)); !r) return tl::unexpected(r.error());
  const TaskSpec& spec = *request.spec;
  const std::int64_t limit_ms = o_.time_limit.count();
  if (spec.max_exec_time.count() > 0 &&
      spec.max_exec_time.count() + pilot::kEndMarginS * 1000 > limit_ms)
    return make_error(ErrorCode::kBackend, "task '" + spec.name + "' has max_exec_time " +
                                               format_duration(spec.max_exec_time) +
                                               ", more than a pilot allocation's time_limit " +
                                               format_duration(o_.time_limit) +
                                               " allows (raise time_limit or use "
                                               "mode = \"auto\" so that long tasks become jobs)");
  if ((o_.cpus > 0 && spec.cpus > o_.cpus) || spec.gpus > o_.gpus)
    return make_error(ErrorCode::kBackend,
                      "task '" + spec.name + "' needs " + std::to_string(spec.cpus) + " cpus and " +
                          std::to_string(spec.gpus) + " GPUs; a pilot worker has " +
                          (o_.cpus > 0 ? std::to_string(o_.cpus) : std::string("a node's")) +
                          " cpus and " + std::to_string(o_.gpus) + " GPUs (options cpus, gpus)");
  Queued q;
  q.task = request.task;
  q.attempt = request.attempt;
  q.cpus = std::max(0, spec.cpus);
  q.gpus = std::max(0, spec.gpus);
  q.max_exec_ms = spec.max_exec_time.count();
  q.executor = spec.executor;
  q.bytes = pilot::encode_launch(request);
  queue_.push_back(std::move(q));
  dirty_ = true;
  return "pilot:" + request.attempt_dir;
}

bool PilotBackend::can_take(const Worker& w, const Queued& q, std::int64_t now_s) const {
  if (!w.welcomed || w.retiring || w.free_cpus < q.cpus || w.free_gpus < q.gpus) return false;
  if (!q.executor.empty() && !w.info.executors.empty() &&
      std::find(w.info.executors.begin(), w.info.executors.end(), q.executor) ==
          w.info.executors.end())
    return false;
  return pilot::fits_remaining(q.max_exec_ms, w.info.alloc_end_s, now_s);
}

PilotBackend::Worker* PilotBackend::pick(const Queued& q, std::int64_t now_s) {
  Worker* best = nullptr;
  for (auto& [id, w] : workers_)
    if (can_take(w, q, now_s) && (best == nullptr || w.free_cpus > best->free_cpus)) best = &w;
  return best;
}

void PilotBackend::dispatch() {
  if (queue_.empty() || workers_.empty()) return;
  const std::int64_t now_s = wall_us() / 1'000'000;
  // Oldest first; a launch that fits nowhere is passed over for at most this many.
  constexpr std::size_t kWindow = 64;
  std::size_t skipped = 0;
  for (auto it = queue_.begin(); it != queue_.end() && skipped < kWindow;) {
    Worker* w = pick(*it, now_s);
    if (w == nullptr) {
      ++skipped;
      ++it;
      continue;
    }
    w->free_cpus -= it->cpus;
    w->free_gpus -= it->gpus;
    w->running++;
    placed_[key_of(it->task, it->attempt)] = Placed{w->id, it->cpus, it->gpus};
    w->conn->send(MsgType::kLaunch, it->bytes);
    it = queue_.erase(it);
    dirty_ = true;
  }
}

void PilotBackend::accept_all() {
  for (;;) {
    const int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    Worker w;
    w.id = next_worker_++;
    w.conn = std::make_unique<Connection>(pilot::Fd(fd));
    w.accepted = w.heard = Clock::now();
    workers_.emplace(w.id, std::move(w));
  }
}

bool PilotBackend::on_hello(Worker& w, std::string_view payload) {
  auto hello = pilot::decode_hello(payload);
  if (!hello || !same_secret(hello->secret, secret_)) {
    w.conn->send(MsgType::kRefused,
                 pilot::encode_text(hello ? "wrong secret" : hello.error().message));
    w.conn->flush();
    std::fprintf(stderr, "sluice: pilot: refused a worker connection (%s)\n",
                 hello ? "wrong secret" : "malformed hello");
    return false;
  }
  w.info = std::move(*hello);
  w.info.secret.clear();
  w.welcomed = true;
  w.free_cpus = std::max(0, w.info.cpus);
  w.free_gpus = static_cast<int>(w.info.gpu_ids.size());
  w.connected_us = wall_us();
  if (Allocation* a = allocation_of(w.info.job_id)) {
    a->workers++;
    a->ever++;
    if (a->state != Allocation::kEnded) a->state = Allocation::kRunning;
    if (!a->started_us) a->started_us = w.connected_us;
  }
  w.conn->send(MsgType::kWelcome, pilot::encode_welcome({w.id, o_.heartbeat_timeout.count()}));
  dirty_ = true;
  return true;
}

bool PilotBackend::serve(Worker& w, std::vector<Completion>& out) {
  // What arrived before a close (the last completions) is handled before the close.
  const bool open = w.conn->read_some();
  w.heard = Clock::now();
  MsgType type;
  std::string_view payload;
  bool bad = false;
  while (w.conn->next(type, payload, bad)) {
    if (!w.welcomed) {
      if (type != MsgType::kHello || !on_hello(w, payload)) return false;
      continue;
    }
    if (type == MsgType::kCompletions) {
      const std::size_t before = out.size();
      if (auto r = pilot::decode_completions(payload, out); !r) {
        std::fprintf(stderr, "sluice: pilot worker %s: %s\n", w.info.host.c_str(),
                     r.error().message.c_str());
        return false;
      }
      for (std::size_t i = before; i < out.size(); ++i) {
        Completion& c = out[i];
        c.host = w.info.host;
        auto it = placed_.find(key_of(c.task, c.attempt));
        if (it == placed_.end()) continue;
        w.free_cpus += it->second.cpus;
        w.free_gpus += it->second.gpus;
        w.running--;
        w.completed++;
        placed_.erase(it);
      }
      dirty_ = true;
    } else if (type == MsgType::kIdle) {
      // Released only when nothing waits that it could take: the request and our
      // launches cross on the wire, and a launch that arrives first keeps it busy.
      const std::int64_t now_s = wall_us() / 1'000'000;
      bool wanted = w.running > 0;
      for (std::size_t i = 0; i < queue_.size() && i < 64 && !wanted; ++i)
        wanted = can_take(w, queue_[i], now_s);
      if (!wanted) {
        w.retiring = true;
        w.conn->send(MsgType::kShutdown, pilot::encode_text("idle"));
        dirty_ = true;
      }
    }
  }
  return open && !bad;
}

void PilotBackend::drop(std::uint32_t id, const std::string& why, std::vector<Completion>& out) {
  auto wit = workers_.find(id);
  if (wit == workers_.end()) return;
  Worker& w = wit->second;
  if (w.welcomed) {
    const std::int64_t now = wall_us();
    for (auto it = placed_.begin(); it != placed_.end();) {
      if (it->second.worker != id) {
        ++it;
        continue;
      }
      Completion c;
      c.task = static_cast<TaskId>(it->first >> 32);
      c.attempt = static_cast<std::uint32_t>(it->first & 0xffffffffu);
      c.kind = ExitKind::kLost;
      c.code = -1;
      c.reason = "pilot worker on " + w.info.host +
                 (w.info.job_id.empty() ? "" : " (Slurm job " + w.info.job_id + ")") + " " + why;
      c.started_us = c.ended_us = now;
      c.host = w.info.host;
      out.push_back(std::move(c));
      it = placed_.erase(it);
    }
    if (Allocation* a = allocation_of(w.info.job_id)) a->workers = std::max(0, a->workers - 1);
    gone_.push_back({worker_json(w, w.retiring ? "released (idle)" : "lost")});
    if (gone_.size() > 200) gone_.erase(gone_.begin());
    // The job may be gone already: ask soon rather than at the next interval.
    next_query_ = std::min(next_query_, Clock::now() + std::chrono::milliseconds(500));
  }
  workers_.erase(wit);
  dirty_ = true;
}

PilotBackend::Allocation* PilotBackend::allocation_of(const std::string& job) {
  if (job.empty()) return nullptr;
  for (Allocation& a : allocs_)
    if (a.job == job) return &a;
  return nullptr;
}

void PilotBackend::submit_allocation() {
  slurm::SubmitRequest r = o_.placement;
  r.name = "sluice-pilot:" + run_id_;
  r.workdir = pilot_dir_;
  r.output = pilot_dir_ + "/alloc-%j.out";
  r.error = r.output;
  r.cpus = std::max(1, o_.cpus);
  r.gpus = o_.gpus;
  r.mem_mib = o_.memory_mib;
  r.time_min = static_cast<int>((o_.time_limit.count() + 59'999) / 60'000);
  r.extra.insert(r.extra.begin(), {"--nodes=" + std::to_string(o_.nodes), "--ntasks-per-node=1"});
  if (o_.cpus == 0) r.extra.push_back("--exclusive");
  const auto q = slurm::shell_quote;
  std::string executors;
  for (const auto& e : o_.executors) executors += (executors.empty() ? "" : ",") + e;
  std::string s = "#!/bin/bash\n";
  s += "#SBATCH --job-name=" + q(r.name) + "\n";
  s += "#SBATCH --chdir=" + q(r.workdir) + "\n";
  s += "#SBATCH --output=" + q(r.output) + "\n";
  for (const auto& opt : slurm::resource_options(r)) s += "#SBATCH " + opt + "\n";
  s += "# sluice: a pilot allocation of run " + run_id_ +
       ": one worker per node, connecting back to the coordinator (" + address_ + ")\n";
  // Slurm 22.05 exports no end time; the limit counts from the job's start, now.
  s += "end=$(( $(date +%s) + " + std::to_string(o_.time_limit.count() / 1000) + " ))\n";
  // The step names the GPUs again: a step gets no GRES it does not ask for.
  s += "exec srun --ntasks-per-node=1 --kill-on-bad-exit=0 " +
       (o_.gpus > 0 ? "--gres=gpu:" + std::to_string(o_.gpus) + " " : std::string()) +
       q(exe_path()) + " worker --pilot-dir " + q(pilot_dir_) +
       " --alloc-end \"$end\" --idle-timeout " + std::to_string(o_.idle_timeout.count()) + "ms" +
       (o_.cpus > 0 ? " --cpus " + std::to_string(o_.cpus) : std::string()) +
       (o_.memory_mib > 0 ? " --memory " + std::to_string(o_.memory_mib) : std::string()) +
       (executors.empty() ? std::string() : " --executors " + q(executors)) + "\n";
  r.script = s;
  r.script_path = pilot_dir_ + "/allocation-" + std::to_string(allocs_.size() + 1) + ".sh";
  if (!write_atomically(r.script_path, s, 0644)) {
    std::fprintf(stderr, "sluice: pilot: cannot write %s\n", r.script_path.c_str());
    next_submit_ = Clock::now() + kSubmitBackoff;
    return;
  }
  auto id = driver_->submit(r);
  if (!id) {
    std::fprintf(stderr, "sluice: pilot: submitting an allocation failed: %s\n",
                 id.error().message.c_str());
    next_submit_ = Clock::now() + kSubmitBackoff;
    return;
  }
  Allocation a;
  a.job = *id;
  a.submitted_us = wall_us();
  allocs_.push_back(std::move(a));
  next_query_ = std::min(next_query_, Clock::now() + std::chrono::seconds(1));
  dirty_ = true;
}

void PilotBackend::manage_allocations(std::vector<Completion>& out) {
  const auto now = Clock::now();
  if (now >= next_query_) {
    next_query_ = now + o_.poll_interval;
    std::vector<std::string> ids;
    for (const Allocation& a : allocs_)
      if (a.state != Allocation::kEnded) ids.push_back(a.job);
    if (!ids.empty()) {
      if (auto st = driver_->query(ids)) {
        for (Allocation& a : allocs_) {
          if (a.state == Allocation::kEnded) continue;
          auto it = st->find(a.job);
          if (it == st->end()) {
            if (++a.missing < kMissingQueries) continue;
            a.state = Allocation::kEnded;
            a.end_reason = "vanished from Slurm";
          } else if (is_pending_state(it->second.state)) {
            a.missing = 0;
            continue;
          } else if (is_running_state(it->second.state)) {
            a.missing = 0;
            if (!a.started_us) a.started_us = wall_us();
            continue;
          } else {
            a.state = Allocation::kEnded;
            a.end_reason = it->second.state;
          }
          a.ended_us = wall_us();
          dirty_ = true;
          // A node that died sends no FIN: the job's end is what says its worker is gone.
          std::vector<std::uint32_t> orphans;
          for (const auto& [id, w] : workers_)
            if (w.welcomed && w.info.job_id == a.job) orphans.push_back(id);
          for (auto id : orphans) drop(id, "ended with its Slurm job (" + a.end_reason + ")", out);
        }
      }
    }
  }
  // Connections that never said hello (a port scanner, a stuck client) are dropped.
  std::vector<std::uint32_t> stale;
  for (const auto& [id, w] : workers_)
    if (!w.welcomed && now - w.accepted > kHelloTimeout) stale.push_back(id);
  for (auto id : stale) workers_.erase(id);

  std::size_t waiting = queue_.size();
  pilot::PolicyInput in;
  in.waiting = waiting;
  in.max_allocations = o_.max_allocations;
  in.backing_off = now < next_submit_;
  for (const Allocation& a : allocs_) {
    if (a.state == Allocation::kEnded) continue;
    in.active++;
    if (a.ever == 0) in.starting++;
  }
  if (pilot::should_allocate(in)) submit_allocation();
}

void PilotBackend::check_liveness(std::vector<Completion>& out) {
  const auto now = Clock::now();
  std::vector<std::uint32_t> silent;
  for (const auto& [id, w] : workers_)
    if (w.welcomed && now - w.heard > o_.heartbeat_timeout) silent.push_back(id);
  for (auto id : silent)
    drop(id, "sent nothing for " + format_duration(o_.heartbeat_timeout) + " (no heartbeat)", out);
  if (now < next_heartbeat_) return;
  next_heartbeat_ = now + o_.heartbeat_timeout / 6;
  for (auto& [id, w] : workers_)
    if (w.welcomed) w.conn->send(MsgType::kHeartbeat, {});
}

nlohmann::json PilotBackend::worker_json(const Worker& w, const char* state) const {
  return {{"id", w.id},
          {"job", w.info.job_id},
          {"host", w.info.host},
          {"pid", w.info.pid},
          {"cpus", w.info.cpus},
          {"gpus", w.info.gpu_ids},
          {"memory_mib", w.info.memory_mib},
          {"executors", w.info.executors},
          {"alloc_end_s", w.info.alloc_end_s},
          {"running", w.running},
          {"free_cpus", w.free_cpus},
          {"completed", w.completed},
          {"connected_us", w.connected_us},
          {"state", state},
          {"left_us", std::string(state) == "connected" ? 0 : wall_us()}};
}

void PilotBackend::write_state(bool force) {
  if (!started_ || (!force && (!dirty_ || Clock::now() < next_state_))) return;
  next_state_ = Clock::now() + kStateInterval;
  dirty_ = false;
  nlohmann::json j;
  j["updated_us"] = wall_us();
  j["coordinator"] = address_;
  j["coordinator_pid"] = static_cast<int>(::getpid());
  j["max_allocations"] = o_.max_allocations;
  j["queued"] = queue_.size();
  j["running"] = placed_.size();
  auto& allocs = j["allocations"] = nlohmann::json::array();
  for (const Allocation& a : allocs_) {
    allocs.push_back({{"job", a.job},
                      {"state", a.state == Allocation::kEnded     ? "ended"
                                : a.state == Allocation::kRunning ? "running"
                                                                  : "pending"},
                      {"nodes", o_.nodes},
                      {"time_limit_s", o_.time_limit.count() / 1000},
                      {"workers", a.workers},
                      {"submitted_us", a.submitted_us},
                      {"started_us", a.started_us},
                      {"ended_us", a.ended_us},
                      {"end_reason", a.end_reason}});
  }
  auto& ws = j["workers"] = nlohmann::json::array();
  for (const Gone& g : gone_) ws.push_back(g.record);
  for (const auto& [id, w] : workers_)
    if (w.welcomed) ws.push_back(worker_json(w, w.retiring ? "releasing" : "connected"));
  write_atomically(pilot_dir_ + "/workers.json", j.dump(1) + "\n", 0644);
}

void PilotBackend::poll(std::vector<Completion>& out, std::chrono::milliseconds timeout) {
  const std::size_t before = out.size();
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (!ready_.empty()) {
      for (Completion& c : ready_) out.push_back(std::move(c));
      ready_.clear();
    }
    if (!started_) {
      if (out.size() == before) std::this_thread::sleep_for(timeout);
      return;
    }
    dispatch();
    pfds_.clear();
    pfd_worker_.clear();
    pfds_.push_back({listener_.get(), POLLIN, 0});
    pfd_worker_.push_back(0);
    for (auto& [id, w] : workers_) {
      // A failed write shows up as POLLERR/POLLHUP below, and the worker is dropped there.
      if (w.conn->wants_write()) w.conn->flush();
      short ev = POLLIN;
      if (w.conn->wants_write()) ev |= POLLOUT;
      pfds_.push_back({w.conn->fd(), ev, 0});
      pfd_worker_.push_back(id);
    }
    const auto now = Clock::now();
    int wait_ms = 0;
    if (out.size() == before && now < deadline)
      wait_ms = static_cast<int>(std::min<std::int64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1, 250));
    const int n = ::poll(pfds_.data(), pfds_.size(), wait_ms);
    if (n > 0) {
      if (pfds_[0].revents & POLLIN) accept_all();
      for (std::size_t i = 1; i < pfds_.size(); ++i) {
        if (pfds_[i].revents == 0) continue;
        auto it = workers_.find(pfd_worker_[i]);
        if (it == workers_.end()) continue;
        bool ok = true;
        if (pfds_[i].revents & (POLLIN | POLLHUP | POLLERR)) ok = serve(it->second, out);
        if (ok && (pfds_[i].revents & POLLOUT)) ok = it->second.conn->flush();
        if (!ok) {
          const bool refused = !it->second.welcomed;
          drop(pfd_worker_[i],
               refused               ? "refused"
               : it->second.retiring ? "left"
                                     : "vanished",
               out);
        }
      }
    }
    dispatch();
    for (auto& [id, w] : workers_)
      if (w.conn->wants_write()) w.conn->flush();
    manage_allocations(out);
    check_liveness(out);
    write_state(false);
    if (out.size() > before || Clock::now() >= deadline) return;
  }
}

void PilotBackend::kill(TaskId task, std::uint32_t attempt) {
  if (auto it = placed_.find(key_of(task, attempt)); it != placed_.end()) {
    if (auto w = workers_.find(it->second.worker); w != workers_.end())
      w->second.conn->send(MsgType::kKill, pilot::encode_kill(task, attempt));
    return;
  }
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if (it->task != task || it->attempt != attempt) continue;
    ready_.push_back(
        wire::killed_before_start(task, attempt, "killed before a pilot worker took it", host_));
    queue_.erase(it);
    return;
  }
}

void PilotBackend::abandon(const std::string& handle) {
  // The worker that ran it killed it when it lost the earlier coordinator; starting now
  // lets those workers reconnect and re-reads the allocations they belong to.
  if (handle.rfind("pilot:", 0) == 0) start(run_dir_of(handle.substr(6)));
}

// mode = "auto": tasks that declare a long max_exec_time become Slurm jobs of their own,
// the rest go to pilot workers.
class AutoBackend final : public Backend {
 public:
  AutoBackend(std::unique_ptr<Backend> pilot, std::unique_ptr<Backend> jobs, Millis threshold)
      : pilot_(std::move(pilot)), jobs_(std::move(jobs)), threshold_(threshold) {}
  std::string name() const override { return "slurm"; }
  Capacity capacity() const override { return pilot_->capacity(); }
  Expected<std::string> launch(const LaunchRequest& r) override {
    return std::move(launch_batch(std::span<const LaunchRequest>(&r, 1)).front());
  }
  std::vector<Expected<std::string>> launch_batch(std::span<const LaunchRequest> rs) override {
    std::vector<LaunchRequest> to_jobs, to_pilot;
    std::vector<std::size_t> ij, ip;
    for (std::size_t i = 0; i < rs.size(); ++i) {
      const bool long_task = rs[i].spec && rs[i].spec->max_exec_time > threshold_;
      (long_task ? to_jobs : to_pilot).push_back(rs[i]);
      (long_task ? ij : ip).push_back(i);
    }
    std::vector<Expected<std::string>> out(rs.size(), std::string());
    auto route = [&](Backend& b, std::vector<LaunchRequest>& reqs,
                     const std::vector<std::size_t>& idx, bool jobs) {
      if (reqs.empty()) return;
      auto res = b.launch_batch(reqs);
      for (std::size_t k = 0; k < res.size(); ++k) {
        if (res[k]) on_jobs_[key_of(reqs[k].task, reqs[k].attempt)] = jobs;
        out[idx[k]] = std::move(res[k]);
      }
    };
    route(*jobs_, to_jobs, ij, true);
    route(*pilot_, to_pilot, ip, false);
    return out;
  }
  void poll(std::vector<Completion>& out, std::chrono::milliseconds timeout) override {
    const std::size_t before = out.size();
    if (jobs_->in_flight() == 0) {
      pilot_->poll(out, timeout);
    } else {
      pilot_->poll(out, std::min(timeout, std::chrono::milliseconds(50)));
      jobs_->poll(out, std::chrono::milliseconds(0));
    }
    for (std::size_t i = before; i < out.size(); ++i)
      on_jobs_.erase(key_of(out[i].task, out[i].attempt));
  }
  void kill(TaskId task, std::uint32_t attempt) override {
    auto it = on_jobs_.find(key_of(task, attempt));
    (it != on_jobs_.end() && it->second ? jobs_ : pilot_)->kill(task, attempt);
  }
  std::size_t in_flight() const override { return pilot_->in_flight() + jobs_->in_flight(); }
  void abandon(const std::string& handle) override {
    (handle.rfind("pilot:", 0) == 0 ? pilot_ : jobs_)->abandon(handle);
  }
  bool reattach(const std::string& handle, TaskId task, std::uint32_t attempt) override {
    if (handle.rfind("pilot:", 0) == 0) return false;
    if (!jobs_->reattach(handle, task, attempt)) return false;
    on_jobs_[key_of(task, attempt)] = true;
    return true;
  }

 private:
  std::unique_ptr<Backend> pilot_, jobs_;
  Millis threshold_;
  std::unordered_map<std::uint64_t, bool> on_jobs_;
};

std::unique_ptr<slurm::SlurmDriver> driver_for(const BackendOptions& options) {
  auto it = options.extra.find("driver");
  if (it != options.extra.end() && it->second == "cli") return slurm::make_cli_driver();
  auto d = slurm::make_libslurm_driver();
  return d ? std::move(d) : slurm::make_cli_driver();
}

BackendOptions without(const BackendOptions& in, std::initializer_list<const char*> keys) {
  BackendOptions out = in;
  for (const char* k : keys) out.extra.erase(k);
  return out;
}

}  // namespace

Expected<std::unique_ptr<Backend>> make_pilot_backend(const BackendOptions& options,
                                                      std::unique_ptr<slurm::SlurmDriver> driver) {
  auto o = parse_options(options);
  if (!o) return tl::unexpected(o.error());
  return std::unique_ptr<Backend>(std::make_unique<PilotBackend>(std::move(*o), std::move(driver)));
}

void register_pilot_backend() {
  register_backend("pilot", [](const BackendOptions& options) {
    return make_pilot_backend(options, driver_for(options));
  });
  register_backend(
      "slurm", [](const BackendOptions& options) -> Expected<std::unique_ptr<Backend>> {
        auto it = options.extra.find("mode");
        const std::string mode = it == options.extra.end() ? "jobs" : it->second;
        if (mode == "jobs")
          return make_slurm_backend(without(options, {"mode", "cpus", "gpus", "executors"}));
        if (mode == "pilot") return make_pilot_backend(options, driver_for(options));
        if (mode != "auto")
          return make_error(ErrorCode::kInvalidInput,
                            "slurm backend option mode=" + mode + ": use jobs, pilot or auto");
        auto pilot = make_pilot_backend(options, driver_for(options));
        if (!pilot) return pilot;
        auto jobs = make_slurm_backend(
            without(options, {"mode", "max_allocations", "nodes", "time_limit", "idle_timeout",
                              "memory", "auto_threshold", "cpus", "gpus", "executors"}));
        if (!jobs) return jobs;
        Millis threshold{0};
        if (auto t = options.extra.find("auto_threshold"); t != options.extra.end()) {
          auto d = parse_duration(t->second);
          if (!d)
            return make_error(ErrorCode::kInvalidInput, "slurm backend option auto_threshold=" +
                                                            t->second + ": not a duration");
          threshold = *d;
        } else {
          auto tl = options.extra.find("time_limit");
          auto d = tl == options.extra.end() ? std::optional<Millis>(Millis(3'600'000))
                                             : parse_duration(tl->second);
          threshold = Millis((d ? d->count() : 3'600'000) / 2);
        }
        return std::unique_ptr<Backend>(
            std::make_unique<AutoBackend>(std::move(*pilot), std::move(*jobs), threshold));
      });
}

}  // namespace sluice
