// The pilot coordinator against a fleet: one process runs the real pilot backend
// (listener, handshake, sealed frames, dispatch, completions) the way the engine drives
// it, a second process simulates W pilot workers on loopback, each a real TCP connection
// that proves the run's key, says hello with `slots` cores and "runs" every launch it
// gets at once (or after a fixed delay) by sending its completion back. The backend
// submits its Slurm allocations to a driver that only records them: the workers connect
// by themselves, as `sluice worker` does outside Slurm.
//
//   fleet_bench [--engine] W N [delay_ms] [slots]   (FLEET_THREADS: worker threads, default 2)
//
// One line on stdout:
//   workload=fleet workers=W slots=64 n=N delay_ms=0 wall_s=… tasks_per_s=…
//   coord_cpu_us_per_task=… mem_kib_per_worker=… lat_p50_us=… lat_p99_us=… ok=1
// coord_cpu_us_per_task: the coordinator process's user+system CPU over the run / N.
// mem_kib_per_worker: the coordinator's RSS growth from no worker to W connected and
// welcomed, / W. lat_*: from launch() (the task is ready and handed to the backend) to
// the worker receiving it (its completion's started_us). ok=1: every task completed once,
// successfully.
//
// Without --engine the bench drives the backend itself, as the engine would: the
// engine (store, scheduler) is not in the loop. With --engine (workload=fleet_engine)
// the real sluice::Coordinator runs a sweep of N no-op command tasks with its SQLite
// store in a fresh home (cache on unless FLEET_NO_CACHE is set), attempt directories and
// logs, and group commits: the durable dispatch rate. Its CPU includes the store
// writer thread; its latency is from the coordinator's launch to the worker.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "pilot_backend.hpp"
#include "pilot_crypto.hpp"
#include "pilot_handshake.hpp"
#include "pilot_net.hpp"
#include "pilot_wire.hpp"
#include "sluice/engine/coordinator.hpp"
#include "sluice/engine/run_id.hpp"
#include "sluice/engine/store.hpp"
#include "sluice/engine/wall_clock.hpp"
#include "slurm_driver.hpp"

namespace fs = std::filesystem;
using namespace sluice;
using Clock = std::chrono::steady_clock;

namespace {

// Allocations are recorded, never started: the simulated workers connect on their own.
class NoSlurm final : public slurm::SlurmDriver {
 public:
  std::string name() const override { return "fleet-bench"; }
  Expected<std::string> submit(const slurm::SubmitRequest&) override {
    return std::to_string(++n_);
  }
  Expected<std::map<std::string, slurm::JobStatus>> query(
      const std::vector<std::string>& ids) override {
    std::map<std::string, slurm::JobStatus> out;
    for (const auto& id : ids) out[id].state = "PENDING";
    return out;
  }
  void cancel(const std::vector<std::string>&) override {}
  int max_array_size() override { return 1001; }

 private:
  int n_ = 0;
};

std::string first_word(const fs::path& p) {
  std::ifstream in(p);
  std::string s;
  in >> s;
  return s;
}

long rss_kib() {
  std::ifstream in("/proc/self/statm");
  long size = 0, resident = 0;
  in >> size >> resident;
  return resident * (::sysconf(_SC_PAGESIZE) / 1024);
}

double cpu_s() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// ---- the simulated workers (child process) ----

struct SimWorker {
  std::unique_ptr<pilot::Connection> conn;
  std::vector<Completion> done;
  bool out_armed = false;
  bool open = true;
};

struct Due {
  Clock::time_point at;
  std::size_t worker;
  Completion c;
};

// Connects, proves the key and waits for the welcome; false on any failure.
bool greet(pilot::Connection& conn, const pilot::Key& key, int index, int slots) {
  std::string why;
  if (pilot::authenticate(conn, key, 30'000, why) != pilot::AuthResult::kAccepted) {
    std::fprintf(stderr, "fleet_bench: worker %d: handshake: %s\n", index, why.c_str());
    return false;
  }
  pilot::Hello h;
  h.host = "sim" + std::to_string(index);
  h.pid = index;
  h.cpus = slots;
  conn.send(pilot::MsgType::kHello, pilot::encode_hello(h));
  if (!conn.flush_blocking(30'000)) return false;
  const auto until = Clock::now() + std::chrono::seconds(60);
  while (Clock::now() < until) {
    pilot::MsgType type;
    std::string_view payload;
    bool bad = false;
    if (conn.next(type, payload, bad)) return type == pilot::MsgType::kWelcome;
    if (bad) return false;
    pollfd p{conn.fd(), POLLIN, 0};
    if (::poll(&p, 1, 200) > 0 && !conn.read_some()) return false;
  }
  return false;
}

// One thread's share of the fleet: workers index, index + stride, ... < total.
int run_workers(int first, int stride, int total, const std::string& address, const pilot::Key& key,
                int slots, int delay_ms, std::atomic<int>& welcomed) {
  std::vector<SimWorker> ws;
  for (int i = first; i < total; i += stride) {
    auto fd = pilot::connect_tcp(address, 30'000);
    if (!fd) {
      std::fprintf(stderr, "fleet_bench: %s\n", fd.error().message.c_str());
      return 1;
    }
    SimWorker w;
    w.conn = std::make_unique<pilot::Connection>(std::move(*fd));
    if (!greet(*w.conn, key, i, slots)) return 1;
    ::fcntl(w.conn->fd(), F_SETFL, ::fcntl(w.conn->fd(), F_GETFL) | O_NONBLOCK);
    ws.push_back(std::move(w));
    welcomed++;
  }
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  for (std::size_t i = 0; i < ws.size(); ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, ws[i].conn->fd(), &ev);
  }
  std::size_t open = ws.size();
  std::deque<Due> due;
  std::vector<std::size_t> touched;
  std::vector<pilot::Launch> launches;
  auto next_heartbeat = Clock::now();
  auto arm = [&](std::size_t i) {
    SimWorker& w = ws[i];
    if (!w.open) return;
    if (w.conn->wants_write() && !w.conn->flush()) w.open = false;
    const bool want = w.open && w.conn->wants_write();
    if (want == w.out_armed) return;
    epoll_event ev{};
    ev.events = want ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
    ev.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_MOD, w.conn->fd(), &ev);
    w.out_armed = want;
  };
  std::vector<epoll_event> events(256);
  while (open > 0) {
    int timeout = 1000;
    if (!due.empty())
      timeout = static_cast<int>(std::max<std::int64_t>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(due.front().at - Clock::now())
                     .count() +
                 1));
    const int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), timeout);
    touched.clear();
    for (int k = 0; k < n; ++k) {
      const std::size_t i = events[k].data.u64;
      SimWorker& w = ws[i];
      if (!w.open) continue;
      if (events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        const bool alive = w.conn->read_some();
        pilot::MsgType type;
        std::string_view payload;
        bool bad = false;
        while (w.conn->next(type, payload, bad)) {
          if (type == pilot::MsgType::kLaunch || type == pilot::MsgType::kLaunches) {
            launches.clear();
            if (!pilot::decode_any_launch(type, payload, launches)) return 1;
            const std::int64_t now_us = wall_us();
            for (const pilot::Launch& l : launches) {
              Completion c;
              c.task = l.task;
              c.attempt = l.attempt;
              c.started_us = c.ended_us = now_us;
              if (delay_ms == 0)
                w.done.push_back(std::move(c));
              else
                due.push_back(
                    {Clock::now() + std::chrono::milliseconds(delay_ms), i, std::move(c)});
            }
          } else if (type == pilot::MsgType::kShutdown) {
            w.open = false;
            break;
          }
        }
        if (bad || (!alive && w.open)) w.open = false;
        if (!w.open) {
          ::epoll_ctl(ep, EPOLL_CTL_DEL, w.conn->fd(), nullptr);
          w.conn.reset();
          --open;
          continue;
        }
      }
      touched.push_back(i);
    }
    const auto now = Clock::now();
    while (!due.empty() && due.front().at <= now) {
      ws[due.front().worker].done.push_back(std::move(due.front().c));
      touched.push_back(due.front().worker);
      due.pop_front();
    }
    for (std::size_t i : touched) {
      SimWorker& w = ws[i];
      if (!w.open) continue;
      if (!w.done.empty()) {
        w.conn->send(pilot::MsgType::kCompletions, pilot::encode_completions(w.done));
        w.done.clear();
      }
      arm(i);
    }
    if (now >= next_heartbeat) {
      next_heartbeat = now + std::chrono::seconds(5);
      for (std::size_t i = 0; i < ws.size(); ++i)
        if (ws[i].open) {
          ws[i].conn->send(pilot::MsgType::kHeartbeat, {});
          arm(i);
        }
    }
  }
  ::close(ep);
  return 0;
}

int worker_main(const fs::path& run_dir, int workers, int slots, int delay_ms, int threads,
                int ready_fd) {
  const fs::path addr_file = run_dir / "pilot" / "address";
  const auto until = Clock::now() + std::chrono::seconds(30);
  while (!fs::exists(addr_file) && Clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const std::string host_port = first_word(addr_file);
  const auto colon = host_port.rfind(':');
  if (colon == std::string::npos) return 1;
  const std::string address = "127.0.0.1" + host_port.substr(colon);
  if (!pilot::init_crypto()) return 1;
  auto key = pilot::Key::from_hex(first_word(run_dir / "pilot" / "secret"));
  if (!key) return 1;
  std::atomic<int> welcomed{0};
  std::vector<int> rc(threads, 0);
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      rc[t] = run_workers(t, threads, workers, address, *key, slots, delay_ms, welcomed);
    });
  while (welcomed < workers) {
    if (std::any_of(rc.begin(), rc.end(), [](int r) { return r != 0; })) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const char byte = welcomed == workers ? 'y' : 'n';
  if (::write(ready_fd, &byte, 1) != 1) return 1;
  ::close(ready_fd);
  for (auto& t : ts) t.join();
  return std::any_of(rc.begin(), rc.end(), [](int r) { return r != 0; }) ? 1 : 0;
}

// ---- the coordinator (parent process) ----

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

// The launch() -> started latency of every attempt that goes through a backend; the
// engine mode puts it between the coordinator and the pilot backend.
class Timed final : public Backend {
 public:
  explicit Timed(Backend& inner, std::size_t tasks) : inner_(inner), ready_us_(tasks + 1, 0) {}
  std::string name() const override { return inner_.name(); }
  Capacity capacity() const override { return inner_.capacity(); }
  Expected<std::string> launch(const LaunchRequest& r) override {
    if (r.task < ready_us_.size()) ready_us_[r.task] = wall_us();
    return inner_.launch(r);
  }
  void poll(std::vector<Completion>& out, std::chrono::milliseconds timeout) override {
    const std::size_t before = out.size();
    inner_.poll(out, timeout);
    for (std::size_t i = before; i < out.size(); ++i) {
      const Completion& c = out[i];
      if (!c.ok()) ++failed;
      if (c.task < ready_us_.size()) lat.push_back(c.started_us - ready_us_[c.task]);
    }
  }
  void kill(TaskId task, std::uint32_t attempt) override { inner_.kill(task, attempt); }
  std::size_t in_flight() const override { return inner_.in_flight(); }
  void abandon(const std::string& handle) override { inner_.abandon(handle); }
  void set_stopping_check(std::function<bool()> stopping) override {
    inner_.set_stopping_check(std::move(stopping));
  }

  std::vector<std::int64_t> lat;
  long failed = 0;

 private:
  Backend& inner_;
  std::vector<std::int64_t> ready_us_;
};

struct Fleet {
  pid_t child = -1;
  std::unique_ptr<Backend> backend;
  long rss0 = 0, rss1 = 0;
};

// Forks the simulated workers against `run_dir`, starts the pilot backend there and
// waits until all of them are welcomed.
bool start_fleet(Fleet& f, const fs::path& run_dir, int workers, int slots, int delay_ms,
                 int threads, long max_queued) {
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return false;
  f.child = ::fork();
  if (f.child == 0) {
    ::close(ready[0]);
    ::_exit(worker_main(run_dir, workers, slots, delay_ms, threads, ready[1]));
  }
  ::close(ready[1]);
  BackendOptions o;
  o.cpus = slots;
  o.extra = {
      {"max_allocations", "1"}, {"time_limit", "1h"}, {"max_queued", std::to_string(max_queued)}};
  auto made = make_pilot_backend(o, std::make_unique<NoSlurm>());
  if (!made) {
    std::fprintf(stderr, "fleet_bench: %s\n", made.error().message.c_str());
    return false;
  }
  f.backend = std::move(*made);
  f.backend->abandon("pilot:" + (run_dir / "tasks" / "start" / "1").string());  // listen now
  f.rss0 = rss_kib();
  std::vector<Completion> out;
  char answer = 'n';
  const auto connect_until = Clock::now() + std::chrono::seconds(120);
  while (Clock::now() < connect_until) {
    f.backend->poll(out, std::chrono::milliseconds(5));
    if (readable(ready[0])) {
      if (::read(ready[0], &answer, 1) != 1) answer = 'n';
      break;
    }
  }
  ::close(ready[0]);
  // Welcomes are queued when the hello is read; the child said so once all arrived.
  for (int i = 0; i < 10; ++i) f.backend->poll(out, std::chrono::milliseconds(1));
  f.rss1 = rss_kib();
  if (answer != 'y') {
    std::fprintf(stderr, "fleet_bench: the workers did not all connect\n");
    ::kill(f.child, SIGKILL);
    ::waitpid(f.child, nullptr, 0);
    return false;
  }
  return true;
}

// Tells every worker to exit; true when they all did cleanly.
bool stop_fleet(Fleet& f) {
  f.backend.reset();
  int status = 0;
  ::waitpid(f.child, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void print_line(const char* workload, int workers, int slots, long n, int delay_ms, double wall,
                long completed, double cpu, const Fleet& f, std::vector<std::int64_t>& lat,
                bool ok) {
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) {
    return lat.empty() ? 0
                       : lat[std::min(lat.size() - 1, static_cast<std::size_t>(p * lat.size()))];
  };
  std::printf(
      "workload=%s workers=%d slots=%d n=%ld delay_ms=%d wall_s=%.3f tasks_per_s=%.0f "
      "coord_cpu_us_per_task=%.2f mem_kib_per_worker=%.1f lat_p50_us=%lld lat_p99_us=%lld "
      "ok=%d\n",
      workload, workers, slots, n, delay_ms, wall, completed / wall,
      cpu * 1e6 / std::max(1L, completed), static_cast<double>(f.rss1 - f.rss0) / workers,
      static_cast<long long>(pct(0.5)), static_cast<long long>(pct(0.99)), ok ? 1 : 0);
}

// The engine's durable path: sluice::Coordinator with its store in a fresh home, the
// scheduler and the group commits, running a sweep of N no-op command tasks on the
// pilot backend and the same simulated workers.
int engine_main(const fs::path& base, int workers, long n, int delay_ms, int slots, int threads) {
  auto store = RunStore::open((base / "home").string(), RunStore::Mode::kReadWrite);
  if (!store) {
    std::fprintf(stderr, "fleet_bench: %s\n", store.error().message.c_str());
    return 3;
  }
  Workflow wf;
  wf.project = "bench";
  wf.name = "fleet";
  wf.base_dir = base.string();
  wf.source_path = (base / "fleet.toml").string();
  wf.text = "# fleet_bench --engine\n";
  wf.content_hash = "00000000000000f1";
  for (long i = 0; i < n; ++i) {
    TaskSpec t;
    t.group = "noop";
    t.name = "noop." + std::to_string(i);
    t.version = "1";
    t.command = {"true"};
    t.cpus = 1;
    t.workdir = base.string();
    wf.index[t.name] = static_cast<TaskId>(i);
    wf.tasks.push_back(std::move(t));
  }
  auto rev = (*store)->register_workflow(wf);
  const std::string run_id = new_run_id();
  if (!rev || !(*store)->create_run(wf, *rev, run_id, "pilot")) {
    std::fprintf(stderr, "fleet_bench: cannot create the run\n");
    return 3;
  }
  const fs::path run_dir = (*store)->run_dir(run_id);
  fs::create_directories(run_dir / "tasks");
  Fleet f;
  // The window the pilot backend offers the scheduler (max_queued): every slot busy.
  if (!start_fleet(f, run_dir, workers, slots, delay_ms, threads,
                   static_cast<long>(workers) * slots))
    return 3;
  Timed timed(*f.backend, static_cast<std::size_t>(n));
  CoordinatorOptions options;
  options.use_cache = std::getenv("FLEET_NO_CACHE") == nullptr;
  const double cpu0 = cpu_s();
  const auto t0 = Clock::now();
  Expected<RunState> state = RunState::kFailed;
  {
    Coordinator coordinator(**store, timed, wf, run_id);
    state = coordinator.run(options);
  }
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  const double cpu = cpu_s() - cpu0;
  const long completed = static_cast<long>(timed.lat.size());
  const bool clean = stop_fleet(f);
  if (!state) std::fprintf(stderr, "fleet_bench: %s\n", state.error().message.c_str());
  const bool ok =
      state && *state == RunState::kSucceeded && completed == n && timed.failed == 0 && clean;
  if (!ok)
    std::fprintf(stderr, "fleet_bench: run %s, %ld of %ld completed, %ld failed, workers %s\n",
                 state ? std::string(to_string(*state)).c_str() : "error", completed, n,
                 timed.failed, clean ? "exited cleanly" : "failed");
  print_line("fleet_engine", workers, slots, n, delay_ms, wall, completed, cpu, f, timed.lat, ok);
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  bool engine = false;
  if (argc > 1 && std::string(argv[1]) == "--engine") {
    engine = true;
    --argc;
    ++argv;
  }
  if (argc < 3) {
    std::fprintf(stderr, "usage: fleet_bench [--engine] WORKERS TASKS [DELAY_MS] [SLOTS]\n");
    return 2;
  }
  const int workers = std::atoi(argv[1]);
  const long n = std::atol(argv[2]);
  const int delay_ms = argc > 3 ? std::atoi(argv[3]) : 0;
  const int slots = argc > 4 ? std::atoi(argv[4]) : 64;
  const char* th = std::getenv("FLEET_THREADS");
  const int threads = std::max(1, std::min(workers, th ? std::atoi(th) : 2));
  if (workers < 1 || n < 1 || slots < 1) return 2;

  // One socket per worker on each side.
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < static_cast<rlim_t>(workers) * 2 + 64) {
      std::fprintf(stderr, "fleet_bench: %d workers need %d descriptors; the limit is %lu\n",
                   workers, workers * 2 + 64, static_cast<unsigned long>(rl.rlim_cur));
      return 3;
    }
  }
  const char* tmpdir = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/sluice-fleet.XXXXXX";
  const char* base = ::mkdtemp(tmpl.data());
  if (base == nullptr) return 3;
  if (engine) {
    const int rc = engine_main(base, workers, n, delay_ms, slots, threads);
    fs::remove_all(base);
    return rc;
  }
  const fs::path run_dir = fs::path(base) / "runs" / "fleet";
  fs::create_directories(run_dir / "tasks");

  const long in_flight_max = static_cast<long>(workers) * slots;
  Fleet f;
  if (!start_fleet(f, run_dir, workers, slots, delay_ms, threads, in_flight_max)) return 3;
  Backend& backend = *f.backend;
  std::vector<Completion> out;

  TaskSpec spec;
  spec.name = "noop";
  spec.command = {"true"};
  spec.cpus = 1;
  std::vector<std::int64_t> ready_us(static_cast<std::size_t>(n) + 1, 0);
  std::vector<std::uint8_t> seen(static_cast<std::size_t>(n) + 1, 0);
  std::vector<std::int64_t> lat;
  lat.reserve(static_cast<std::size_t>(n));
  const std::string tasks_dir = (run_dir / "tasks").string() + "/noop-";
  long launched = 0, completed = 0, in_flight = 0, bad = 0;
  const double cpu0 = cpu_s();
  const auto t0 = Clock::now();
  const auto give_up = t0 + std::chrono::seconds(300);
  while (completed < n && Clock::now() < give_up) {
    while (launched < n && in_flight < in_flight_max) {
      LaunchRequest r;
      r.task = static_cast<TaskId>(++launched);
      r.attempt = 1;
      r.spec = &spec;
      r.attempt_dir = tasks_dir + std::to_string(launched) + "/1";
      ready_us[launched] = wall_us();
      if (!backend.launch(r)) ++bad;
      ++in_flight;
    }
    out.clear();
    backend.poll(out, std::chrono::milliseconds(100));
    for (const Completion& c : out) {
      --in_flight;
      ++completed;
      if (c.task < 1 || c.task > static_cast<TaskId>(n) || seen[c.task]++ || !c.ok()) {
        ++bad;
        continue;
      }
      lat.push_back(c.started_us - ready_us[c.task]);
    }
  }
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  const double cpu = cpu_s() - cpu0;
  const bool clean = stop_fleet(f);
  fs::remove_all(base);
  const bool ok = completed == n && bad == 0 && clean;
  print_line("fleet", workers, slots, n, delay_ms, wall, completed, cpu, f, lat, ok);
  return ok ? 0 : 1;
}
