// `sluice run --dry-run`, `sluice cache list`, `sluice cache prune`: what the cache
// would do for a workflow, and managing its entries.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "commands.hpp"
#include "dry_run_reason.hpp"
#include "sluice/duration.hpp"
#include "sluice/engine/artifacts.hpp"
#include "sluice/engine/cache_key.hpp"
#include "sluice/engine/child_request.hpp"
#include "sluice/engine/loader.hpp"

namespace sluice::cli {
namespace {

using nlohmann::json;

struct Decision {
  bool cached = false;
  std::string why;
  std::string result_hash;            // of the cached attempt
  std::string artifact;               // the cached attempt's artifact ("" when none)
  std::string source_dir;             // the cached attempt's directory
  std::shared_ptr<const Map> values;  // the cached attempt's packed values (null: none)
};

// The children a cached attempt asked for, which a real run replays. A request that
// cannot be read is left out with a warning: the real run would fail the task.
std::vector<ChildRequest> recorded_children(const Workflow& wf, const Decision& d) {
  std::vector<ChildRequest> out;
  auto files = list_child_requests(d.source_dir);
  if (!files) return out;
  for (const std::string& file : *files) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    auto parsed = parse_child_requests(text.str(), file, wf.base_dir);
    if (!parsed) {
      std::fprintf(stderr, "sluice: warning: %s\n", parsed.error().front().format().c_str());
      continue;
    }
    for (ChildRequest& r : *parsed) out.push_back(std::move(r));
  }
  return out;
}

// Why an entry can no longer serve a run ("" when it can): its run was removed, or its
// run's directory is gone, attempt directory and all (lookup_cache() refuses both). An
// attempt that wrote no file has no directory of its own (scratch folders): only the
// run's directory tells. `runs` holds the ids of the runs in the store.
std::string unusable_reason(const CacheEntry& e, const std::set<std::string>& runs) {
  if (!runs.count(e.run_id)) return "run " + e.run_id + " was removed";
  if (!cache_source_present(e)) return "its attempt directory is gone: " + e.attempt_dir;
  return "";
}

std::set<std::string> run_ids(RunStore& store) {
  auto runs = store.list_runs({});
  if (!runs) fail(runs.error());
  std::set<std::string> out;
  for (const auto& r : *runs) out.insert(r.id);
  return out;
}

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
  std::vector<Decision> d(wf->tasks.size());
  std::optional<ChangeExplainer> explainer;
  if (store) explainer.emplace(*store);
  auto decide = [&](TaskId t) {
    const TaskSpec& spec = wf->tasks[t];
    Decision& out = d[t];
    if (no_cache) {
      out.why = "cache disabled for this run (--no-cache)";
      return;
    }
    if (!spec.cache) {
      out.why = "cache disabled for this task (cache = false)";
      return;
    }
    std::vector<std::string> inputs, rerun;
    for (TaskId p : spec.after) {
      if (!d[p].cached) rerun.push_back(wf->tasks[p].name);
      inputs.push_back(d[p].result_hash);
    }
    if (!rerun.empty()) {
      out.why = "input will be recomputed: " + join(rerun);
      return;
    }
    // {inputs.P.K} values come from the cached parents' artifacts, as in a real run.
    std::vector<std::string> command;
    std::string shell, why;
    if (uses_input_placeholders(spec)) {
      std::vector<InputArtifact> parents;
      for (TaskId p : spec.after)
        parents.push_back({wf->tasks[p].name, d[p].artifact, d[p].values.get()});
      bool ok = spec.shell.empty() || substitute_input_values(spec.shell, parents, shell, why);
      for (std::size_t i = 0; ok && i < spec.command.size(); ++i) {
        command.emplace_back();
        ok = substitute_input_values(spec.command[i], parents, command.back(), why);
      }
      if (!ok) {
        out.why = "will fail to start: " + why;
        return;
      }
    } else {
      command = spec.command;
      shell = spec.shell;
    }
    const CacheKeyParts parts = cache_key_parts(spec, wf->base_dir, command, shell, inputs);
    if (!store) {
      out.why = "new task (nothing cached yet)";
      return;
    }
    auto hit = lookup_cache(*store, wf->project, parts.key());
    if (!hit) fail(hit.error());
    const CacheEntry& e = hit->entry;
    if (hit->status == CacheLookup::Status::kHit) {
      out.cached = true;
      out.result_hash = e.result_hash;
      out.source_dir = e.attempt_dir;
      out.values = hit->values;
      const std::string artifact = artifact_path(e.attempt_dir);
      if (std::FILE* f = std::fopen(artifact.c_str(), "rb")) {
        std::fclose(f);
        out.artifact = artifact;
      }
      out.why = "cached from run " + e.run_id + " (" + e.task + " attempt " +
                std::to_string(e.attempt) + ")";
      return;
    }
    if (hit->status == CacheLookup::Status::kStale) {
      out.why = "cache entry from run " + e.run_id +
                " ignored: its artifact or outputs are missing or changed";
      return;
    }
    auto last = store->latest_cache(wf->project, wf->name, spec.name);
    if (!last) fail(last.error());
    if (!*last) {
      out.why = "new task (never ran successfully here)";
    } else {
      auto changed = explainer->explain(spec, (*last)->run_id,
                                        parts.changed_since(CacheKeyParts::parse((*last)->parts)));
      out.why = changed.empty() ? "changed since run " + (*last)->run_id
                                : join(changed) + " changed since run " + (*last)->run_id;
    }
  };
  // Dependency order, growing as in a real run: a cached task's recorded children are
  // replayed (each decided in turn), and the task they run before waits for them.
  std::vector<std::vector<TaskId>> downstream(wf->tasks.size());
  std::vector<std::size_t> waiting_for(wf->tasks.size());
  std::vector<TaskId> ready;
  for (TaskId t = 0; t < wf->tasks.size(); ++t) {
    waiting_for[t] = wf->tasks[t].after.size();
    for (TaskId p : wf->tasks[t].after) downstream[p].push_back(t);
    if (waiting_for[t] == 0) ready.push_back(t);
  }
  auto decided = [&](TaskId t) {
    if (d[t].cached) {
      for (ChildRequest& r : recorded_children(*wf, d[t])) {
        const TaskId child = wf->tasks.size();
        r.spec.after = {t};
        wf->index.emplace(r.spec.name, child);
        wf->tasks.push_back(std::move(r.spec));
        d.emplace_back();
        downstream.emplace_back();
        waiting_for.push_back(0);
        ready.push_back(child);
        if (auto b = wf->index.find(r.before); !r.before.empty() && b != wf->index.end()) {
          wf->tasks[b->second].after.push_back(child);
          downstream[child].push_back(b->second);
          ++waiting_for[b->second];
        }
      }
    }
    for (TaskId c : downstream[t])
      if (--waiting_for[c] == 0) ready.push_back(c);
  };
  while (!ready.empty()) {
    const TaskId t = ready.back();
    ready.pop_back();
    decide(t);
    decided(t);
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
    const std::set<std::string> runs = run_ids(*store);
    if (g.json) {
      json out = json::array();
      for (const auto& e : *entries) {
        const std::string why = unusable_reason(e, runs);
        out.push_back({{"project", e.project},
                       {"workflow", e.workflow},
                       {"task", e.task},
                       {"key", e.key},
                       {"run", e.run_id},
                       {"attempt", e.attempt},
                       {"attempt_dir", e.attempt_dir},
                       {"result_hash", e.result_hash},
                       {"created_us", e.created_us},
                       {"usable", why.empty()},
                       {"unusable_because", why.empty() ? json(nullptr) : json(why)}});
      }
      std::printf("%s\n", out.dump(2).c_str());
      return;
    }
    Table table({"PROJECT", "WORKFLOW", "TASK", "RUN", "CREATED", "USABLE", "KEY"});
    std::size_t unusable = 0;
    for (const auto& e : *entries) {
      const std::string why = unusable_reason(e, runs);
      unusable += !why.empty();
      table.add({e.project, e.workflow, e.task, e.run_id, format_time(e.created_us),
                 why.empty() ? "yes" : "no: " + why, e.key});
    }
    table.print(stdout);
    if (unusable)
      std::printf("\n%zu entr%s unusable (sluice cache prune --unusable forgets them)\n", unusable,
                  unusable == 1 ? "y is" : "ies are");
  });

  static std::string older_than, prune_project;
  static bool prune_unusable = false;
  auto* prune = cache->add_subcommand(
      "prune", "forget cache entries (artifacts stay with their runs; `sluice remove` deletes)");
  prune->add_option("--older-than", older_than, "only entries older than this (30d, 12h)");
  prune->add_option("--project", prune_project, "only this project");
  prune->add_flag("--unusable", prune_unusable,
                  "only entries whose run was removed or whose attempt directory is gone");
  prune->callback([&g] {
    std::int64_t before = 0;
    if (!older_than.empty()) {
      auto age = parse_duration(older_than);
      if (!age) throw CliError(kExitBadInput, "--older-than: not a duration: " + older_than);
      before = now_us() - std::chrono::duration_cast<std::chrono::microseconds>(*age).count();
    }
    auto store = open_store(g, RunStore::Mode::kReadWrite);
    if (prune_unusable) {
      auto entries = store->list_cache(prune_project);
      if (!entries) fail(entries.error());
      const std::set<std::string> runs = run_ids(*store);
      std::vector<CacheEntry> gone;
      for (auto& e : *entries)
        if ((before == 0 || e.created_us < before) && !unusable_reason(e, runs).empty())
          gone.push_back(std::move(e));
      auto n = store->forget_cache(gone);
      if (!n) fail(n.error());
      std::printf("%zu unusable cache entr%s removed\n", *n, *n == 1 ? "y" : "ies");
      return;
    }
    auto n = store->prune_cache(before, prune_project);
    if (!n) fail(n.error());
    std::printf("%zu cache entr%s removed\n", *n, *n == 1 ? "y" : "ies");
  });
}

}  // namespace sluice::cli
