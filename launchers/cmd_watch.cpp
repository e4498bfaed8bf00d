// `sluice watch RUN`: the progress line of `sluice run`, from another terminal, for a
// run coordinated elsewhere. It only reads the store; it ends when the run ends and
// exits like `sluice run` would have: 0 succeeded, 1 failed or cancelled.
#include <chrono>
#include <cstdio>
#include <thread>

#include "commands.hpp"
#include "progress.hpp"
#include "sluice/engine/run_lock.hpp"

namespace sluice::cli {
namespace {

struct WatchArgs {
  std::string run;
  double interval_s = 1.0;
  bool quiet = false;
  double progress_every_s = 5.0;
};

StateCounts count_states(const std::vector<TaskRecord>& tasks) {
  StateCounts c{};
  for (const auto& t : tasks) c[static_cast<int>(t.state)]++;
  return c;
}

int cmd_watch(const Globals& g, const WatchArgs& a) {
  auto store = open_store(g, RunStore::Mode::kReadOnly);
  const std::string id = find_run(*store, a.run).id;
  ProgressPrinter printer(stderr, a.quiet, a.progress_every_s);
  int orphaned_polls = 0;
  for (;;) {
    auto run = store->get_run(id);
    if (!run) fail(run.error());
    auto tasks = store->list_tasks(id);
    if (!tasks) fail(tasks.error());
    const std::int64_t start = run->started_us > 0 ? run->started_us : run->created_us;
    const std::int64_t now =
        is_terminal(run->state) && run->ended_us > 0 ? run->ended_us : now_us();
    const double elapsed = static_cast<double>(now - start) / 1e6;
    if (is_terminal(run->state)) {
      printer.update(count_states(*tasks), elapsed, true);
      std::printf("run %s %s\n", id.c_str(), std::string(to_string(run->state)).c_str());
      return run->state == RunState::kSucceeded ? kExitOk : kExitFailed;
    }
    printer.update(count_states(*tasks), elapsed, false);
    // A running run whose coordinator holds no lock will not move until resumed.
    if (run->state == RunState::kRunning && !RunLock::is_held(store->run_dir(id))) {
      if (++orphaned_polls >= 3) {
        printer.update(count_states(*tasks), elapsed, true);
        throw CliError(kExitInternal, "run " + id +
                                          " has no live coordinator (orphaned): `sluice resume " +
                                          id + "` finishes it");
      }
    } else {
      orphaned_polls = 0;
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(a.interval_s));
  }
}

}  // namespace

void add_watch_commands(CLI::App& app, Globals& g) {
  static WatchArgs a;
  auto* cmd = app.add_subcommand("watch", "follow a run's progress from another terminal");
  cmd->add_option("run", a.run, "run id (or unique prefix) or workflow id")->required();
  cmd->add_option("--interval", a.interval_s, "seconds between polls of the store (default 1)")
      ->check(CLI::Range(0.05, 3600.0));
  cmd->add_flag("-q,--quiet", a.quiet, "no live progress, only the final summary");
  cmd->add_option("--progress-every", a.progress_every_s,
                  "seconds between progress lines when not on a terminal");
  cmd->callback([&g] { g_exit_code = cmd_watch(g, a); });
}

}  // namespace sluice::cli
