// `slurm` with mode = pilot | auto | jobs, and `pilot`: the factories, and the backend of
// mode = "auto" that sends each task to pilot workers or to a Slurm job of its own.
#include <unordered_map>

#include "driver_choice.hpp"
#include "pilot_backend.hpp"
#include "pilot_coordinator.hpp"
#include "pilot_options.hpp"
#include "sluice/duration.hpp"
#include "sluice/engine/file_modes.hpp"
#include "slurm_backend.hpp"

namespace sluice {
namespace {

using pilot::attempt_key;

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
      // The coordinator lends a spooling backend's attempts scratch folders and makes
      // no directory; a Slurm job of its own has Slurm write its logs into one.
      if (long_task) make_attempt_dir(rs[i].attempt_dir);
      (long_task ? to_jobs : to_pilot).push_back(rs[i]);
      (long_task ? ij : ip).push_back(i);
    }
    std::vector<Expected<std::string>> out(rs.size(), std::string());
    auto route = [&](Backend& b, std::vector<LaunchRequest>& reqs,
                     const std::vector<std::size_t>& idx, bool jobs) {
      if (reqs.empty()) return;
      auto res = b.launch_batch(reqs);
      for (std::size_t k = 0; k < res.size(); ++k) {
        if (res[k]) on_jobs_[attempt_key(reqs[k].task, reqs[k].attempt)] = jobs;
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
      on_jobs_.erase(attempt_key(out[i].task, out[i].attempt));
  }
  void kill(TaskId task, std::uint32_t attempt) override {
    auto it = on_jobs_.find(attempt_key(task, attempt));
    (it != on_jobs_.end() && it->second ? jobs_ : pilot_)->kill(task, attempt);
  }
  std::size_t in_flight() const override { return pilot_->in_flight() + jobs_->in_flight(); }
  std::string describe() const override { return jobs_->describe(); }
  // Pilot workers spool; jobs of their own (slurm) still write their attempt's files.
  bool spools_logs() const override { return pilot_->spools_logs(); }
  void abandon(const std::string& handle) override {
    (handle.rfind("pilot:", 0) == 0 ? pilot_ : jobs_)->abandon(handle);
  }
  bool reattach(const std::string& handle, TaskId task, std::uint32_t attempt) override {
    if (handle.rfind("pilot:", 0) == 0) return false;
    if (!jobs_->reattach(handle, task, attempt)) return false;
    on_jobs_[attempt_key(task, attempt)] = true;
    return true;
  }
  std::string unrecorded_handle(const std::string& attempt_dir) override {
    return jobs_->unrecorded_handle(attempt_dir);  // pilot attempts are never found again
  }
  void set_stopping_check(std::function<bool()> stopping) override {
    pilot_->set_stopping_check(stopping);
    jobs_->set_stopping_check(std::move(stopping));
  }

 private:
  std::unique_ptr<Backend> pilot_, jobs_;
  Millis threshold_;
  std::unordered_map<std::uint64_t, bool> on_jobs_;
};

// Pilot mode with the driver the `driver` option and the cluster's version call for
// (slurm::make_driver: libslurm only for the release it was built for).
Expected<std::unique_ptr<Backend>> pilot_for(const BackendOptions& options) {
  slurm::CommandPolicy policy;
  if (auto t = options.extra.find("command_timeout"); t != options.extra.end())
    if (auto d = parse_duration(t->second); d && d->count() > 0) policy.timeout = *d;
  auto it = options.extra.find("driver");
  auto chosen = slurm::make_driver(it == options.extra.end() ? "auto" : it->second, policy);
  if (!chosen) return tl::unexpected(chosen.error());
  return make_pilot_backend(options, std::move(chosen->driver));
}

BackendOptions without(const BackendOptions& in, std::initializer_list<const char*> keys) {
  BackendOptions out = in;
  for (const char* k : keys) out.extra.erase(k);
  return out;
}

}  // namespace

void register_pilot_backend() {
  register_backend(
      "pilot", [](const BackendOptions& options) { return pilot_for(options); },
      pilot::option_table());
  register_backend(
      "slurm",
      [](const BackendOptions& options) -> Expected<std::unique_ptr<Backend>> {
        auto it = options.extra.find("mode");
        const std::string mode = it == options.extra.end() ? "jobs" : it->second;
        if (mode == "jobs")
          return make_slurm_backend(without(options, {"mode", "cpus", "gpus", "executors"}));
        if (mode == "pilot") return pilot_for(options);
        if (mode != "auto")
          return make_error(ErrorCode::kInvalidInput,
                            "slurm backend option mode=" + mode + ": use jobs, pilot or auto");
        auto pilot = pilot_for(options);
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
      },
      pilot::slurm_modes_option_table());
}

}  // namespace sluice
