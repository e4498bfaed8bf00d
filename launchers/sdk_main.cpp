// sluice::main — a program built with the C++ SDK becomes a Sluice tool: `run` executes
// its workflow on a named configuration, `__sluice_worker` executes one function task
// (what the local and Slurm backends launch), and the query verbs are the `sluice`
// CLI's own commands, so both read the same store the same way.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <cstring>

#include "commands.hpp"
#include "inproc_backend.hpp"
#include "local_backend.hpp"
#include "sluice/flow.hpp"
#include "sluice/sdk_main.hpp"
#include "sluice/workflow_run.hpp"
#include "value_json.hpp"

namespace sluice::cli {
int g_exit_code = kExitOk;
}  // namespace sluice::cli

namespace sluice {
namespace {

std::atomic<bool> g_interrupted{false};
void on_interrupt(int) { g_interrupted.store(true); }

struct RunVerbArgs {
  std::string config = "inproc";
  std::string backend;
  std::string run;
  int cpus = 0;
  int gpus = -1;
  std::vector<std::string> executors;
  bool quiet = false;
};

Config pick_config(const cli::Globals& g, const RunVerbArgs& a) {
  Config c;
  if (!a.backend.empty()) {
    c = Config{a.backend, a.backend, {}};
  } else {
    auto found = Config::find(a.config, g.home);
    if (!found) throw cli::CliError(cli::kExitBadInput, found.error().message);
    c = std::move(*found);
  }
  if (a.cpus > 0) c.options["cpus"] = std::to_string(a.cpus);
  if (a.gpus >= 0) c.options["gpus"] = std::to_string(a.gpus);
  if (!a.executors.empty()) {
    std::string joined;
    for (const auto& e : a.executors) joined += (joined.empty() ? "" : ",") + e;
    c.options["executors"] = joined;
  }
  return c;
}

void install_interrupt_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

int execute(WorkflowRun& run, bool quiet) {
  std::printf("run %s %s\n", run.id().c_str(), run.workflow_id().c_str());
  std::fflush(stdout);
  install_interrupt_handlers();
  const RunState state = run.run();
  std::printf("run %s %s\n", run.id().c_str(), std::string(to_string(state)).c_str());
  if (!quiet && state == RunState::kSucceeded) {
    for (const auto& [task, value] : run.get_results(false))
      std::printf("  %s = %s\n", task.c_str(), cli::to_text(value).c_str());
  }
  return state == RunState::kSucceeded ? cli::kExitOk : cli::kExitFailed;
}

RunOptions run_options(const cli::Globals& g, bool quiet) {
  RunOptions o;
  o.home = g.home;
  o.interrupt = &g_interrupted;
  if (!quiet && ::isatty(STDERR_FILENO)) {
    o.on_progress = [](std::size_t done, std::size_t total, bool final) {
      std::fprintf(stderr, "\r\033[K%zu/%zu tasks done%s", done, total, final ? "\n" : "");
      std::fflush(stderr);
    };
  }
  return o;
}

template <class F>
int guarded(F f) {
  try {
    return f();
  } catch (const RunError& e) {
    cli::fail(Error{e.code, e.what()});
  }
}

}  // namespace

int main(int argc, char** argv, const Flow& flow) {
  using namespace sluice::cli;
  // What backends launch for each attempt: decided before any parsing or set-up.
  if (argc >= 3 && std::strcmp(argv[1], "__sluice_worker") == 0)
    return run_worker(argv[2], argc >= 4 ? argv[3] : "");

  register_local_backend();
  register_inproc_backend();
  const std::string program = argc > 0 ? argv[0] : "app";
  CLI::App app{"workflow " + flow.project() + ":" + flow.name() + " (built with the Sluice SDK)",
               program};
  app.require_subcommand(1);
  Globals g;
  std::string home_flag;
  app.add_option("--home", home_flag, "Sluice home (default: $SLUICE_HOME or ./.sluice)")
      ->envname("SLUICE_HOME");
  app.parse_complete_callback([&] { g.home = resolve_home(home_flag); });

  static RunVerbArgs a;
  auto add_run_options = [&](CLI::App* cmd) {
    cmd->add_option("--config", a.config, "saved or built-in configuration (inproc, local)");
    cmd->add_option("--backend", a.backend, "backend, instead of a configuration");
    cmd->add_option("--cpus", a.cpus, "cpu slots (default: all cores)")->check(CLI::Range(1, 1 << 20));
    cmd->add_option("--gpus", a.gpus, "GPUs to hand out")->check(CLI::Range(0, 4096));
    cmd->add_option("--executors", a.executors, "executor labels offered")->delimiter(',');
    cmd->add_flag("-q,--quiet", a.quiet, "print only the run's id and final state");
  };
  auto* run = app.add_subcommand("run", "run this program's workflow until it ends");
  add_run_options(run);
  run->callback([&] {
    g_exit_code = guarded([&] {
      auto r = WorkflowRun::prepare(flow, pick_config(g, a), run_options(g, a.quiet));
      return execute(r, a.quiet);
    });
  });
  auto* prepare = app.add_subcommand("prepare", "register a run of this workflow; print its id");
  add_run_options(prepare);
  prepare->callback([&] {
    g_exit_code = guarded([&] {
      auto r = WorkflowRun::prepare(flow, pick_config(g, a), run_options(g, a.quiet));
      std::printf("%s\n", r.id().c_str());
      return kExitOk;
    });
  });
  auto* start = app.add_subcommand("start", "execute a prepared run, or resume a stopped one");
  start->add_option("run", a.run, "run id or unique prefix")->required();
  start->add_flag("-q,--quiet", a.quiet, "print only the run's id and final state");
  start->callback([&] {
    g_exit_code = guarded([&] {
      auto r = WorkflowRun::by_id(a.run, g.home);
      return execute(r, a.quiet);
    });
  });

  add_query_commands(app, g);
  add_manage_commands(app, g);
  add_data_commands(app, g);
  add_workflows_commands(app, g);
  for (auto* sub : app.get_subcommands({}))
    sub->add_option("--home", home_flag, "Sluice home (default: $SLUICE_HOME or ./.sluice)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitBadInput;
  } catch (const CliError& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "%s: %s\n", program.c_str(), e.what());
    return e.code;
  }
  return g_exit_code;
}

}  // namespace sluice
