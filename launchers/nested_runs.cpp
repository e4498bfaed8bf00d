#include "nested_runs.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "task_view.hpp"

namespace sluice::cli {
namespace {

namespace fs = std::filesystem;
constexpr int kMaxDepth = 8;  // as the loader's limit on sub-workflows in sub-workflows

struct SubHome {
  std::string task;
  std::uint32_t attempt = 0;
  std::string home;
};

// RUN_DIR/tasks/TASK/ATTEMPT/sub/home directories that hold a store, in task and
// attempt order.
std::vector<SubHome> sub_homes(const std::string& run_dir) {
  std::vector<SubHome> out;
  std::error_code ec;
  for (fs::directory_iterator t(run_dir + "/tasks", ec), end; !ec && t != end; t.increment(ec)) {
    std::error_code ec2;
    for (fs::directory_iterator a(t->path(), ec2); !ec2 && a != end; a.increment(ec2)) {
      const fs::path home = a->path() / "sub" / "home";
      std::error_code ec3;
      if (!fs::exists(home / "store.db", ec3)) continue;
      const std::string n = a->path().filename().string();
      out.push_back({t->path().filename().string(),
                     static_cast<std::uint32_t>(std::strtoul(n.c_str(), nullptr, 10)),
                     home.string()});
    }
  }
  std::sort(out.begin(), out.end(), [](const SubHome& x, const SubHome& y) {
    return x.task != y.task ? x.task < y.task : x.attempt < y.attempt;
  });
  return out;
}

void collect(const std::string& run_dir, int depth, std::vector<NestedRun>& out) {
  if (depth > kMaxDepth) return;
  for (const SubHome& s : sub_homes(run_dir)) {
    auto inner = RunStore::open(s.home, RunStore::Mode::kReadOnly);
    if (!inner) continue;
    auto runs = (*inner)->list_runs({});
    if (!runs) continue;
    for (auto& r : *runs) {
      const std::string dir = (*inner)->run_dir(r.id);
      out.push_back({s.task, s.attempt, s.home, std::move(r), depth});
      collect(dir, depth + 1, out);
    }
  }
}

}  // namespace

std::vector<NestedRun> nested_runs(const RunStore& store, const std::string& run_id) {
  std::vector<NestedRun> out;
  collect(store.run_dir(run_id), 1, out);
  return out;
}

std::optional<NestedHome> find_nested_home(const std::string& home,
                                           const std::string& id_or_prefix) {
  auto store = RunStore::open(home, RunStore::Mode::kReadOnly);
  if (!store) return std::nullopt;
  auto runs = (*store)->list_runs({});
  if (!runs) return std::nullopt;
  for (const auto& outer : *runs)
    for (const NestedRun& n : nested_runs(**store, outer.id))
      if (n.run.id.starts_with(id_or_prefix)) {
        auto inner = RunStore::open(n.home, RunStore::Mode::kReadOnly);
        if (inner && (*inner)->resolve_run_id(id_or_prefix))
          return NestedHome{n.home, outer.id, n.task};
      }
  return std::nullopt;
}

void print_nested_runs(const std::vector<NestedRun>& runs) {
  if (runs.empty()) return;
  std::printf("\nsub-workflow runs (read them with --home HOME, or by id from this home)\n");
  Table t({"TASK", "ATTEMPT", "RUN", "WORKFLOW", "STATE", "HOME"});
  for (const NestedRun& n : runs)
    t.add({std::string(2 * static_cast<std::size_t>(n.depth - 1), ' ') + n.task,
           std::to_string(n.attempt), n.run.id, n.run.workflow_id(),
           std::string(to_string(n.run.state)), n.home});
  t.print(stdout);
}

nlohmann::json nested_runs_json(const std::vector<NestedRun>& runs) {
  nlohmann::json out = nlohmann::json::array();
  for (const NestedRun& n : runs)
    out.push_back({{"task", n.task},
                   {"attempt", n.attempt},
                   {"depth", n.depth},
                   {"id", n.run.id},
                   {"workflow", n.run.workflow_id()},
                   {"state", std::string(to_string(n.run.state))},
                   {"home", n.home}});
  return out;
}

void follow_nested_run(CLI::App& app, Globals& g) {
  static const char* const kReaders[] = {"get", "logs", "results", "artifacts", "report", "wait"};
  CLI::App* cmd = nullptr;
  for (CLI::App* sub : app.get_subcommands())
    for (const char* name : kReaders)
      if (sub->get_name() == name) cmd = sub;
  if (!cmd || inside_task()) return;
  const CLI::Option* opt = cmd->get_option_no_throw("run");
  if (!opt || opt->count() == 0) return;
  const std::string id = opt->as<std::string>();
  {
    auto store = RunStore::open(g.home, RunStore::Mode::kReadOnly);
    if (!store) return;  // the command reports it
    auto found = (*store)->resolve_run_id(id);
    if (found || found.error().code != ErrorCode::kNotFound) return;
  }
  if (auto nested = find_nested_home(g.home, id)) {
    std::fprintf(stderr, "sluice: run %s is a sub-workflow run (task '%s' of run %s), in %s\n",
                 id.c_str(), nested->task.c_str(), nested->outer_run.c_str(), nested->home.c_str());
    g.home = nested->home;
  }
}

}  // namespace sluice::cli
