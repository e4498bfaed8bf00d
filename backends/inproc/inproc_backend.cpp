#include "inproc_backend.hpp"

#include <sched.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "inproc_options.hpp"
#include "sluice/engine/artifacts.hpp"
#include "sluice/engine/file_modes.hpp"
#include "sluice/engine/hdf5_codec.hpp"
#include "sluice/engine/host_info.hpp"
#include "sluice/engine/wall_clock.hpp"
#include "sluice/function.hpp"
#include "sluice/function_args.hpp"

namespace sluice {
namespace {

struct Job {
  TaskId task = 0;
  std::uint32_t attempt = 0;
  const TaskSpec* spec = nullptr;
  const FunctionInfo* function = nullptr;
  std::string attempt_dir;
  // SLUICE_INPUT_<PARENT> paths, for parents whose result is not in memory (resume).
  std::vector<std::pair<std::string, std::string>> input_paths;
  // Parents' packed values the coordinator holds (LaunchRequest::parent_values).
  std::vector<std::shared_ptr<const Map>> parent_values;
};

class InprocBackend final : public Backend {
 public:
  explicit InprocBackend(const BackendOptions& o) {
    const int threads = o.cpus > 0 ? o.cpus : usable_cpus();
    int depth = 256;
    if (auto it = o.extra.find("queue_per_thread"); it != o.extra.end())
      if (auto n = parse_option_int(it->second))  // checked against inproc_option_table()
        depth = static_cast<int>(std::clamp<std::int64_t>(*n, 1, 1 << 16));
    capacity_.cpus = threads * depth;
    capacity_.gpus = std::max(o.gpus, 0);
    capacity_.executors = o.executors;
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
  }

  ~InprocBackend() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  std::string name() const override { return "inproc"; }
  Capacity capacity() const override { return capacity_; }
  bool wants_attempt_dir() const override { return false; }
  bool needs_input_files() const override { return false; }
  std::shared_ptr<const Value> result_in_memory(TaskId t) const override { return result_of(t); }

  Expected<std::string> launch(const LaunchRequest& r) override {
    const TaskSpec& spec = *r.spec;
    if (spec.function.empty())
      return make_error(ErrorCode::kBackend, "task '" + spec.name +
                                                 "' is a command; the inproc backend runs C++ "
                                                 "function tasks only (use the local backend)");
    const FunctionInfo* f = find_function(spec.function);
    if (!f)
      return make_error(ErrorCode::kBackend,
                        "no function registered as '" + spec.function + "' in this program");
    Job j;
    j.task = r.task;
    j.attempt = r.attempt;
    j.spec = &spec;
    j.function = f;
    j.attempt_dir = r.attempt_dir;
    j.parent_values = r.parent_values;
    for (const auto& [k, v] : r.env) {
      if (k.compare(0, 13, "SLUICE_INPUT_") == 0) {
        j.input_paths.emplace_back(k, v);
      } else if (run_id_.empty() && k == "SLUICE_RUN_ID") {
        std::lock_guard<std::mutex> lock(mu_);
        run_id_ = v;
      }
    }
    bool wake;
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(j));
      wake = idle_ > 0;
    }
    if (wake) work_cv_.notify_one();
    ++in_flight_;
    return std::string("inproc");
  }

  void poll(std::vector<Completion>& out, std::chrono::milliseconds timeout) override {
    std::unique_lock<std::mutex> lock(done_mu_);
    if (done_.empty() && timeout.count() > 0 && in_flight_ > 0)
      done_cv_.wait_for(lock, timeout, [this] { return !done_.empty(); });
    in_flight_ -= done_.size();
    for (Completion& c : done_) out.push_back(std::move(c));
    done_.clear();
  }

  void kill(TaskId task, std::uint32_t attempt) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
      if (it->task != task || it->attempt != attempt) continue;
      Completion c;
      c.task = task;
      c.attempt = attempt;
      c.kind = ExitKind::kSignaled;
      c.code = SIGKILL;
      c.reason = "cancelled before it started";
      c.started_us = c.ended_us = wall_us();
      queue_.erase(it);
      finish(std::move(c));
      return;
    }
  }

  std::size_t in_flight() const override { return in_flight_; }
  void abandon(const std::string&) override {}

 private:
  // Wakes the coordinator only when the first completion of a batch arrives.
  void finish(Completion c) {
    bool first;
    {
      std::lock_guard<std::mutex> lock(done_mu_);
      first = done_.empty();
      done_.push_back(std::move(c));
    }
    if (first) done_cv_.notify_one();
  }

  void work() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      if (queue_.empty()) {
        if (stop_) return;
        ++idle_;
        work_cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        --idle_;
        continue;
      }
      Job j = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      finish(execute(j));
      lock.lock();
    }
  }

  std::shared_ptr<const Value> result_of(TaskId t) const {
    std::lock_guard<std::mutex> lock(results_mu_);
    return t < results_.size() ? results_[t] : nullptr;
  }

  Expected<Value> parent_value(const Job& j, const ArgumentRef& ref) {
    if (ref.position >= j.spec->after.size())
      return make_error(ErrorCode::kInvalidInput, "argument refers to no parent");
    if (auto v = result_of(j.spec->after[ref.position])) return *v;
    if (ref.position < j.parent_values.size() && j.parent_values[ref.position]) {
      const Map& packed = *j.parent_values[ref.position];
      if (const Value* v = packed.find(kResultKey)) return *v;
      return Value(packed);  // a command task's values: all its keys
    }
    const std::string env = input_env_name(ref.parent);
    for (const auto& [k, path] : j.input_paths) {
      if (k != env) continue;
      auto reader = ArtifactReader::open(path);
      if (!reader) return tl::unexpected(reader.error());
      if (reader->contains(kResultKey)) return reader->get(kResultKey);
      auto all = reader->get_all();
      if (!all) return tl::unexpected(all.error());
      return Value(std::move(*all));
    }
    return Value();  // the parent returned nothing
  }

  Completion execute(const Job& j) {
    Completion c;
    c.task = j.task;
    c.attempt = j.attempt;
    c.started_us = wall_us();
    auto fail = [&](const std::string& why) {
      c.code = 1;
      c.failure = why;
      if (make_attempt_dir(j.attempt_dir)) {
        if (std::FILE* f = std::fopen((j.attempt_dir + "/stderr").c_str(), "w")) {
          std::fprintf(f, "%s\n", why.c_str());
          std::fclose(f);
        }
      }
      c.ended_us = wall_us();
      return c;
    };
    auto args = decode_arguments(j.spec->arguments);
    if (!args) return fail(args.error().message);
    std::vector<Value> values;
    values.reserve(args->size());
    for (Argument& a : *args) {
      if (a.kind == Argument::Kind::kValue) {
        values.push_back(std::move(a.value));
        continue;
      }
      List gathered;
      gathered.reserve(a.refs.size());
      for (const ArgumentRef& r : a.refs) {
        auto v = parent_value(j, r);
        if (!v) return fail("input from '" + r.parent + "': " + v.error().message);
        gathered.push_back(std::move(*v));
      }
      if (a.kind == Argument::Kind::kResult) {
        values.push_back(gathered.empty() ? Value() : std::move(gathered.front()));
      } else {
        values.push_back(Value(std::move(gathered)));
      }
    }
    TaskContext ctx;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ctx.run_id = run_id_;
    }
    ctx.task = j.spec->name;
    ctx.attempt = j.attempt;
    ctx.attempt_dir = j.attempt_dir;
    auto result = invoke_function(*j.function, ctx, values);
    if (!result) return fail(result.error().message);
    if (!j.function->returns_void) {
      // Packed by the coordinator (stored with the success, shown in run.h5): no file.
      c.content_hash = value_content_hash(kResultKey, *result);
      auto values = std::make_shared<Map>();
      values->insert_or_assign(kResultKey, *result);
      c.values = std::move(values);
      auto shared = std::make_shared<const Value>(std::move(*result));
      std::lock_guard<std::mutex> lock(results_mu_);
      if (results_.size() <= j.task) results_.resize(j.task + 1);
      results_[j.task] = std::move(shared);
    }
    c.ended_us = wall_us();
    return c;
  }

  Capacity capacity_;
  std::vector<std::thread> threads_;
  std::size_t in_flight_ = 0;  // coordinator thread only

  std::mutex mu_;
  // State below is protected by mu_.
  std::condition_variable work_cv_;
  std::deque<Job> queue_;
  int idle_ = 0;
  bool stop_ = false;
  std::string run_id_;

  std::mutex done_mu_;
  // State below is protected by done_mu_.
  std::condition_variable done_cv_;
  std::vector<Completion> done_;

  mutable std::mutex results_mu_;
  // State below is protected by results_mu_: results of this process's attempts.
  std::vector<std::shared_ptr<const Value>> results_;
};

}  // namespace

std::unique_ptr<Backend> make_inproc_backend(const BackendOptions& options) {
  return std::make_unique<InprocBackend>(options);
}

void register_inproc_backend() {
  register_backend(
      "inproc",
      [](const BackendOptions& o) -> Expected<std::unique_ptr<Backend>> {
        return make_inproc_backend(o);
      },
      inproc_option_table());
}

}  // namespace sluice
