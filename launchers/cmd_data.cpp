// Data commands: `sluice put` / `sluice get PARENT KEY` inside a task (they touch only
// files: the attempt's artifact and its parents'), and `sluice results` / `sluice
// artifacts` to read a run's outputs from anywhere.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "commands.hpp"
#include "sluice/engine/artifacts.hpp"
#include "sluice/engine/graph.hpp"
#include "sluice/engine/hdf5_codec.hpp"
#include "sluice/engine/loader.hpp"
#include "sluice/engine/results_file.hpp"
#include "sluice/engine/sdk_definition.hpp"
#include "sluice/function_args.hpp"
#include "sluice/value_json.hpp"

namespace sluice::cli {
namespace {

using nlohmann::json;

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// What the user typed as the forced type; exit 2 when it does not fit.
Value typed(const std::string& text, const std::string& type) {
  auto v = parse_typed(text, type);
  if (!v) throw CliError(kExitBadInput, v.error().message);
  return std::move(*v);
}

struct PutArgs {
  std::string key, value, type = "auto", file, output;
};

// Rewrites the artifact with the new key added (or replaced), as the coordinator merges a
// results file. Each put is atomic: the file is rebuilt beside the old one and renamed.
int cmd_put(const PutArgs& a) {
  std::string path = a.output.empty() ? env_or_empty("SLUICE_OUTPUT") : a.output;
  if (path.empty())
    throw CliError(kExitBadInput,
                   "sluice put runs inside a task (SLUICE_OUTPUT is not set); use --output FILE");
  Value value;
  if (!a.file.empty()) {
    std::ifstream in(a.file, std::ios::binary);
    if (!in) throw CliError(kExitBadInput, "cannot read " + a.file);
    std::stringstream ss;
    ss << in.rdbuf();
    value = a.type == "auto" ? parse_file_contents(ss.str()) : typed(ss.str(), a.type);
  } else {
    value = typed(a.value, a.type);
  }
  // Inside a task, a small value is appended to the results file and packed by the
  // coordinator (no file of its own: docs/artifacts.md); a big one, or --output, is
  // written into the artifact file.
  const std::string results = env_or_empty("SLUICE_RESULTS");
  const bool nul_string = value.type() == Value::Type::kString &&
                          value.get<std::string>().find('\0') != std::string::npos;
  if (a.output.empty() && !results.empty() && !nul_string && a.key != "." &&
      a.key.find_first_of("/ \t\r\n") == std::string::npos) {
    std::string bytes;
    append_value_bytes(value, bytes);
    if (bytes.size() <= kMaxPackedValueBytes) {
      if (auto r = append_packed_value(results, a.key, value); !r) fail(r.error());
      return kExitOk;
    }
  }
  Map one;
  one.insert_or_assign(a.key, std::move(value));
  if (auto r = merge_into_artifact(one, path); !r) fail(r.error());
  return kExitOk;
}

}  // namespace

// `sluice get PARENT KEY`: a parent's value, from SLUICE_INPUT_<PARENT> (or a path).
int cmd_get_input(const std::string& parent, const std::string& key, bool as_json) {
  std::string path = env_or_empty(input_env_name(parent).c_str());
  if (path.empty() && parent.size() > 3 && parent.ends_with(".h5")) path = parent;
  if (path.empty()) {
    std::string known = env_or_empty("SLUICE_INPUTS");
    throw CliError(kExitBadInput,
                   "this task has no input from '" + parent + "'" +
                       (known.empty() ? " (it has no inputs)" : " (its inputs: " + known + ")"));
  }
  // A packed parent: its group in a segment file (docs/artifacts.md).
  const std::string group = env_or_empty((input_env_name(parent) + "_GROUP").c_str());
  auto reader = ArtifactReader::open(path, group);
  if (!reader) fail(reader.error());
  auto value = reader->get(key);
  if (!value) fail(value.error());
  std::printf("%s\n", as_json ? to_json(*value).dump().c_str() : to_text(*value).c_str());
  return kExitOk;
}

// `sluice inputs [KEY]`: every input artifact (or its KEY), in input order, one process
// for a reduce over thousands of parents.
int cmd_inputs(const std::string& key, bool as_json) {
  std::string list = env_or_empty("SLUICE_INPUTS");
  if (!list.empty() && list[0] == '@') {
    // An unreadable list is an error, never an empty one: a reduce would sum nothing.
    std::ifstream in(list.substr(1));
    std::stringstream ss;
    if (!in || !(ss << in.rdbuf()))
      throw CliError(kExitInternal,
                     "sluice inputs: cannot read the list of inputs in " + list.substr(1));
    list = ss.str();
  }
  json out = json::array();
  std::size_t start = 0;
  while (start < list.size()) {
    std::size_t end = list.find(':', start);
    if (end == std::string::npos) end = list.size();
    const std::string path = list.substr(start, end - start);
    start = end + 1;
    if (path.empty()) continue;
    if (key.empty()) {
      if (as_json)
        out.push_back(path);
      else
        std::printf("%s\n", path.c_str());
      continue;
    }
    // PATH#/GROUP: a packed parent's group in a segment file.
    const std::size_t hash = path.rfind("#/");
    auto reader = hash == std::string::npos
                      ? ArtifactReader::open(path)
                      : ArtifactReader::open(path.substr(0, hash), path.substr(hash + 1));
    if (!reader) fail(reader.error());
    auto value = reader->get(key);
    if (!value) fail(value.error());
    if (as_json)
      out.push_back(to_json(*value));
    else
      std::printf("%s\n", to_text(*value).c_str());
  }
  if (as_json) std::printf("%s\n", out.dump().c_str());
  return kExitOk;
}

namespace {

struct ResultsArgs {
  std::string run, task;
  bool wait = false;
  double timeout_s = 0;
};

std::string short_text(const Value& v) {
  if (const auto* a = v.get_if<NdArray>(); a && a->size() > 16) return describe(v);
  std::string s = to_text(v);
  for (char& c : s)
    if (c == '\n') c = ';';
  if (s.size() > 80) return describe(v);
  return s;
}

int cmd_results(const Globals& g, const ResultsArgs& a) {
  auto store = open_store(g, RunStore::Mode::kReadOnly);
  RunRecord run = find_run(*store, a.run);
  const auto until = std::chrono::steady_clock::now() +
                     std::chrono::milliseconds(static_cast<long long>(a.timeout_s * 1000));
  while (!is_terminal(run.state)) {
    if (!a.wait)
      throw CliError(kExitFailed, "run " + run.id + " is still " +
                                      std::string(to_string(run.state)) +
                                      "; use --wait to block until it ends");
    if (a.timeout_s > 0 && std::chrono::steady_clock::now() > until)
      throw CliError(kExitFailed, "run " + run.id + " did not end within the timeout");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    run = find_run(*store, run.id);
  }
  auto tasks = store->list_tasks(run.id);
  if (!tasks) fail(tasks.error());
  // Final tasks: those no other task depends on (the DAG's sinks).
  std::vector<const TaskRecord*> chosen;
  if (!a.task.empty()) {
    chosen.push_back(&find_task(*tasks, run, a.task));
  } else {
    auto text = store->run_definition(run.id);
    if (!text) fail(text.error());
    LoadOptions lo;
    lo.check_executables = false;
    // A workflow built in C++ (sdk.hpp) is stored in its own format.
    auto wf = is_sdk_definition(*text)
                  ? load_sdk_definition(*text, run.base_dir).map_error([](const Error& e) {
                      return Diagnostics{Diagnostic{"", {}, e.message}};
                    })
                  : load_workflow_text(*text, run.source_path, run.base_dir, lo);
    if (!wf)
      throw CliError(kExitInternal, "the stored definition of run " + run.id + " no longer loads");
    Graph graph(*wf);
    for (const auto& t : *tasks)
      if (t.index < graph.size() && graph.children(t.index).empty()) chosen.push_back(&t);
  }
  json out = json::object();
  Table table({"TASK", "KEY", "VALUE"});
  for (const TaskRecord* t : chosen) {
    json values = json::object();
    if (t->state == TaskState::kSucceeded) {
      const std::string path = artifact_path(store->attempt_dir(run.id, t->name, t->attempts));
      auto packed = store->attempt_values(run.id, t->index, t->attempts);
      if (!packed) fail(packed.error());
      if (*packed) {
        for (const auto& [k, v] : **packed) {
          values[k] = to_json(v);
          table.add({t->name, k, short_text(v)});
        }
      } else if (FILE* f = std::fopen(path.c_str(), "rb")) {
        std::fclose(f);
        auto reader = ArtifactReader::open(path);
        if (!reader) fail(reader.error());
        auto all = reader->get_all();
        if (!all) fail(all.error());
        for (const auto& [k, v] : *all) {
          values[k] = to_json(v);
          table.add({t->name, k, short_text(v)});
        }
      }
    } else {
      table.add({t->name, "-", std::string(to_string(t->state)) + ": " + t->reason});
    }
    out[t->name] = std::move(values);
  }
  if (g.json) {
    json doc = {{"run", run.id}, {"state", to_string(run.state)}, {"results", std::move(out)}};
    std::printf("%s\n", doc.dump(2).c_str());
  } else {
    std::printf("run %s %s\n", run.id.c_str(), std::string(to_string(run.state)).c_str());
    table.print(stdout);
  }
  return run.state == RunState::kSucceeded ? kExitOk : kExitFailed;
}

// An attempt's packed values (in the store; shown in run.h5 as /TASK/KEY), with the
// attempt's provenance from its record.
int show_packed(const Globals& g, RunStore& store, const RunRecord& run, const TaskRecord& task,
                std::uint32_t attempt, const Map& values, const std::string& where) {
  // The task's version, from the stored definition (the provenance names name@version).
  std::string version = "1";
  if (auto text = store.run_definition(run.id)) {
    LoadOptions lo;
    lo.check_executables = false;
    auto wf = is_sdk_definition(*text)
                  ? load_sdk_definition(*text, run.base_dir).map_error([](const Error& e) {
                      return Diagnostics{Diagnostic{"", {}, e.message}};
                    })
                  : load_workflow_text(*text, run.source_path, run.base_dir, lo);
    if (wf && task.index < wf->tasks.size()) version = wf->tasks[task.index].version;
  }
  json keys = json::array();
  Table table({"KEY", "TYPE", "SIZE"});
  for (const auto& [k, v] : values) {
    std::uint64_t bytes = 0;
    if (const auto* a = v.get_if<NdArray>()) bytes = a->nbytes();
    if (v.type() == Value::Type::kInt || v.type() == Value::Type::kDouble) bytes = 8;
    if (v.type() == Value::Type::kBool) bytes = 1;
    keys.push_back({{"key", k}, {"type", describe(v)}, {"bytes", bytes}});
    table.add({k, describe(v), bytes > 0 ? std::to_string(bytes) : "-"});
  }
  Map prov;
  if (auto attempts = store.list_attempts(run.id, task.index)) {
    for (const AttemptRecord& a : *attempts) {
      if (a.attempt != attempt) continue;
      // The names an artifact's root attributes use (docs/artifacts.md).
      prov.insert_or_assign("attempt", Value(std::int64_t{a.attempt}));
      prov.insert_or_assign("exit_status", Value(std::int64_t{a.exit_code}));
      prov.insert_or_assign("host", Value(a.host));
      prov.insert_or_assign("run_id", Value(run.id));
      prov.insert_or_assign("started_us", Value(std::int64_t{a.started_us}));
      prov.insert_or_assign("ended_us", Value(std::int64_t{a.ended_us}));
      prov.insert_or_assign("task", Value(task.name + "@" + version));
    }
  }
  if (g.json) {
    json doc = {{"path", where}, {"keys", keys}, {"packed", true}};
    doc["provenance"] = to_json(Value(prov));
    std::printf("%s\n", doc.dump(2).c_str());
    return kExitOk;
  }
  std::printf("%s (packed)\n\n", where.c_str());
  table.print(stdout);
  std::printf("\nprovenance\n");
  for (const auto& [k, v] : prov) std::printf("  %-18s %s\n", k.c_str(), to_text(v).c_str());
  return kExitOk;
}

int cmd_artifacts(const Globals& g, const std::string& run_id, const std::string& task_name,
                  unsigned attempt) {
  auto store = open_store(g, RunStore::Mode::kReadOnly);
  RunRecord run = find_run(*store, run_id);
  auto tasks = store->list_tasks(run.id);
  if (!tasks) fail(tasks.error());
  const TaskRecord* task = &find_task(*tasks, run, task_name);
  if (task->attempts == 0) throw CliError(kExitBadInput, "task '" + task_name + "' has not run");
  if (attempt > task->attempts)
    throw CliError(kExitBadInput, "task '" + task_name + "' has " + std::to_string(task->attempts) +
                                      " attempt(s), not " + std::to_string(attempt));
  const std::uint32_t which = attempt ? attempt : task->attempts;
  const std::string path = artifact_path(store->attempt_dir(run.id, task->name, which));
  auto packed = store->attempt_values(run.id, task->index, which);
  if (!packed) fail(packed.error());
  if (*packed)
    return show_packed(g, *store, run, *task, which, **packed,
                       store->run_dir(run.id) + "/run.h5#/" + task->name);
  // An attempt that failed after `sluice put`: its values are still in its results file.
  const std::string results =
      store->attempt_dir(run.id, task->name, which) + "/" + std::string(kResultsFile);
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    std::fclose(f);
  } else if (auto left = read_results(results)) {
    return show_packed(g, *store, run, *task, which, *left, results);
  }
  auto reader = ArtifactReader::open(path);
  if (!reader) fail(reader.error());
  json keys = json::array();
  Table table({"KEY", "TYPE", "SIZE"});
  for (const auto& k : reader->keys()) {
    auto info = reader->info(k);
    if (!info) fail(info.error());
    keys.push_back({{"key", k}, {"type", describe(*info)}, {"bytes", info->size_bytes}});
    // Strings, lists and maps are described without reading their data: no size to show.
    const bool sized = info->size_bytes > 0 || info->type == Value::Type::kArray;
    table.add({k, describe(*info), sized ? std::to_string(info->size_bytes) : "-"});
  }
  auto attrs = reader->attributes();
  if (g.json) {
    json doc = {{"path", path}, {"keys", keys}};
    doc["provenance"] = attrs ? to_json(Value(*attrs)) : json::object();
    std::printf("%s\n", doc.dump(2).c_str());
    return kExitOk;
  }
  std::printf("%s\n\n", path.c_str());
  table.print(stdout);
  if (attrs && !attrs->empty()) {
    std::printf("\nprovenance\n");
    for (const auto& [k, v] : *attrs) {
      std::string text = to_text(v);
      if (!text.empty() && text.back() == '\n') text.pop_back();
      std::printf("  %-12s %s\n", k.c_str(), text.c_str());
    }
  }
  return kExitOk;
}

}  // namespace

void add_data_commands(CLI::App& app, Globals& g) {
  static PutArgs pa;
  auto* put = app.add_subcommand("put", "store a value in this task's artifact (SLUICE_OUTPUT)");
  put->add_option("key", pa.key, "name of the value")->required();
  put->add_option("value", pa.value, "the value (type inferred unless --type)");
  put->add_option("--type", pa.type, "auto, int, float, bool, string or json");
  put->add_option("--file", pa.file, "read the value from a file (numbers: a 1-D/2-D array)");
  put->add_option("--output", pa.output, "artifact to write (default: $SLUICE_OUTPUT)");
  put->callback([put] {
    if (pa.file.empty() && put->count("value") == 0)
      throw CliError(kExitBadInput, "usage: sluice put KEY VALUE (or --file FILE)");
    g_exit_code = cmd_put(pa);
  });

  static std::string inputs_key;
  auto* inputs = app.add_subcommand(
      "inputs", "inside a task: every input artifact's path, or its KEY, one per line");
  inputs->add_option("key", inputs_key, "the value to print from each input");
  inputs->add_flag("--json", g.json, "one JSON array");
  inputs->callback([&g] { g_exit_code = cmd_inputs(inputs_key, g.json); });

  static ResultsArgs ra;
  auto* results = app.add_subcommand("results", "the outputs of a run's final tasks (or one task)");
  results->add_option("run", ra.run, "run id (or unique prefix) or workflow id")->required();
  results->add_option("task", ra.task, "only this task");
  results->add_flag("--wait", ra.wait, "block until the run ends");
  results->add_option("--timeout", ra.timeout_s, "with --wait: give up after this many seconds");
  results->add_flag("--json", g.json, "machine-readable output");
  results->callback([&g] { g_exit_code = cmd_results(g, ra); });

  static std::string art_run, art_task;
  static unsigned art_attempt = 0;
  auto* artifacts = app.add_subcommand("artifacts", "what a task's artifact holds");
  artifacts->add_option("run", art_run, "run id (or unique prefix) or workflow id")->required();
  artifacts->add_option("task", art_task, "task name")->required();
  artifacts->add_flag("--json", g.json, "machine-readable output");
  artifacts->add_option("--attempt", art_attempt, "attempt number (default: the latest)")
      ->check(CLI::PositiveNumber);
  artifacts->callback([&g] { g_exit_code = cmd_artifacts(g, art_run, art_task, art_attempt); });
}

}  // namespace sluice::cli
