// `sluice workflows`: the workflow definitions the store knows, one line per revision
// (project:workflow:revision), from TOML files and from C++ programs alike.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>

#include "commands.hpp"
#include "run_ref.hpp"

namespace sluice::cli {
namespace {

using nlohmann::json;

int cmd_workflows(const Globals& g, const std::string& filter) {
  auto store = RunStore::open(g.home, RunStore::Mode::kReadOnly);
  if (!store && store.error().code == ErrorCode::kNotFound) {  // nothing ran here yet
    if (!filter.empty()) no_workflows_here(g, filter);
    if (g.json) std::printf("[]\n");
    return kExitOk;
  }
  if (!store) fail(store.error());
  // A wrong project, name or revision is an error naming what exists, not an empty table.
  std::optional<WorkflowRef> only;
  if (!filter.empty()) only = resolve_workflow(**store, filter);
  auto all = (*store)->list_workflows();
  if (!all) fail(all.error());
  json out = json::array();
  Table table({"WORKFLOW", "HASH", "KIND", "RUNS", "CREATED", "SOURCE"});
  for (const WorkflowRecord& w : *all) {
    if (only && !only->matches(w.project, w.name, w.revision)) continue;
    const char* kind = w.sdk ? "c++" : "toml";
    out.push_back({{"id", w.id()},
                   {"project", w.project},
                   {"name", w.name},
                   {"revision", w.revision},
                   {"content_hash", w.content_hash},
                   {"kind", kind},
                   {"runs", w.runs},
                   {"created_us", w.created_us},
                   {"source_path", w.source_path}});
    table.add({w.id(), w.content_hash, kind, std::to_string(w.runs), format_time(w.created_us),
               w.source_path.empty() ? "-" : w.source_path});
  }
  if (g.json) {
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    table.print(stdout);
  }
  return kExitOk;
}

}  // namespace

void add_workflows_commands(CLI::App& app, Globals& g) {
  static std::string filter;
  auto* cmd = app.add_subcommand("workflows", "workflow definitions and their revisions");
  cmd->add_option("workflow", filter, "only this workflow: [PROJECT:]NAME[:REVISION]");
  cmd->add_flag("--json", g.json, "machine-readable output");
  cmd->callback([&g] { g_exit_code = cmd_workflows(g, filter); });
}

}  // namespace sluice::cli
