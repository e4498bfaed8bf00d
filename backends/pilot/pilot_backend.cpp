// The Backend verbs of the pilot backend (pilot_backend.hpp): start-up (key, listening
// socket, address file), launch (queued until a worker takes it), poll (one turn of the
// event loop over the listener and every worker), kill, abandon.
#include "pilot_backend.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <thread>

#include "pilot_coordinator.hpp"
#include "pilot_policy.hpp"
#include "sluice/duration.hpp"
#include "sluice/engine/host_info.hpp"
#include "wire_codec.hpp"

namespace sluice {
namespace pilot {

namespace {

std::string run_dir_of(const std::string& attempt_dir) {
  const auto pos = attempt_dir.rfind("/tasks/");
  return pos == std::string::npos ? attempt_dir : attempt_dir.substr(0, pos);
}

}  // namespace

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

void PilotBackend::set_stopping_check(std::function<bool()> stopping) {
  if (driver_) driver_->set_stopping_check(std::move(stopping));
}

PilotBackend::PilotBackend(Options o, std::unique_ptr<slurm::SlurmDriver> driver)
    : o_(std::move(o)), driver_(std::move(driver)), host_(host_name()) {
  // Two log files per launch in the window, one socket per worker: the common soft
  // limit of 1024 descriptors is too low, the hard limit rarely is.
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    fd_limit_ = static_cast<long>(std::min<rlim_t>(rl.rlim_cur, 1L << 30));
}

long PilotBackend::fd_window() const {
  if (fd_limit_ <= 0) return o_.window;
  constexpr long kReserve = 256;
  return std::max(16L, (fd_limit_ - kReserve - static_cast<long>(workers_.size())) / 2);
}

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
  by_free_.clear();
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
  if (auto r = pilot::init_crypto(); !r) return failed(r.error().message);
  // A resumed run keeps its key: workers of the crashed coordinator may reconnect, and
  // prove it again in the handshake.
  const std::string key_path = pilot_dir_ + "/secret";
  std::string word;
  {
    std::ifstream in(key_path);
    in >> word;
  }
  if (auto k = pilot::Key::from_hex(word)) {
    key_ = *k;
    ::chmod(key_path.c_str(), 0600);
  } else {
    key_ = pilot::Key::random();
    if (!write_atomically(key_path, key_.hex() + "\n", 0600))
      return failed("cannot write " + key_path);
  }
  int port = 0;
  auto l = pilot::listen_tcp(0, port);
  if (!l) return failed(l.error().message);
  listener_ = std::move(*l);
  epoll_ = pilot::Fd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_.valid()) return failed("epoll_create1 failed");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listener_.get(), &ev) != 0)
    return failed("epoll_ctl failed");
  events_.resize(1024);
  address_ = host_ + ":" + std::to_string(port);
  if (!write_atomically(pilot_dir_ + "/address", address_ + "\n", 0644))
    return failed("cannot write " + pilot_dir_ + "/address");
  load_previous_state();
  started_ = true;
  return {};
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
  if ((o_.cpus > 0 && spec.cpus > o_.worker_cpus()) || spec.gpus > o_.worker_gpus())
    return make_error(ErrorCode::kBackend,
                      "task '" + spec.name + "' needs " + std::to_string(spec.cpus) + " cpus and " +
                          std::to_string(spec.gpus) + " GPUs; a pilot worker has " +
                          (o_.cpus > 0 ? std::to_string(o_.worker_cpus())
                                       : std::string("its share of a node's")) +
                          " cpus and " + std::to_string(o_.worker_gpus()) +
                          " GPUs (options cpus, gpus, gpus_per_worker)");
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
    flush_pending();
    const auto now = Clock::now();
    int wait_ms = 0;
    if (out.size() == before && now < deadline)
      wait_ms = static_cast<int>(std::min<std::int64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1, 250));
    // Only the sockets that have something: the loop's cost follows the traffic, not the
    // fleet.
    const int n =
        ::epoll_wait(epoll_.get(), events_.data(), static_cast<int>(events_.size()), wait_ms);
    for (int k = 0; k < n; ++k) {
      const std::uint32_t id = static_cast<std::uint32_t>(events_[k].data.u64);
      const std::uint32_t ev = events_[k].events;
      if (id == 0) {
        accept_all();
        continue;
      }
      auto it = workers_.find(id);
      if (it == workers_.end()) continue;
      bool ok = true;
      if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) ok = serve(it->second, out);
      if (ok && (ev & EPOLLOUT)) {
        ok = it->second.conn->flush();
        if (ok) arm(it->second);
      }
      if (ok) {
        queue_flush(it->second);  // what serve() answered (the handshake, the welcome)
      } else {
        const bool refused = !it->second.welcomed;
        drop(id, refused ? "refused" : it->second.retiring ? "left" : "vanished", out);
      }
    }
    dispatch();
    flush_pending();
    manage_allocations(out);
    check_liveness(out);
    write_state(false);
    if (out.size() > before || Clock::now() >= deadline) return;
  }
}

void PilotBackend::kill(TaskId task, std::uint32_t attempt) {
  if (auto it = placed_.find(attempt_key(task, attempt)); it != placed_.end()) {
    if (auto w = workers_.find(it->second.worker); w != workers_.end())
      send(w->second, MsgType::kKill, pilot::encode_kill(task, attempt));
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

}  // namespace pilot

Expected<std::unique_ptr<Backend>> make_pilot_backend(const BackendOptions& options,
                                                      std::unique_ptr<slurm::SlurmDriver> driver) {
  auto o = pilot::parse_options(options);
  if (!o) return tl::unexpected(o.error());
  return std::unique_ptr<Backend>(
      std::make_unique<pilot::PilotBackend>(std::move(*o), std::move(driver)));
}

}  // namespace sluice
