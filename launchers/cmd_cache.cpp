// `sluice run --dry-run`, `sluice cache list`, `sluice cache prune`: what the cache
// would do for a workflow, and managing its entries.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "sluice/artifacts.hpp"
#include "sluice/cache.hpp"
#include "sluice/duration.hpp"
#include "sluice/graph.hpp"
#include "sluice/loader.hpp"

namespace sluice::cli {
namespace {

using nlohmann::json;

struct Decision {
  bool cached = false;
  std::string why;
  std::string result_hash;  // of the cached attempt
  std::string artifact;     // the cached attempt's artifact ("" when none)
};

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

int cmd_dry_run(const Globals& g, const std::string& file, bool no_cache) {
  auto wf = load_workflow_file(file);
  if (!wf) {
    for (const auto& d : wf.error()) std::fprintf(stderr, "%s\n", d.format().c_str());
    throw CliError(kExitBadInput, "nothing was run");
  }
  // A home without a store has an empty cache: everything is new.
  std::unique_ptr<RunStore> store;
  if (auto s = RunStore::open(g.home, RunStore::Mode::kReadOnly); s) store = std::move(*s);
  Graph graph(*wf);
  std::vector<Decision> d(wf->tasks.size());
  for (TaskId t : graph.topological_order()) {
    const TaskSpec& spec = wf->tasks[t];
    Decision& out = d[t];
    if (no_cache) {
      out.why = "cache disabled for this run (--no-cache)";
      continue;
    }
    if (!spec.cache) {
      out.why = "cache disabled for this task (cache = false)";
      continue;
    }
    std::vector<std::string> inputs, rerun;
    for (TaskId p : spec.after) {
      if (!d[p].cached) rerun.push_back(wf->tasks[p].name);
      inputs.push_back(d[p].result_hash);
    }
    if (!rerun.empty()) {
      out.why = "input will be recomputed: " + join(rerun);
      continue;
    }
    // {inputs.P.K} values come from the cached parents' artifacts, as in a real run.
    std::vector<std::string> command;
    std::string shell, why;
    if (uses_input_placeholders(spec)) {
      std::vector<InputArtifact> parents;
      for (TaskId p : spec.after) parents.push_back({wf->tasks[p].name, d[p].artifact});
      bool ok = spec.shell.empty() || substitute_input_values(spec.shell, parents, shell, why);
      for (std::size_t i = 0; ok && i < spec.command.size(); ++i) {
        command.emplace_back();
        ok = substitute_input_values(spec.command[i], parents, command.back(), why);
      }
      if (!ok) {
        out.why = "will fail to start: " + why;
        continue;
      }
    } else {
      command = spec.command;
      shell = spec.shell;
    }
    const CacheKeyParts parts = cache_key_parts(spec, wf->base_dir, command, shell, inputs);
    if (!store) {
      out.why = "new task (nothing cached yet)";
      continue;
    }
    auto hit = store->find_cache(wf->project, parts.key());
    if (!hit) fail(hit.error());
    if (*hit) {
      auto actual = attempt_result_hash((*hit)->attempt_dir);
      if (actual && *actual == (*hit)->result_hash) {
        out.cached = true;
        out.result_hash = (*hit)->result_hash;
        const std::string artifact = artifact_path((*hit)->attempt_dir);
        if (std::FILE* f = std::fopen(artifact.c_str(), "rb")) {
          std::fclose(f);
          out.artifact = artifact;
        }
        out.why = "cached from run " + (*hit)->run_id + " (" + (*hit)->task + " attempt " +
                  std::to_string((*hit)->attempt) + ")";
      } else {
        out.why = "cache entry from run " + (*hit)->run_id +
                  " ignored: its artifact or outputs are missing or changed";
      }
      continue;
    }
    auto last = store->latest_cache(wf->project, wf->name, spec.name);
    if (!last) fail(last.error());
    if (!*last) {
      out.why = "new task (never ran successfully here)";
    } else {
      auto changed = parts.changed_since(CacheKeyParts::parse((*last)->parts));
      out.why = changed.empty() ? "changed since run " + (*last)->run_id
                                : join(changed) + " changed since run " + (*last)->run_id;
    }
  }

  std::size_t cached = 0;
  for (const auto& x : d) cached += x.cached;
  if (g.json) {
    json tasks = json::array();
    for (TaskId t = 0; t < d.size(); ++t)
      tasks.push_back({{"name", wf->tasks[t].name},
                       {"action", d[t].cached ? "cached" : "run"},
                       {"why", d[t].why}});
    std::printf("%s\n", json{{"workflow", wf->key()},
                             {"would_run", d.size() - cached},
                             {"cached", cached},
                             {"tasks", tasks}}
                            .dump(2)
                            .c_str());
    return kExitOk;
  }
  Table table({"TASK", "ACTION", "WHY"});
  for (TaskId t = 0; t < d.size(); ++t)
    table.add({wf->tasks[t].name, d[t].cached ? "cached" : "run", d[t].why});
  table.print(stdout);
  std::printf("\n%zu to run, %zu from the cache (dry run: nothing was run)\n", d.size() - cached,
              cached);
  return kExitOk;
}

void add_cache_commands(CLI::App& app, Globals& g) {
  auto* cache = app.add_subcommand("cache", "the cache of successful attempts (list, prune)");
  cache->require_subcommand(1);

  static std::string list_project;
  auto* list = cache->add_subcommand("list", "cache entries, newest first");
  list->add_option("--project", list_project, "only this project");
  list->add_flag("--json", g.json, "machine-readable output");
  list->callback([&g] {
    auto store = open_store(g, RunStore::Mode::kReadOnly);
    auto entries = store->list_cache(list_project);
    if (!entries) fail(entries.error());
    if (g.json) {
      json out = json::array();
      for (const auto& e : *entries)
        out.push_back({{"project", e.project},
                       {"workflow", e.workflow},
                       {"task", e.task},
                       {"key", e.key},
                       {"run", e.run_id},
                       {"attempt", e.attempt},
                       {"attempt_dir", e.attempt_dir},
                       {"result_hash", e.result_hash},
                       {"created_us", e.created_us}});
      std::printf("%s\n", out.dump(2).c_str());
      return;
    }
    Table table({"PROJECT", "WORKFLOW", "TASK", "RUN", "CREATED", "KEY"});
    for (const auto& e : *entries)
      table.add({e.project, e.workflow, e.task, e.run_id, format_time(e.created_us), e.key});
    table.print(stdout);
  });

  static std::string older_than, prune_project;
  auto* prune = cache->add_subcommand(
      "prune", "forget cache entries (artifacts stay with their runs; `sluice remove` deletes)");
  prune->add_option("--older-than", older_than, "only entries older than this (30d, 12h)");
  prune->add_option("--project", prune_project, "only this project");
  prune->callback([&g] {
    std::int64_t before = 0;
    if (!older_than.empty()) {
      auto age = parse_duration(older_than);
      if (!age) throw CliError(kExitBadInput, "--older-than: not a duration: " + older_than);
      before = now_us() - std::chrono::duration_cast<std::chrono::microseconds>(*age).count();
    }
    auto store = open_store(g, RunStore::Mode::kReadWrite);
    auto n = store->prune_cache(before, prune_project);
    if (!n) fail(n.error());
    std::printf("%zu cache entr%s removed\n", *n, *n == 1 ? "y" : "ies");
  });
}

}  // namespace sluice::cli
