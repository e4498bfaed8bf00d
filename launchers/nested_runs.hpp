// Runs of sub-workflow tasks, found from the outer run: each sub-workflow attempt keeps
// its inner run in a home of its own, ATTEMPT_DIR/sub/home (loader.cpp's script), so
// the outer store never names it. `get OUTER --tree` lists them and their ids resolve
// from the outer home.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "sluice/engine/store.hpp"

namespace sluice::cli {

struct NestedRun {
  std::string task;  // the outer run's sub-workflow task
  std::uint32_t attempt = 0;
  std::string home;  // ATTEMPT_DIR/sub/home
  RunRecord run;     // the inner run, as its own store records it
  int depth = 1;     // 1: a run of OUTER's task; 2: of an inner run's task; …
};

// The inner runs of `run_id`'s sub-workflow tasks, and theirs (at most 8 levels), each
// followed by its own inner runs. Homes that cannot be read are left out.
std::vector<NestedRun> nested_runs(const RunStore& store, const std::string& run_id);

// The nested home (under any run of `home`) that holds run `id_or_prefix`, with the
// outer run and task it belongs to; nullopt when none does. Reads only the directories
// of sub-workflow attempts, and only when called: after the outer store missed.
struct NestedHome {
  std::string home, outer_run, task;
};
std::optional<NestedHome> find_nested_home(const std::string& home,
                                           const std::string& id_or_prefix);

// `get OUTER --tree`: the nested runs as a table (TASK, ATTEMPT, RUN, WORKFLOW, STATE,
// HOME), indented by depth; nothing when there are none.
void print_nested_runs(const std::vector<NestedRun>& runs);
nlohmann::json nested_runs_json(const std::vector<NestedRun>& runs);

// After parsing: when the parsed command reads a run (get, logs, results, artifacts,
// report, wait) whose id the home's store does not know but a nested home does, points
// g.home there and says so on stderr. Not inside a task (`get PARENT KEY`).
void follow_nested_run(CLI::App& app, Globals& g);

}  // namespace sluice::cli
