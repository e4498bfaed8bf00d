#include "report_data.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <queue>
#include <unordered_map>

#include "sluice/engine/attempt_logs.hpp"
#include "sluice/function_args.hpp"

namespace sluice::cli {
namespace {

using nlohmann::json;

// The last `max_bytes` of the attempt's stderr, wherever it is kept (spool or file).
std::string stderr_tail(RunStore& store, const std::string& run_id, const TaskRecord& t,
                        std::size_t max_bytes) {
  std::string text;
  auto found =
      read_attempt_log(store, run_id, t.index, t.name, t.attempts, LogStream::kStderr, text);
  if (!found || !*found) return "";
  if (text.size() > max_bytes) {
    text.erase(0, text.size() - max_bytes);
    // Start at a line boundary when the cut fell inside a line.
    const auto nl = text.find('\n');
    if (nl != std::string::npos && nl + 1 < text.size()) text.erase(0, nl + 1);
  }
  return text;
}

}  // namespace

std::vector<std::uint32_t> assign_slots(const std::vector<LaneInterval>& intervals,
                                        std::vector<std::uint32_t>& slots_per_host) {
  std::vector<std::size_t> order(intervals.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return intervals[a].start < intervals[b].start;
  });
  using Busy = std::pair<std::int64_t, std::uint32_t>;  // (end, slot), earliest end on top
  using Free = std::uint32_t;                           // lowest slot on top
  struct HostLanes {
    std::priority_queue<Busy, std::vector<Busy>, std::greater<>> busy;
    std::priority_queue<Free, std::vector<Free>, std::greater<>> free;
    std::uint32_t count = 0;
  };
  std::vector<HostLanes> hosts;
  std::vector<std::uint32_t> slot(intervals.size(), 0);
  for (std::size_t i : order) {
    const LaneInterval& iv = intervals[i];
    if (iv.host >= hosts.size()) hosts.resize(iv.host + 1);
    HostLanes& h = hosts[iv.host];
    while (!h.busy.empty() && h.busy.top().first <= iv.start) {
      h.free.push(h.busy.top().second);
      h.busy.pop();
    }
    std::uint32_t s;
    if (h.free.empty()) {
      s = h.count++;
    } else {
      s = h.free.top();
      h.free.pop();
    }
    slot[i] = s;
    h.busy.push({std::max(iv.end, iv.start), s});
  }
  slots_per_host.assign(hosts.size(), 0);
  for (std::size_t h = 0; h < hosts.size(); ++h) slots_per_host[h] = hosts[h].count;
  return slot;
}

json report_json(const RunView& view, RunStore& store, std::int64_t now_us,
                 const ReportLimits& limits) {
  const RunRecord& run = *view.run;
  const std::int64_t end_of_run = run.ended_us > 0 ? run.ended_us : now_us;
  json out;
  out["run"] = {{"id", run.id},
                {"workflow", run.workflow_id()},
                {"state", to_string(run.state)},
                {"backend", run.backend},
                {"host", run.host},
                {"source", run.source_path},
                {"created_us", run.created_us},
                {"started_us", run.started_us},
                {"ended_us", run.ended_us}};
  out["generated_us"] = now_us;

  json states = json::array();
  for (int i = 0; i < kTaskStateCount; ++i) states.push_back(to_string(static_cast<TaskState>(i)));
  out["states"] = states;

  json counts = json::object();
  json names = json::array(), tstate = json::array(), tattempts = json::array(),
       tparent = json::array();
  for (const auto& t : view.tasks) {
    names.push_back(t.name);
    tstate.push_back(static_cast<int>(t.state));
    tattempts.push_back(t.attempts);
    tparent.push_back(t.parent);
    counts[std::string(to_string(t.state))] = counts.value(std::string(to_string(t.state)), 0) + 1;
  }
  out["counts"] = counts;
  out["tasks"] = {{"name", names}, {"state", tstate}, {"attempts", tattempts}, {"parent", tparent}};

  // Attempts, on lanes; times in milliseconds from the run's start.
  std::int64_t t0 = run.started_us > 0 ? run.started_us : run.created_us;
  for (const auto& a : view.attempts)
    if (a.started_us > 0) t0 = std::min(t0, a.started_us);
  std::vector<std::string> hosts;
  std::unordered_map<std::string, std::uint32_t> host_index;
  std::vector<LaneInterval> lanes;
  std::vector<const AttemptRecord*> placed;
  for (const auto& a : view.attempts) {
    if (a.started_us <= 0) continue;
    const std::string host = a.host.empty() ? run.host : a.host;
    auto [it, fresh] = host_index.try_emplace(host, static_cast<std::uint32_t>(hosts.size()));
    if (fresh) hosts.push_back(host);
    const std::int64_t end = a.ended_us > 0 ? a.ended_us : end_of_run;
    lanes.push_back({a.started_us, std::max(end, a.started_us), it->second});
    placed.push_back(&a);
  }
  std::vector<std::uint32_t> slots_per_host;
  const auto slot = assign_slots(lanes, slots_per_host);
  json at = json::array(), an = json::array(), ast = json::array(), abeg = json::array(),
       aend = json::array(), ahost = json::array(), aslot = json::array(), aexit = json::array(),
       areason = json::array();
  for (std::size_t i = 0; i < placed.size(); ++i) {
    const AttemptRecord& a = *placed[i];
    at.push_back(a.task);
    an.push_back(a.attempt);
    ast.push_back(static_cast<int>(a.state));
    abeg.push_back((lanes[i].start - t0) / 1000);
    aend.push_back(a.ended_us > 0 ? (a.ended_us - t0) / 1000 : -1);
    ahost.push_back(lanes[i].host);
    aslot.push_back(slot[i]);
    aexit.push_back(a.exit_code);
    areason.push_back(a.reason);  // why a retried attempt ended: timed out, exit code, …
  }
  out["t0_us"] = t0;
  out["span_ms"] = (end_of_run - t0) / 1000;
  out["hosts"] = hosts;
  out["slots"] = slots_per_host;
  out["attempts"] = {{"task", at},    {"n", an},       {"state", ast},
                     {"start", abeg}, {"end", aend},   {"host", ahost},
                     {"slot", aslot}, {"exit", aexit}, {"reason", areason}};

  // Failed tasks: reason and the tail of the latest attempt's stderr.
  json failed = json::array();
  std::size_t with_logs = 0;
  for (const auto& t : view.tasks) {
    if (t.state != TaskState::kFailed) continue;
    json f = {
        {"task", t.index}, {"attempts", t.attempts}, {"reason", t.reason}, {"exit", t.exit_code}};
    if (t.attempts > 0 && with_logs < limits.failed_with_logs) {
      ++with_logs;
      f["stderr"] = stderr_tail(store, run.id, t, limits.stderr_tail_bytes);
    }
    failed.push_back(std::move(f));
  }
  out["failed"] = failed;

  // Artifacts: the output.h5 of each task's latest attempt that wrote one, or the values
  // it packed into the store (their encoded size: what they weigh in the run's HDF5 files).
  std::unordered_map<TaskId, std::uint64_t> packed_size;
  if (auto packed = store.run_values(run.id); packed && !packed->empty()) {
    std::unordered_map<TaskId, std::uint32_t> final_attempt;
    for (const auto& t : view.tasks) final_attempt[t.index] = t.attempts;
    for (const AttemptValues& a : *packed) {
      auto f = final_attempt.find(a.task);
      if (f == final_attempt.end() || f->second != a.attempt || !a.values) continue;
      std::string bytes;
      append_value_bytes(Value(*a.values), bytes);
      packed_size[a.task] = bytes.size();
    }
  }
  json art_task = json::array(), art_size = json::array();
  std::uint64_t total = 0;
  for (const auto& t : view.tasks) {
    if (t.attempts == 0) continue;
    std::error_code ec;
    std::uint64_t size = std::filesystem::file_size(
        store.attempt_dir(run.id, t.name, t.attempts) + "/output.h5", ec);
    if (ec) {
      auto it = packed_size.find(t.index);
      if (it == packed_size.end()) continue;
      size = it->second;
    }
    art_task.push_back(t.index);
    art_size.push_back(size);
    total += size;
  }
  out["artifacts"] = {{"task", art_task}, {"size", art_size}, {"total", total}};
  return out;
}

}  // namespace sluice::cli
