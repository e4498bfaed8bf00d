#include "attempt_view.hpp"

#include <algorithm>

#include "sluice/state.hpp"

namespace sluice::cli {

std::string slurm_job_of(const std::string& handle) {
  if (!handle.starts_with("slurm:")) return "";
  const std::size_t from = 6, to = handle.find(':', from);
  const std::string job = handle.substr(from, to == std::string::npos ? to : to - from);
  return job == "held" ? "" : job;
}

nlohmann::json attempt_json(const AttemptRecord& a) {
  using nlohmann::json;
  const bool ended = is_terminal(a.state);
  const bool cached = a.host == "cache";
  const std::string job = slurm_job_of(a.handle);
  return {{"attempt", a.attempt},
          {"state", std::string(to_string(a.state))},
          {"reason", a.reason},
          {"exit_code", ended && a.exit_code >= 0 ? json(a.exit_code) : json(nullptr)},
          {"host", a.host},
          {"slurm_job", job.empty() ? json(nullptr) : json(job)},
          {"started_us", a.started_us},
          {"ended_us", a.ended_us},
          {"cached_from", cached ? json(a.reason) : json(nullptr)}};
}

nlohmann::json attempts_json(const std::vector<AttemptRecord>& all, TaskId task) {
  std::vector<const AttemptRecord*> mine;
  for (const auto& a : all)
    if (a.task == task) mine.push_back(&a);
  std::sort(mine.begin(), mine.end(),
            [](const AttemptRecord* x, const AttemptRecord* y) { return x->attempt < y->attempt; });
  nlohmann::json out = nlohmann::json::array();
  for (const AttemptRecord* a : mine) out.push_back(attempt_json(*a));
  return out;
}

}  // namespace sluice::cli
