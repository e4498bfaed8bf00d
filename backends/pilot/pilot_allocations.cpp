// Slurm allocations: submitting them (the batch script that starts one worker per
// node), watching them with one batched query, and the state file `sluice workers` reads.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "job_script.hpp"
#include "pilot_coordinator.hpp"
#include "pilot_policy.hpp"
#include "sluice/engine/host_info.hpp"

namespace sluice::pilot {
namespace {

constexpr auto kStateInterval = std::chrono::seconds(1);
constexpr auto kSubmitBackoff = std::chrono::seconds(10);
// Allocations the cluster stopped listing for this many queries in a row have ended.
constexpr int kMissingQueries = 3;

std::string exe_path() {
  std::string path = self_executable();
  return path.empty() ? "sluice" : path;
}

bool is_running_state(const std::string& s) {
  return s == "RUNNING" || s == "COMPLETING" || s == "CONFIGURING" || s == "SUSPENDED";
}

bool is_pending_state(const std::string& s) {
  return s == "PENDING" || s == "REQUEUED" || s == "REQUEUE_HOLD" || s == "REQUEUE_FED";
}

}  // namespace

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
  const int per_node = o_.workers_per_node();
  const std::string tasks = "--ntasks-per-node=" + std::to_string(per_node);
  r.cpus = std::max(1, o_.worker_cpus());
  r.gpus = o_.gpus;
  r.mem_mib = o_.memory_mib;
  r.time_min = static_cast<int>((o_.time_limit.count() + 59'999) / 60'000);
  // --no-requeue: an allocation that loses a node ends (NODE_FAIL) and is replaced by
  // the rule below, instead of waiting, pending, for Slurm to start it again.
  r.extra.insert(r.extra.begin(), {"--nodes=" + std::to_string(o_.nodes), tasks, "--no-requeue"});
  if (o_.cpus == 0) r.extra.push_back("--exclusive");
  const auto q = slurm::shell_quote;
  std::string executors;
  for (const auto& e : o_.executors) executors += (executors.empty() ? "" : ",") + e;
  std::string s = "#!/bin/bash\n";
  s += "#SBATCH --job-name=" + q(r.name) + "\n";
  s += "#SBATCH --chdir=" + q(r.workdir) + "\n";
  s += "#SBATCH --output=" + q(r.output) + "\n";
  for (const auto& opt : slurm::resource_options(r)) s += "#SBATCH " + opt + "\n";
  s += "# sluice: a pilot allocation of run " + run_id_ + ": " +
       (per_node == 1 ? "one worker per node" : tasks + " workers, one per GPU set") +
       ", connecting back to the coordinator (" + address_ + ")\n";
  // Slurm 22.05 exports no end time; the limit counts from the job's start, now.
  s += "end=$(( $(date +%s) + " + std::to_string(o_.time_limit.count() / 1000) + " ))\n";
  // The step names the GPUs again: a step gets no GRES it does not ask for.
  s += "exec srun " + tasks + " --kill-on-bad-exit=0 " +
       (o_.gpus > 0 ? "--gres=gpu:" + std::to_string(o_.gpus) + " " : std::string()) +
       q(exe_path()) + " worker --pilot-dir " + q(pilot_dir_) +
       " --alloc-end \"$end\" --idle-timeout " + std::to_string(o_.idle_timeout.count()) + "ms" +
       (o_.cpus > 0 ? " --cpus " + std::to_string(o_.worker_cpus()) : std::string()) +
       (per_node > 1 ? " --workers-per-node " + std::to_string(per_node) : std::string()) +
       (o_.memory_mib > 0 ? " --memory " + std::to_string(o_.memory_mib / per_node)
                          : std::string()) +
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
          } else if (is_pending_state(it->second.state) && !a.started_us && a.ever == 0) {
            a.missing = 0;
            continue;
          } else if (is_pending_state(it->second.state)) {
            // Requeued after it ran (a node failed, or `scontrol requeue`), though
            // submitted with --no-requeue: its workers are gone; cancel it and replace it.
            driver_->cancel({a.job});
            a.state = Allocation::kEnded;
            a.end_reason = "requeued by Slurm (" + it->second.state + ")";
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
          {"free_cpus", w.free.cpus},
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

}  // namespace sluice::pilot
