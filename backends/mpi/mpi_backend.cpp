#include "mpi_backend.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <span>
#include <unordered_map>

#include "mpi_session.hpp"
#include "mpi_wire.hpp"
#include "mpi_worker.hpp"
#include "placement.hpp"
#include "sluice/engine/wall_clock.hpp"

namespace sluice {
namespace {

using mpi::Backoff;
using mpi::MpiSession;
using mpi::SendQueue;

constexpr auto kHelloTimeout = std::chrono::seconds(120);

using worker::attempt_key;

class MpiBackend final : public Backend {
 public:
  explicit MpiBackend(const BackendOptions& options) : session_(MpiSession::get()) {
    capacity_.executors = options.executors;
    if (auto it = options.extra.find("queue_per_slot"); it != options.extra.end())
      if (auto n = parse_option_int(it->second))  // checked against mpi_option_table()
        depth_ = static_cast<int>(std::clamp<std::int64_t>(*n, 1, 1 << 12));
  }

  // Collects every worker's hello; fails when a worker does not answer in time.
  Expected<void> connect();

  ~MpiBackend() override {
    send_launches();
    sends_.flush(std::chrono::seconds(5));
    session_.release_workers();
  }

  std::string name() const override { return "mpi"; }
  // Workers lend their attempts scratch folders of their own (scratch_folders.hpp) and
  // spool the logs, in parallel, so rank 0 spends no file-system time per attempt (what
  // lets it hand out tens of thousands of function tasks per second).
  bool wants_attempt_dir() const override { return false; }
  // The workers' local backends spool each slot's logs (log_spool.hpp); a scratch folder
  // becomes an attempt's directory only when the attempt wrote into it.
  bool spools_logs() const override { return true; }
  Capacity capacity() const override { return capacity_; }
  Expected<std::string> launch(const LaunchRequest& request) override;
  // One kTagLaunch message per worker for the whole step, not one per attempt.
  std::vector<Expected<std::string>> launch_batch(std::span<const LaunchRequest> requests) override;
  void poll(std::vector<Completion>& out, std::chrono::milliseconds timeout) override;
  void kill(TaskId task, std::uint32_t attempt) override;
  std::size_t in_flight() const override { return placed_.size() + queued_.size() + ready_.size(); }
  void abandon(const std::string& handle) override;

 private:
  struct Worker {
    int rank = 0;
    std::string host;
    int cpus = 0;
    int gpus = 0;
    worker::FreeSlots free;
    int functions = 0;         // function tasks sent and not yet completed
    std::vector<char> outbox;  // launches for the next kTagLaunch message (mpi_wire.hpp)
  };
  struct Placed {
    int worker = 0;  // index into workers_
    int cpus = 0;
    int gpus = 0;
    bool function = false;  // counted in Worker::functions, not in its cores
  };
  struct Queued {
    TaskId task = 0;
    std::uint32_t attempt = 0;
    int cpus = 0;
    int gpus = 0;
    std::vector<char> bytes;  // one framed launch (mpi::append_launch)
  };

  // The worker with the most free cores that can hold cpus/gpus now (placement.hpp), or -1.
  int pick(int cpus, int gpus) const;
  // The worker with the fewest function tasks queued, if it has room for one more, or -1.
  int pick_for_function() const;
  // Places an attempt on `worker` and adds its framed launch to the worker's outbox.
  void send_to(int worker, TaskId task, std::uint32_t attempt, int cpus, int gpus,
               std::span<const char> framed);
  // Sends every non-empty outbox: before any other message to a worker (a kill must
  // follow its launch) and at the end of each step.
  void send_launches();
  // Starts queued launches that fit now, oldest first.
  void dispatch_queued();
  // Receives what has arrived; returns true when anything did.
  bool receive(std::vector<Completion>& out);

  MpiSession& session_;
  Capacity capacity_;
  std::vector<Worker> workers_;
  std::vector<int> worker_of_rank_;  // world rank -> index in workers_
  int max_cpus_ = 0, max_gpus_ = 0;  // of a single worker
  // Attempts handed out per worker core: above 1, function tasks queue on their worker
  // (which runs them back to back) instead of costing a round trip each.
  int depth_ = 1;
  std::unordered_map<std::uint64_t, Placed> placed_;
  std::deque<Queued> queued_;
  std::vector<Completion> ready_;  // killed while queued: reported by the next poll()
  SendQueue sends_;
  std::vector<char> bytes_;
};

Expected<void> MpiBackend::connect() {
  const int size = session_.size();
  if (size < 2)
    return make_error(ErrorCode::kBackend,
                      "the mpi backend needs at least 2 ranks (rank 0 coordinates, the others "
                      "run tasks): start it as `mpirun -n N sluice run --backend mpi FILE`");
  worker_of_rank_.assign(static_cast<std::size_t>(size), -1);
  workers_.reserve(static_cast<std::size_t>(size - 1));
  const auto until = std::chrono::steady_clock::now() + kHelloTimeout;
  Backoff backoff;
  int from = 0, tag = 0;
  while (static_cast<int>(workers_.size()) < size - 1) {
    if (!mpi::try_receive(MPI_ANY_SOURCE, from, tag, bytes_)) {
      if (std::chrono::steady_clock::now() > until)
        return make_error(ErrorCode::kBackend,
                          std::to_string(size - 1 - static_cast<int>(workers_.size())) +
                              " MPI worker(s) did not report within 120 s");
      backoff.pause();
      continue;
    }
    backoff.reset();
    if (tag != mpi::kTagHello) continue;
    auto hello = mpi::decode_hello(bytes_);
    if (!hello) return tl::unexpected(hello.error());
    Worker w;
    w.rank = from;
    w.host = hello->host;
    w.cpus = std::max(0, hello->cpus);
    w.gpus = static_cast<int>(hello->gpu_ids.size());
    w.free = {w.cpus, w.gpus};
    worker_of_rank_[static_cast<std::size_t>(from)] = static_cast<int>(workers_.size());
    workers_.push_back(w);
  }
  std::sort(workers_.begin(), workers_.end(),
            [](const Worker& a, const Worker& b) { return a.rank < b.rank; });
  capacity_.cpus = capacity_.gpus = 0;
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    worker_of_rank_[static_cast<std::size_t>(workers_[i].rank)] = static_cast<int>(i);
    capacity_.cpus += workers_[i].cpus * depth_;
    capacity_.gpus += workers_[i].gpus;
    max_cpus_ = std::max(max_cpus_, workers_[i].cpus);
    max_gpus_ = std::max(max_gpus_, workers_[i].gpus);
  }
  capacity_.gpus_per_place = max_gpus_;  // a task runs on one worker
  return {};
}

int MpiBackend::pick(int cpus, int gpus) const {
  auto it = worker::most_free_cores(workers_.begin(), workers_.end(), cpus, gpus,
                                    [](const Worker& w) { return &w.free; });
  return it == workers_.end() ? -1 : static_cast<int>(it - workers_.begin());
}

int MpiBackend::pick_for_function() const {
  int best = -1;
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    const Worker& w = workers_[i];
    if (w.functions >= std::max(1, w.cpus) * depth_) continue;
    if (best < 0 || w.functions < workers_[static_cast<std::size_t>(best)].functions)
      best = static_cast<int>(i);
  }
  return best;
}

void MpiBackend::send_to(int worker, TaskId task, std::uint32_t attempt, int cpus, int gpus,
                         std::span<const char> framed) {
  Worker& w = workers_[static_cast<std::size_t>(worker)];
  w.free.take(cpus, gpus);
  placed_[attempt_key(task, attempt)] = Placed{worker, cpus, gpus};
  w.outbox.insert(w.outbox.end(), framed.begin(), framed.end());
}

void MpiBackend::send_launches() {
  for (Worker& w : workers_) {
    if (w.outbox.empty()) continue;
    sends_.send(w.rank, mpi::kTagLaunch, std::move(w.outbox));
    w.outbox = {};
  }
}

std::vector<Expected<std::string>> MpiBackend::launch_batch(
    std::span<const LaunchRequest> requests) {
  std::vector<Expected<std::string>> handles;
  handles.reserve(requests.size());
  for (const LaunchRequest& r : requests) handles.push_back(launch(r));
  send_launches();
  return handles;
}

Expected<std::string> MpiBackend::launch(const LaunchRequest& request) {
  if (request.spec == nullptr) return make_error(ErrorCode::kBackend, "launch without a task");
  const TaskSpec& spec = *request.spec;
  const int cpus = std::max(0, spec.cpus), gpus = std::max(0, spec.gpus);
  if (cpus > max_cpus_ || gpus > max_gpus_)
    return make_error(
        ErrorCode::kBackend,
        "task '" + spec.name + "' needs " + std::to_string(cpus) + " cpus and " +
            std::to_string(gpus) + " GPUs on one MPI worker; the largest worker has " +
            std::to_string(max_cpus_) + " cpus and " + std::to_string(max_gpus_) + " GPUs");
  // In-process functions without GPUs: queued on the least loaded worker, which runs
  // them one after another on its MPI thread.
  if (!spec.function.empty() && gpus == 0) {
    if (const int worker = pick_for_function(); worker >= 0) {
      Worker& w = workers_[static_cast<std::size_t>(worker)];
      ++w.functions;
      placed_[attempt_key(request.task, request.attempt)] = Placed{worker, 0, 0, true};
      mpi::append_launch(w.outbox, request);
      return "mpi:" + w.host + ":" + request.attempt_dir;
    }
  }
  const int worker = queued_.empty() ? pick(cpus, gpus) : -1;
  std::string handle = "mpi:";
  std::vector<char> framed;
  mpi::append_launch(framed, request);
  if (worker >= 0) {
    handle += workers_[static_cast<std::size_t>(worker)].host;
    send_to(worker, request.task, request.attempt, cpus, gpus, framed);
  } else {
    // Free slots exist in total (the scheduler checked) but not on one worker yet.
    handle += session_.host();
    queued_.push_back(Queued{request.task, request.attempt, cpus, gpus, std::move(framed)});
  }
  handle += ':';
  handle += request.attempt_dir;
  return handle;
}

void MpiBackend::dispatch_queued() {
  while (!queued_.empty()) {
    Queued& q = queued_.front();
    const int worker = pick(q.cpus, q.gpus);
    if (worker < 0) return;
    send_to(worker, q.task, q.attempt, q.cpus, q.gpus, q.bytes);
    queued_.pop_front();
  }
}

bool MpiBackend::receive(std::vector<Completion>& out) {
  bool any = false;
  int from = 0, tag = 0;
  while (mpi::try_receive(MPI_ANY_SOURCE, from, tag, bytes_)) {
    any = true;
    if (tag != mpi::kTagCompletions) continue;
    const int wi = worker_of_rank_[static_cast<std::size_t>(from)];
    if (wi < 0) continue;
    const std::size_t before = out.size();
    if (auto r = mpi::decode_completions(bytes_, out); !r) {
      std::fprintf(stderr, "sluice: from MPI rank %d: %s\n", from, r.error().message.c_str());
      continue;
    }
    for (std::size_t i = before; i < out.size(); ++i) {
      Completion& c = out[i];
      c.host = workers_[static_cast<std::size_t>(wi)].host;
      auto it = placed_.find(attempt_key(c.task, c.attempt));
      if (it == placed_.end()) continue;
      Worker& w = workers_[static_cast<std::size_t>(it->second.worker)];
      w.free.give_back(it->second.cpus, it->second.gpus);
      if (it->second.function) --w.functions;
      placed_.erase(it);
    }
  }
  return any;
}

void MpiBackend::poll(std::vector<Completion>& out, std::chrono::milliseconds timeout) {
  const std::size_t before = out.size();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Backoff backoff;
  send_launches();  // from launch() calls outside launch_batch()
  for (;;) {
    if (!ready_.empty()) {
      for (Completion& c : ready_) out.push_back(std::move(c));
      ready_.clear();
    }
    sends_.progress();
    const bool any = receive(out);
    dispatch_queued();
    send_launches();
    if (out.size() > before) return;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return;
    if (any) {
      backoff.reset();
      continue;
    }
    backoff.pause(std::chrono::duration_cast<std::chrono::microseconds>(deadline - now));
  }
}

void MpiBackend::kill(TaskId task, std::uint32_t attempt) {
  if (auto it = placed_.find(attempt_key(task, attempt)); it != placed_.end()) {
    send_launches();
    sends_.send(workers_[static_cast<std::size_t>(it->second.worker)].rank, mpi::kTagKill,
                mpi::encode_kill(task, attempt));
    return;
  }
  for (auto it = queued_.begin(); it != queued_.end(); ++it) {
    if (it->task != task || it->attempt != attempt) continue;
    ready_.push_back(wire::killed_before_start(
        task, attempt, "killed before a worker was free to start it", session_.host()));
    queued_.erase(it);
    return;
  }
}

void MpiBackend::abandon(const std::string& handle) {
  // "mpi:HOST:DIR": the attempt ran (or waited) on HOST under DIR.
  if (handle.rfind("mpi:", 0) != 0) return;
  const std::size_t colon = handle.find(':', 4);
  if (colon == std::string::npos) return;
  const std::string host = handle.substr(4, colon - 4);
  const std::string dir = handle.substr(colon + 1);
  send_launches();
  for (const Worker& w : workers_) {
    if (w.host != host) continue;
    sends_.send(w.rank, mpi::kTagAbandon, std::vector<char>(dir.begin(), dir.end()));
    return;  // one worker per node looks through the node's processes
  }
}

}  // namespace

void register_mpi_backend() {
  register_worker_entry("mpi", [](const BackendOptions& options) -> std::optional<int> {
    if (MpiSession::get().rank() == 0) return std::nullopt;
    return mpi::serve_as_worker(options);
  });
  register_backend(
      "mpi",
      [](const BackendOptions& options) -> Expected<std::unique_ptr<Backend>> {
        MpiSession& session = MpiSession::get();
        if (session.rank() != 0)
          return make_error(ErrorCode::kBackend,
                            "the mpi backend's coordinator runs on rank 0 only");
        auto backend = std::make_unique<MpiBackend>(options);
        if (auto r = backend->connect(); !r) return tl::unexpected(r.error());
        return std::unique_ptr<Backend>(std::move(backend));
      },
      mpi_option_table());
}

}  // namespace sluice
