// Workers: accepting connections, the handshake and the hello, their messages, placing
// queued launches on them, and dropping the ones that left or went silent.
//
// Strangers can reach the port (it listens on every address of a login node everyone
// shares), so what a connection costs before it proves the run's key is bounded: at most
// kMaxHandshakeBuffer bytes read ahead (pilot_net.hpp), kHandshakeTimeout to be welcomed,
// kMaxStrangers such connections at once (the oldest makes way), and kAcceptsPerTurn
// accepted per turn of the loop.
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>

#include "pilot_coordinator.hpp"
#include "pilot_policy.hpp"
#include "sluice/duration.hpp"

namespace sluice::pilot {
namespace {

// A worker on a loaded node answers in milliseconds; a stranger holds a slot no longer.
constexpr auto kHandshakeTimeout = std::chrono::seconds(5);
constexpr std::size_t kMaxStrangers = 64;
constexpr int kAcceptsPerTurn = 64;

}  // namespace

bool PilotBackend::can_take(const Worker& w, const Queued& q, std::int64_t now_s) const {
  if (!w.welcomed || w.retiring || !w.free.holds(q.cpus, q.gpus)) return false;
  if (!q.executor.empty() && !w.info.executors.empty() &&
      std::find(w.info.executors.begin(), w.info.executors.end(), q.executor) ==
          w.info.executors.end())
    return false;
  return pilot::fits_remaining(q.max_exec_ms, w.info.alloc_end_s, now_s);
}

PilotBackend::Worker* PilotBackend::pick(const Queued& q, std::int64_t now_s) {
  // by_free_ is in placement.hpp's order (most free cores, the first on ties), so the
  // first worker that can take `q` is the one worker::most_free_cores would choose.
  for (const auto& [neg_cpus, id] : by_free_) {
    if (-neg_cpus < q.cpus) break;  // nobody further on has the cores
    auto it = workers_.find(id);
    if (it != workers_.end() && can_take(it->second, q, now_s)) return &it->second;
  }
  return nullptr;
}

void PilotBackend::index(Worker& w) {
  const bool wanted = w.welcomed && !w.retiring;
  if (w.indexed && wanted && w.indexed_cpus == w.free.cpus) return;
  if (w.indexed && wanted) {
    // Moves the node: no allocation per launch and completion.
    auto node = by_free_.extract({-w.indexed_cpus, w.id});
    node.value().first = -w.free.cpus;
    by_free_.insert(std::move(node));
  } else if (wanted) {
    by_free_.insert({-w.free.cpus, w.id});
  } else {
    unindex(w);
    return;
  }
  w.indexed = true;
  w.indexed_cpus = w.free.cpus;
}

void PilotBackend::unindex(Worker& w) {
  if (w.indexed) by_free_.erase({-w.indexed_cpus, w.id});
  w.indexed = false;
}

void PilotBackend::send(Worker& w, MsgType type, std::string_view payload) {
  w.conn->send(type, payload);
  queue_flush(w);
}

void PilotBackend::queue_flush(Worker& w) {
  if (w.flush_queued || !w.conn->wants_write()) return;
  w.flush_queued = true;
  to_flush_.push_back(w.id);
}

void PilotBackend::arm(Worker& w) {
  const bool want = w.conn->wants_write();
  if (want == w.out_armed) return;
  epoll_event ev{};
  ev.events = want ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
  ev.data.u64 = w.id;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, w.conn->fd(), &ev);
  w.out_armed = want;
}

void PilotBackend::flush_pending() {
  for (std::uint32_t id : to_flush_) {
    auto it = workers_.find(id);
    if (it == workers_.end()) continue;
    Worker& w = it->second;
    w.flush_queued = false;
    // A failed write shows up as EPOLLERR/EPOLLHUP, and the worker is dropped there.
    if (w.conn->wants_write()) w.conn->flush();
    arm(w);
  }
  to_flush_.clear();
}

void PilotBackend::forget(std::map<std::uint32_t, Worker>::iterator it) {
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second.conn->fd(), nullptr);
  workers_.erase(it);
}

void PilotBackend::dispatch() {
  if (queue_.empty() || workers_.empty()) return;
  // What one turn places on a worker goes out in one sealed frame (kLaunches): one
  // seal and one write per worker per turn, not per launch. Capped so that a worker
  // taking thousands of zero-core launches does not build one huge frame.
  constexpr std::size_t kMaxBatchBytes = 1u << 20;
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
    w->free.take(it->cpus, it->gpus);
    index(*w);
    w->running++;
    placed_[attempt_key(it->task, it->attempt)] = Placed{w->id, it->cpus, it->gpus};
    if (w->batch.empty()) batched_.push_back(w->id);
    w->batch.add(it->bytes);
    if (w->batch.bytes() >= kMaxBatchBytes) {
      const MsgType type = w->batch.type();
      send(*w, type, w->batch.take());
    }
    it = queue_.erase(it);
    dirty_ = true;
  }
  for (std::uint32_t id : batched_) {
    auto wit = workers_.find(id);
    if (wit == workers_.end() || wit->second.batch.empty()) continue;
    Worker& w = wit->second;
    const MsgType type = w.batch.type();
    send(w, type, w.batch.take());
  }
  batched_.clear();
}

void PilotBackend::accept_all() {
  std::size_t strangers = 0;
  for (const auto& [id, w] : workers_) strangers += !w.welcomed;
  for (int i = 0; i < kAcceptsPerTurn; ++i) {
    const int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    if (strangers >= kMaxStrangers) {
      // Ids grow with each accept: the first one not welcomed is the oldest.
      for (auto it = workers_.begin(); it != workers_.end(); ++it)
        if (!it->second.welcomed) {
          forget(it);
          --strangers;
          break;
        }
    }
    Worker w;
    w.id = next_worker_++;
    w.conn = std::make_unique<Connection>(pilot::Fd(fd));
    w.handshake = std::make_unique<ServerHandshake>(key_);
    w.accepted = w.heard = Clock::now();
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = w.id;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) continue;  // closes it
    workers_.emplace(w.id, std::move(w));
    ++strangers;
  }
}

bool PilotBackend::on_handshake(Worker& w, MsgType type, std::string_view payload) {
  std::string reply, why;
  const bool spoke = type == MsgType::kAuthProof || type == MsgType::kAuthFailed;
  const AuthStep step = w.handshake->on_frame(type, payload, reply, why);
  if (!reply.empty()) {
    w.conn->send_raw(reply);
    queue_flush(w);
  }
  if (step == AuthStep::kAccepted) {
    w.conn->seal(w.handshake->sender(), w.handshake->receiver());
    w.handshake.reset();
  } else if (step == AuthStep::kRefused) {
    w.conn->flush();
    // Only peers that got as far as a proof are worth a line: port scanners are not.
    if (spoke)
      std::fprintf(stderr, "sluice: pilot: refused a worker connection (%s)\n", why.c_str());
    return false;
  }
  return true;
}

bool PilotBackend::on_hello(Worker& w, std::string_view payload) {
  auto hello = pilot::decode_hello(payload);
  if (!hello) {
    send(w, MsgType::kRefused, pilot::encode_text(hello.error().message));
    w.conn->flush();
    std::fprintf(stderr, "sluice: pilot: refused a worker connection (malformed hello)\n");
    return false;
  }
  w.info = std::move(*hello);
  w.welcomed = true;
  w.free = {std::max(0, w.info.cpus), static_cast<int>(w.info.gpu_ids.size())};
  w.connected_us = wall_us();
  if (Allocation* a = allocation_of(w.info.job_id)) {
    a->workers++;
    a->ever++;
    if (a->state != Allocation::kEnded) a->state = Allocation::kRunning;
    if (!a->started_us) a->started_us = w.connected_us;
  }
  index(w);
  send(w, MsgType::kWelcome, pilot::encode_welcome({w.id, o_.heartbeat_timeout.count()}));
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
    if (!w.conn->sealed()) {
      if (!on_handshake(w, type, payload)) return false;
      continue;
    }
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
        auto it = placed_.find(attempt_key(c.task, c.attempt));
        if (it == placed_.end()) continue;
        w.free.give_back(it->second.cpus, it->second.gpus);
        w.running--;
        w.completed++;
        placed_.erase(it);
      }
      index(w);
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
        unindex(w);
        send(w, MsgType::kShutdown, pilot::encode_text("idle"));
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
  unindex(w);
  if (w.welcomed) {
    const std::int64_t now = wall_us();
    for (auto it = placed_.begin(); it != placed_.end();) {
      if (it->second.worker != id) {
        ++it;
        continue;
      }
      Completion c;
      c.task = worker::task_of_key(it->first);
      c.attempt = worker::attempt_of_key(it->first);
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
  forget(wit);
  dirty_ = true;
}

void PilotBackend::check_liveness(std::vector<Completion>& out) {
  const auto now = Clock::now();
  // A look at every worker, so not on every turn of a busy loop: timeouts are seconds.
  if (now < next_liveness_) return;
  next_liveness_ =
      now + std::min<Clock::duration>(std::chrono::milliseconds(50), o_.heartbeat_timeout / 20);
  std::vector<std::uint32_t> silent;
  for (const auto& [id, w] : workers_)
    if (w.welcomed && now - w.heard > o_.heartbeat_timeout) silent.push_back(id);
  for (auto id : silent)
    drop(id, "sent nothing for " + format_duration(o_.heartbeat_timeout) + " (no heartbeat)", out);
  // Connections not welcomed in time (a port scanner, a stuck client) are dropped.
  std::vector<std::uint32_t> stale;
  for (const auto& [id, w] : workers_)
    if (!w.welcomed && now - w.accepted > kHandshakeTimeout) stale.push_back(id);
  for (auto id : stale) forget(workers_.find(id));
  if (now < next_heartbeat_) return;
  next_heartbeat_ = now + o_.heartbeat_timeout / 6;
  for (auto& [id, w] : workers_)
    if (w.welcomed) send(w, MsgType::kHeartbeat, {});
}

}  // namespace sluice::pilot
