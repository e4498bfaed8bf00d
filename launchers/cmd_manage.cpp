// Commands that change runs from outside their coordinator: cancel, remove, removeall.
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "commands.hpp"
#include "sluice/engine/backend_registry.hpp"
#include "sluice/engine/coordinator.hpp"
#include "sluice/engine/run_lock.hpp"

namespace sluice::cli {
namespace {

// A live coordinator is asked through a file in the run directory (it checks ~10×/s)
// and we wait for it to record the end. A run with no coordinator is cancelled here,
// under its lock: leftover attempts are killed and every unfinished task is marked.
int cmd_cancel(const Globals& g, const std::string& id) {
  auto store = open_store(g, RunStore::Mode::kReadWrite);
  RunRecord run = find_run(*store, id);
  if (is_terminal(run.state)) {
    std::printf("run %s already %s\n", run.id.c_str(), std::string(to_string(run.state)).c_str());
    return kExitOk;
  }
  const std::string dir = store->run_dir(run.id);
  auto lock = RunLock::acquire(dir);
  if (!lock) {
    std::ofstream(Coordinator::cancel_request_path(dir)) << "cancel\n";
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < give_up) {
      auto r = store->get_run(run.id);
      if (r && is_terminal(r->state)) {
        std::printf("run %s %s\n", run.id.c_str(), std::string(to_string(r->state)).c_str());
        return kExitOk;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    throw CliError(kExitInternal, "asked run " + run.id + " to cancel; it has not finished yet");
  }
  RunUpdate update;
  update.now_us = now_us();
  auto attempts = store->list_attempts(run.id);
  if (!attempts) fail(attempts.error());
  auto backend = create_backend(run.backend, BackendOptions{});
  for (auto a : *attempts) {
    if (is_terminal(a.state)) continue;
    if (backend && !a.handle.empty()) (*backend)->abandon(a.handle);
    a.state = TaskState::kCancelled;
    a.reason = "cancelled";
    a.ended_us = update.now_us;
    update.attempt_ends.push_back(std::move(a));
  }
  auto tasks = store->list_tasks(run.id);
  if (!tasks) fail(tasks.error());
  for (const auto& t : *tasks)
    if (!is_terminal(t.state))
      update.changes.push_back({t.index, TaskState::kCancelled, t.attempts, 0, "cancelled"});
  update.run_state = RunState::kCancelled;
  if (auto r = store->apply(run.id, update); !r) fail(r.error());
  std::printf("run %s cancelled\n", run.id.c_str());
  return kExitOk;
}

int cmd_remove(const Globals& g, const std::string& id) {
  auto store = open_store(g, RunStore::Mode::kReadWrite);
  RunRecord run = find_run_by_id(*store, id);
  if (RunLock::is_held(store->run_dir(run.id)))
    throw CliError(kExitBadInput,
                   "run " + run.id + " is running; cancel it first (sluice cancel " + run.id + ")");
  if (auto r = store->remove_run(run.id); !r) fail(r.error());
  std::printf("removed run %s\n", run.id.c_str());
  return kExitOk;
}

int cmd_removeall(const Globals& g) {
  auto store = open_store(g, RunStore::Mode::kReadWrite);
  auto runs = store->list_runs({});
  if (!runs) fail(runs.error());
  std::size_t removed = 0, kept = 0;
  for (const auto& run : *runs) {
    if (RunLock::is_held(store->run_dir(run.id))) {
      ++kept;
      continue;
    }
    if (auto r = store->remove_run(run.id); !r) fail(r.error());
    ++removed;
  }
  std::printf("removed %zu runs", removed);
  if (kept) std::printf(" (kept %zu running)", kept);
  std::printf("\n");
  return kExitOk;
}

}  // namespace

void add_manage_commands(CLI::App& app, Globals& g) {
  static std::string id;
  auto* cancel = app.add_subcommand("cancel", "cancel a run: kill its attempts, stop the rest");
  cancel->add_option("run", id, "run id (or unique prefix) or workflow id")->required();
  cancel->callback([&g] { g_exit_code = cmd_cancel(g, id); });

  auto* remove = app.add_subcommand("remove", "delete a finished run and its files");
  remove->add_option("run", id, "run id or unique prefix")->required();
  remove->callback([&g] { g_exit_code = cmd_remove(g, id); });

  auto* removeall = app.add_subcommand("removeall", "delete every run that is not running");
  removeall->callback([&g] { g_exit_code = cmd_removeall(g); });
}

}  // namespace sluice::cli
