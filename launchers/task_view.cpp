#include "task_view.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "attempt_view.hpp"

namespace sluice::cli {

bool inside_task() {
  auto set = [](const char* name) {
    const char* v = std::getenv(name);
    return v && *v;
  };
  return set("SLUICE_TASK") || set("SLUICE_OUTPUT");
}

std::string why_no_attempt(const RunRecord& run, const TaskRecord& task) {
  const std::string who = "task '" + task.name + "'";
  if (task.state == TaskState::kSkipped)
    return who + " was skipped" + (task.reason.empty() ? "" : ": " + task.reason);
  if (task.state == TaskState::kCancelled)
    return who + " was cancelled before it started" +
           (task.reason.empty() ? "" : ": " + task.reason);
  if (is_terminal(run.state))
    return who + " never ran (the run ended " + std::string(to_string(run.state)) + ")";
  return who + " has not started yet";
}

std::optional<CacheSource> cache_source(const AttemptRecord& a) {
  static const std::string head = "cached from run ";
  if (a.host != "cache" || !a.reason.starts_with(head)) return std::nullopt;
  const std::string rest = a.reason.substr(head.size());  // RUN (TASK attempt N)
  const auto open = rest.find(" ("), word = rest.rfind(" attempt ");
  if (open == std::string::npos || word == std::string::npos || word < open || !rest.ends_with(")"))
    return std::nullopt;
  CacheSource s;
  s.run = rest.substr(0, open);
  s.task = rest.substr(open + 2, word - open - 2);
  s.attempt = static_cast<std::uint32_t>(std::strtoul(rest.c_str() + word + 9, nullptr, 10));
  if (s.attempt == 0) return std::nullopt;
  return s;
}

std::string output_dir(RunStore& store, const std::string& run_id, const std::string& task,
                       std::uint32_t attempt, std::string& label) {
  const OutputRef ref = output_ref(store, run_id, task, attempt, label);
  return store.attempt_dir(ref.run, ref.task, ref.attempt);
}

OutputRef output_ref(RunStore& store, const std::string& run_id, const std::string& task,
                     std::uint32_t attempt, std::string& label) {
  std::string run = run_id, name = task;
  for (int step = 0; step < 16; ++step) {
    auto tasks = store.list_tasks(run);
    if (!tasks) break;
    auto t = std::find_if(tasks->begin(), tasks->end(),
                          [&](const TaskRecord& r) { return r.name == name; });
    if (t == tasks->end()) break;
    auto attempts = store.list_attempts(run, t->index);
    if (!attempts) break;
    auto a = std::find_if(attempts->begin(), attempts->end(),
                          [&](const AttemptRecord& r) { return r.attempt == attempt; });
    if (a == attempts->end()) break;
    auto src = cache_source(*a);
    if (!src) break;
    if (label.empty()) label = a->reason;
    run = src->run;
    name = src->task;
    attempt = src->attempt;
  }
  return {run, name, attempt};
}

int cmd_get_task(const Globals& g, const std::string& run_id, const std::string& task_name) {
  auto store = open_store(g, RunStore::Mode::kReadOnly);
  const RunRecord run = find_run(*store, run_id);
  auto tasks = store->list_tasks(run.id);
  if (!tasks) fail(tasks.error());
  const TaskRecord& task = find_task(*tasks, run, task_name);
  auto attempts = store->list_attempts(run.id, task.index);
  if (!attempts) fail(attempts.error());
  const nlohmann::json list = attempts_json(*attempts, task.index);
  if (g.json) {
    const nlohmann::json out = {{"run", run.id},
                                {"name", task.name},
                                {"group", task.group},
                                {"state", std::string(to_string(task.state))},
                                {"attempts", task.attempts},
                                {"exit_code", task.exit_code},
                                {"reason", task.reason},
                                {"attempt_list", list}};
    std::printf("%s\n", out.dump(2).c_str());
    return kExitOk;
  }
  std::printf("run       %s\ntask      %s\nstate     %s\n", run.id.c_str(), task.name.c_str(),
              std::string(to_string(task.state)).c_str());
  if (!task.reason.empty()) std::printf("reason    %s\n", task.reason.c_str());
  std::printf("attempts  %u\n\n", task.attempts);
  if (list.empty()) {
    std::printf("no attempt: %s\n", why_no_attempt(run, task).c_str());
    return kExitOk;
  }
  Table t({"ATTEMPT", "STATE", "EXIT", "HOST", "SLURM JOB", "STARTED", "DURATION", "REASON"});
  for (const auto& a : list) {
    const std::int64_t begin = a["started_us"], end = a["ended_us"];
    t.add({std::to_string(a["attempt"].get<unsigned>()), a["state"].get<std::string>(),
           a["exit_code"].is_null() ? "-" : std::to_string(a["exit_code"].get<int>()),
           a["host"].get<std::string>().empty() ? "-" : a["host"].get<std::string>(),
           a["slurm_job"].is_null() ? "-" : a["slurm_job"].get<std::string>(), format_time(begin),
           format_span(begin, end), a["reason"].get<std::string>()});
  }
  t.print(stdout);
  return kExitOk;
}

}  // namespace sluice::cli
