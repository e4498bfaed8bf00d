// Read-only commands: ps, psw, pss, psf, get, logs, wait. They open the store read-only, so
// they work from any terminal while a coordinator writes.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "attempt_view.hpp"
#include "commands.hpp"
#include "log_follow.hpp"
#include "nested_runs.hpp"
#include "run_backend.hpp"
#include "run_ref.hpp"
#include "sluice/engine/attempt_logs.hpp"
#include "sluice/engine/run_lock.hpp"
#include "task_view.hpp"

namespace sluice::cli {
namespace {

using nlohmann::json;

// A run the store calls running but whose coordinator died shows as "running (orphaned)":
// `sluice resume` finishes it.
std::string shown_state(RunStore& store, const RunRecord& r) {
  std::string s(to_string(r.state));
  if (is_terminal(r.state) || RunLock::is_held(store.run_dir(r.id))) return s;
  // A prepared run waits for `APP start RUN`: nothing has stopped.
  if (r.state == RunState::kSubmitted && is_prepared(store.run_dir(r.id)))
    return s + " (prepared: start it with APP start " + r.id + ")";
  s += " (orphaned)";
  return s;
}

// Who made the run; "-" for a run made before the store kept it.
std::string initiator_text(const RunRecord& r) {
  return r.initiator.empty() ? "-" : r.initiator;
}

json run_json(RunStore& store, const RunRecord& r) {
  return {{"id", r.id},
          {"workflow", r.workflow_id()},
          {"project", r.project},
          {"name", r.workflow},
          {"revision", r.revision},
          {"state", to_string(r.state)},
          {"coordinator_alive", RunLock::is_held(store.run_dir(r.id))},
          {"backend", r.backend},
          {"host", r.host},
          {"initiator", r.initiator},
          {"source", r.source_path},
          {"tasks", r.task_count},
          {"created_us", r.created_us},
          {"started_us", r.started_us},
          {"ended_us", r.ended_us}};
}

// `workflow`: only the runs of this workflow id (run_ref.hpp); "" lists every run.
int list_runs(const Globals& g, std::vector<RunState> states, const std::string& workflow) {
  std::unique_ptr<RunStore> store;
  if (auto s = RunStore::open(g.home, RunStore::Mode::kReadOnly); s) {
    store = std::move(*s);
  } else if (s.error().code == ErrorCode::kNotFound) {
    if (!workflow.empty()) no_workflows_here(g, workflow);
    if (g.json) std::printf("[]\n");
    return kExitOk;  // nothing has run here yet: an empty listing, not an error
  } else {
    fail(s.error());
  }
  auto runs = store->list_runs(states);
  if (!runs) fail(runs.error());
  if (!workflow.empty()) {
    const WorkflowRef only = resolve_workflow(*store, workflow);
    std::erase_if(*runs, [&](const RunRecord& r) {
      return !only.matches(r.project, r.workflow, r.revision);
    });
  }
  if (g.json) {
    json out = json::array();
    for (const auto& r : *runs) out.push_back(run_json(*store, r));
    std::printf("%s\n", out.dump(2).c_str());
    return kExitOk;
  }
  Table t({"RUN", "WORKFLOW", "STATE", "TASKS", "BACKEND", "INITIATOR", "CREATED", "DURATION"});
  for (const auto& r : *runs)
    t.add({r.id, r.workflow_id(), shown_state(*store, r), std::to_string(r.task_count), r.backend,
           initiator_text(r), format_time(r.created_us), format_span(r.started_us, r.ended_us)});
  t.print(stdout);
  return kExitOk;
}

// The filesystem cost of a run: every file and directory under its run directory (the
// budget a parallel filesystem's metadata server pays), and where its logs went.
json run_files_json(RunStore& store, const std::string& run_id) {
  namespace fs = std::filesystem;
  std::size_t inodes = 0, spools = 0, attempt_dirs = 0;
  const fs::path dir = store.run_dir(run_id);
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    ++inodes;
    const fs::path rel = it->path().lexically_relative(dir);
    auto part = rel.begin();
    if (part == rel.end()) continue;
    const std::string top = part->string();
    const std::size_t depth = static_cast<std::size_t>(std::distance(rel.begin(), rel.end()));
    if (top == "spools" && depth == 2) ++spools;
    if (top == "tasks" && depth == 3) ++attempt_dirs;
  }
  json out{{"inodes", inodes}, {"spools", spools}, {"attempt_dirs", attempt_dirs}};
  if (auto counts = store.log_counts(run_id); counts) out["attempts_with_logs"] = counts->first;
  return out;
}

int cmd_get(const Globals& g, const std::string& id, bool tree) {
  auto store = open_store(g, RunStore::Mode::kReadOnly);
  RunRecord run = find_run(*store, id);
  auto tasks = store->list_tasks(run.id);
  if (!tasks) fail(tasks.error());
  // Durations come from each task's latest attempt: its own start and end times.
  auto attempts = store->list_attempts(run.id);
  if (!attempts) fail(attempts.error());
  std::vector<const AttemptRecord*> latest(tasks->size(), nullptr);
  for (const auto& a : *attempts)
    if (a.task < latest.size() && (!latest[a.task] || latest[a.task]->attempt < a.attempt))
      latest[a.task] = &a;
  if (g.json) {
    json out = run_json(*store, run);
    json ts = json::array();
    for (const auto& t : *tasks) {
      ts.push_back({{"name", t.name},
                    {"group", t.group},
                    {"state", to_string(t.state)},
                    {"attempts", t.attempts},
                    {"exit_code", t.exit_code},
                    {"reason", t.reason},
                    {"started_us", t.started_us},
                    {"ended_us", t.ended_us}});
      // Dynamic children name the task whose attempt added them; declared tasks: null.
      ts.back()["parent"] = t.parent >= 0 ? json((*tasks)[t.parent].name) : json(nullptr);
      const AttemptRecord* a = latest[t.index];
      ts.back()["cached_from"] = a && a->host == "cache" && t.state == TaskState::kSucceeded
                                     ? json(a->reason)
                                     : json(nullptr);
      ts.back()["attempt_list"] = attempts_json(*attempts, t.index);  // every attempt on record
    }
    out["task_list"] = std::move(ts);
    out["files"] = run_files_json(*store, run.id);
    if (tree) out["nested_runs"] = nested_runs_json(nested_runs(*store, run.id));
    std::printf("%s\n", out.dump(2).c_str());
    return kExitOk;
  }
  std::map<TaskState, std::size_t> counts;
  for (const auto& t : *tasks) counts[t.state]++;
  std::string summary;
  for (auto& [s, n] : counts)
    summary += (summary.empty() ? "" : ", ") + std::to_string(n) + " " + std::string(to_string(s));
  std::printf(
      "run       %s\nworkflow  %s\nstate     %s\nbackend   %s on %s\ninitiator %s\ncreated   %s\n"
      "duration  %s\ntasks     %zu (%s)\n\n",
      run.id.c_str(), run.workflow_id().c_str(), shown_state(*store, run).c_str(),
      run.backend.c_str(), run.host.c_str(), initiator_text(run).c_str(),
      format_time(run.created_us).c_str(), format_span(run.started_us, run.ended_us).c_str(),
      tasks->size(), summary.c_str());
  // The PARENT column appears when attempts added children: it names who added each.
  const bool dynamic =
      std::any_of(tasks->begin(), tasks->end(), [](const TaskRecord& r) { return r.parent >= 0; });
  std::vector<std::string> header = {"TASK", "STATE", "ATTEMPTS", "DURATION", "EXIT", "REASON"};
  if (dynamic) header.insert(header.begin() + 1, "PARENT");
  Table t(header);
  for (const auto& task : *tasks) {
    const AttemptRecord* a = latest[task.index];
    const bool ended = a && is_terminal(a->state);
    const bool cached = a && a->host == "cache" && task.state == TaskState::kSucceeded;
    std::vector<std::string> row = {
        task.name,
        cached ? std::string("cached") : std::string(to_string(task.state)),
        std::to_string(task.attempts),
        a ? format_span(a->started_us, ended ? a->ended_us : 0) : "-",
        ended && a->exit_code >= 0 ? std::to_string(a->exit_code) : "-",
        cached ? a->reason : task.reason};
    if (dynamic) row.insert(row.begin() + 1, task.parent >= 0 ? (*tasks)[task.parent].name : "-");
    t.add(row);
  }
  t.print(stdout);
  if (tree) print_nested_runs(nested_runs(*store, run.id));
  return kExitOk;
}

struct LogsArgs {
  std::string run, task;
  unsigned attempt = 0;
  bool only_stdout = false, only_stderr = false;
  bool follow = false;
};

// Writes the attempt's `stream` to `to`; false when it has none.
bool print_log(RunStore& store, const OutputRef& ref, TaskId task, LogStream stream,
               std::FILE* to) {
  std::string text;
  auto found = read_attempt_log(store, ref.run, task, ref.task, ref.attempt, stream, text);
  if (!found) fail(found.error());
  std::fwrite(text.data(), 1, text.size(), to);
  std::fflush(to);
  return *found;
}

TaskId task_index(RunStore& store, const std::string& run_id, const std::string& name) {
  auto tasks = store.list_tasks(run_id);
  if (!tasks) fail(tasks.error());
  for (const TaskRecord& t : *tasks)
    if (t.name == name) return t.index;
  throw CliError(kExitBadInput, "no task '" + name + "' in run " + run_id);
}

int cmd_logs(const Globals& g, const LogsArgs& a) {
  auto store = open_store(g, RunStore::Mode::kReadOnly);
  RunRecord run = find_run(*store, a.run);
  auto tasks = store->list_tasks(run.id);
  if (!tasks) fail(tasks.error());
  const TaskRecord* task = &find_task(*tasks, run, a.task);
  if (task->attempts == 0) throw CliError(kExitBadInput, why_no_attempt(run, *task));
  const unsigned attempt = a.attempt ? a.attempt : task->attempts;
  if (attempt > task->attempts)
    throw CliError(kExitBadInput, "task '" + a.task + "' has " + std::to_string(task->attempts) +
                                      " attempt(s), not " + std::to_string(attempt));
  // A cache hit ran nothing: its output is the source attempt's, labelled as such.
  std::string label;
  const OutputRef ref = output_ref(*store, run.id, task->name, attempt, label);
  if (!label.empty())
    std::fprintf(stderr, "sluice: %s attempt %u was %s; its output:\n", task->name.c_str(), attempt,
                 label.c_str());
  std::fflush(stdout);
  // The source of a cache hit may be another run, where the task has another index.
  const TaskId index = ref.run == run.id && ref.task == task->name
                           ? task->index
                           : task_index(*store, ref.run, ref.task);
  if (a.follow) {
    follow_attempt_log(*store, ref.run, index, ref.task, ref.attempt, !a.only_stderr,
                       !a.only_stdout);
    return kExitOk;
  }
  // An attempt that printed nothing has no log at all (no file, no spool bytes): its
  // log is empty, which is not an error.
  if (!a.only_stderr) print_log(*store, ref, index, LogStream::kStdout, stdout);
  if (!a.only_stdout) print_log(*store, ref, index, LogStream::kStderr, stderr);
  return kExitOk;
}

// Blocks until the run ends. A run left "running" by a dead coordinator never ends by
// itself: that is reported (exit 1) instead of waiting forever.
int cmd_wait(const Globals& g, const std::string& id, double timeout_s) {
  auto store = open_store(g, RunStore::Mode::kReadOnly);
  RunRecord run = find_run(*store, id);
  const auto until = std::chrono::steady_clock::now() +
                     std::chrono::milliseconds(static_cast<std::int64_t>(timeout_s * 1000));
  auto delay = std::chrono::milliseconds(10);
  while (!is_terminal(run.state)) {
    if (run.state == RunState::kRunning && !RunLock::is_held(store->run_dir(run.id))) {
      // The coordinator may have written its final state and exited since the read.
      auto again = store->get_run(run.id);
      if (again && is_terminal(again->state)) {
        run = std::move(*again);
        break;
      }
      std::fprintf(stderr, "run %s is orphaned: its coordinator stopped (sluice resume %s)\n",
                   run.id.c_str(), run.id.c_str());
      return kExitFailed;
    }
    if (timeout_s > 0 && std::chrono::steady_clock::now() >= until) {
      std::fprintf(stderr, "run %s is still %s after %g s\n", run.id.c_str(),
                   std::string(to_string(run.state)).c_str(), timeout_s);
      return kExitFailed;
    }
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(200));
    auto r = store->get_run(run.id);
    if (!r) fail(r.error());
    run = std::move(*r);
  }
  std::printf("run %s %s\n", run.id.c_str(), std::string(to_string(run.state)).c_str());
  return run.state == RunState::kSucceeded ? kExitOk : kExitFailed;
}

}  // namespace

void add_query_commands(CLI::App& app, Globals& g) {
  struct Listing {
    const char* name;
    const char* help;
    std::vector<RunState> states;
  };
  static const Listing listings[] = {
      {"ps", "list running runs (--all: every run)", {RunState::kRunning}},
      {"psw", "list waiting runs (submitted, not started)", {RunState::kSubmitted}},
      {"pss", "list succeeded runs", {RunState::kSucceeded}},
      {"psf", "list failed and cancelled runs", {RunState::kFailed, RunState::kCancelled}},
  };
  static bool all = false;
  static std::string workflow;
  for (const auto& l : listings) {
    auto* cmd = app.add_subcommand(l.name, l.help);
    cmd->add_flag("--json", g.json, "machine-readable output");
    if (std::string(l.name) == "ps") cmd->add_flag("-a,--all", all, "every run, any state");
    cmd->add_option("--workflow", workflow,
                    "only the runs of this workflow: [PROJECT:]NAME[:REVISION]");
    cmd->callback([&g, &l] {
      g_exit_code = list_runs(g, all ? std::vector<RunState>{} : l.states, workflow);
    });
  }

  static std::string get_id, get_key;
  static bool get_tree = false;
  auto* get = app.add_subcommand(
      "get",
      "show a run and its tasks (`get RUN TASK`: one task, every attempt); inside a task, "
      "`get PARENT KEY` prints a parent's value");
  get->add_option("run", get_id,
                  "run id (or unique prefix) or workflow id; inside a task, a parent")
      ->required();
  get->add_option("key", get_key, "a task of the run (or, inside a task, the value to print)");
  get->add_flag("--json", g.json, "machine-readable output");
  get->add_flag("--tree", get_tree, "also the runs of sub-workflow tasks, with their states");
  get->callback([&g] {
    // Outside a task `get RUN TASK` shows that task; inside one it reads a parent's value.
    if (get_key.empty())
      g_exit_code = cmd_get(g, get_id, get_tree);
    else if (inside_task() || get_id.ends_with(".h5"))
      g_exit_code = cmd_get_input(get_id, get_key, g.json);
    else
      g_exit_code = cmd_get_task(g, get_id, get_key);
  });

  static LogsArgs la;
  auto* logs = app.add_subcommand("logs", "print a task's stdout (and stderr, to stderr)");
  logs->add_option("run", la.run, "run id (or unique prefix) or workflow id")->required();
  logs->add_option("task", la.task, "task name")->required();
  logs->add_option("--attempt", la.attempt, "attempt number (default: the latest)");
  logs->add_flag("--stdout", la.only_stdout, "only stdout");
  logs->add_flag("--stderr", la.only_stderr, "only stderr");
  logs->add_flag("--follow,-f", la.follow, "follow a running attempt until it ends");
  logs->callback([&g] { g_exit_code = cmd_logs(g, la); });

  static std::string wait_id;
  static double wait_timeout_s = 0;
  auto* wait = app.add_subcommand(
      "wait", "block until a run ends; exit 0 if it succeeded, 1 if it failed or was cancelled");
  wait->add_option("run", wait_id, "run id (or unique prefix) or workflow id")->required();
  wait->add_option("--timeout", wait_timeout_s, "give up after this many seconds (exit 1)");
  wait->callback([&g] { g_exit_code = cmd_wait(g, wait_id, wait_timeout_s); });
}

}  // namespace sluice::cli
