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

#include <filesystem>
#include <fstream>

#include "commands.hpp"
#include "detach.hpp"
#include "inproc_backend.hpp"
#include "local_backend.hpp"
#include "run_backend.hpp"
#include "sluice/engine/loader.hpp"
#include "sluice/flow.hpp"
#include "sluice/orchestration.hpp"
#include "sluice/sdk_main.hpp"
#include "sluice/value_json.hpp"
#include "sluice/workflow_run.hpp"
#include "wire_codec.hpp"
#include "worker_runtime.hpp"
#ifdef SLUICE_WITH_MPI
#include "mpi_backend.hpp"
#include "mpi_worker.hpp"
#endif
#ifdef SLUICE_HAVE_SLURM_BACKEND
#include "pilot_backend.hpp"
#include "pilot_worker.hpp"
#include "slurm_backend.hpp"
#endif

namespace sluice::cli {
int g_exit_code = kExitOk;
// Set by the orchestration overload of main(): its runs drive this coroutine.
const OrchestrationDef* g_orchestration = nullptr;
}  // namespace sluice::cli

namespace sluice {
namespace {

std::atomic<bool> g_interrupted{false};
void on_interrupt(int) {
  g_interrupted.store(true);
}

struct RunVerbArgs {
  std::string config = "inproc";
  std::string backend;
  std::string run;
  std::string workflow;  // submit's optional WORKFLOW: must name this program's
  int cpus = 0;
  int gpus = -1;
  std::vector<std::string> executors;
  bool quiet = false;
  bool no_cache = false;
};

// Every task of a Flow is a function: let MPI workers queue them (mpi_backend.hpp).
void with_flow_defaults(Config& c) {
  if (c.backend == "mpi" && !c.options.count("queue_per_slot")) c.options["queue_per_slot"] = "64";
}

Config pick_config(const cli::Globals& g, const RunVerbArgs& a) {
  Config c;
  if (!a.backend.empty()) {
    c = Config{a.backend, a.backend, {}};
  } else {
    auto found = Config::find(a.config, g.home);
    if (!found) throw cli::CliError(cli::kExitBadInput, found.error().message);
    c = std::move(*found);
  }
  with_flow_defaults(c);
  BackendOptions flags;  // the command line's, over the configuration's
  flags.cpus = a.cpus;
  flags.gpus = a.gpus;
  flags.executors = a.executors;
  for (auto& [k, v] : option_strings(flags)) c.options[k] = std::move(v);
  // An unknown key or a malformed value is refused before any run is prepared.
  if (auto checked = c.backend_options(); !checked) cli::fail(checked.error());
  return c;
}

void install_interrupt_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  // A closed terminal or SSH connection: as SIGTERM, never a run left unsupervised.
  ::sigaction(SIGHUP, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

int execute(WorkflowRun& run, bool quiet) {
  std::printf("run %s %s\n", run.id().c_str(), run.workflow_id().c_str());
  std::fflush(stdout);
  install_interrupt_handlers();
  const RunState state = run.run();
  std::printf("run %s %s\n", run.id().c_str(), std::string(to_string(state)).c_str());
  if (!quiet && state == RunState::kSucceeded && cli::g_orchestration) {
    // Every call is a final task: the orchestration's value is what the run returned.
    const std::string task = cli::g_orchestration->name + ".return";
    std::printf("  %s = %s\n", task.c_str(), sluice::to_text(run.get_result(task)).c_str());
  } else if (!quiet && state == RunState::kSucceeded) {
    for (const auto& [task, value] : run.get_results(false))
      std::printf("  %s = %s\n", task.c_str(), sluice::to_text(value).c_str());
  }
  return state == RunState::kSucceeded ? cli::kExitOk : cli::kExitFailed;
}

RunOptions run_options(const cli::Globals& g, bool quiet, bool no_cache = false) {
  RunOptions o;
  o.home = g.home;
  o.use_cache = !no_cache;
  o.interrupt = &g_interrupted;
  o.orchestration = cli::g_orchestration;
  if (!quiet && ::isatty(STDERR_FILENO)) {
    o.on_progress = [](std::size_t done, std::size_t total, bool final) {
      std::fprintf(stderr, "\r\033[K%zu/%zu tasks done%s", done, total, final ? "\n" : "");
      std::fflush(stderr);
    };
  }
  return o;
}

// Keeps the backend and options a run is prepared with in RUN_DIR/backend.json, so that
// `APP start RUN` (another process, maybe a later job) uses them again (run_backend.hpp).
void remember_config(const WorkflowRun& run, const Config& config) {
  const std::string dir = run.run_dir();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (!cli::save_run_backend(dir, cli::RunBackend{config.backend, config.options}))
    std::fprintf(stderr,
                 "warning: cannot write %s/backend.json: `start %s` will use the %s "
                 "backend's defaults\n",
                 dir.c_str(), run.id().c_str(), config.backend.c_str());
}

// What `APP start RUN` executes with: the saved backend and options, unless --backend
// names another backend; a run prepared before backend.json existed gets its backend's
// defaults.
Config config_of(const WorkflowRun& run, const std::string& backend) {
  Config c;
  if (auto saved = cli::load_run_backend(run.run_dir());
      saved && (backend.empty() || backend == saved->backend)) {
    c = Config{saved->backend, saved->backend, saved->options};
  } else {
    const std::string name = backend.empty() ? run.backend() : backend;
    c = Config{name, name, {}};
  }
  with_flow_defaults(c);
  return c;
}

// The SDK calls throw sluice::Error; its code picks the exit status (cli::fail).
template <class F>
int guarded(F f) {
  try {
    return f();
  } catch (const Error& e) {
    cli::fail(e);
  }
}

// MPI worker ranks and pilot workers run function tasks in their own process: no process
// start per task. What the task writes to sluice::log() goes to the attempt's stdout
// file; why it failed, to its stderr file. `content_hash` is that of the values written.
int run_function_in_process(const wire::Launch& l, std::string& content_hash) {
  FunctionAttempt a;
  a.function = l.function;
  a.arguments = l.arguments;
  a.task = l.name;
  a.attempt = l.attempt;
  a.attempt_dir = l.attempt_dir;
  auto env = [&l](const std::string& name) {
    for (const auto& [k, v] : l.env)
      if (k == name) return v;
    return std::string();
  };
  a.run_id = env("SLUICE_RUN_ID");
  a.output = env("SLUICE_OUTPUT");
  a.results = env("SLUICE_RESULTS");
  a.input = env;
  std::string why;
  const int code = execute_function_attempt(a, why, &content_hash);
  if (code != 0) {
    std::error_code ec;
    std::filesystem::create_directories(l.attempt_dir, ec);
    std::ofstream(l.attempt_dir + "/stderr", std::ios::app) << why << '\n';
  }
  return code;
}

// `submit`: bad input (a malformed flow, an unknown configuration, a task no slot can
// hold) is reported here, synchronously, before any run exists; then the coordinator
// detaches and the caller prints the run id.
int submit(const cli::Globals& g, const RunVerbArgs& a, const Flow& flow) {
  using namespace sluice::cli;
  if (!a.workflow.empty() && a.workflow != flow.name() &&
      a.workflow != flow.project() + ":" + flow.name())
    throw CliError(kExitBadInput, "this program's workflow is " + flow.project() + ":" +
                                      flow.name() + ", not '" + a.workflow + "'");
  const Config config = pick_config(g, a);
  if (config.backend == "mpi")
    throw CliError(kExitBadInput,
                   "the mpi backend's coordinator is rank 0 of an MPI job: start it with "
                   "`mpirun -n N APP run --backend mpi`, not submit");
  {
    const Workflow wf = flow.build();
    auto options = config.backend_options();
    if (!options) fail(options.error());
    // Only to check capacity: the daemon makes its own (no threads may cross the fork).
    auto backend = create_backend(config.backend, *options);
    if (!backend) fail(backend.error());
    if (auto d = check_against_capacity(wf, (*backend)->capacity()); !d.empty()) {
      for (const auto& x : d) std::fprintf(stderr, "%s\n", x.format().c_str());
      throw CliError(kExitBadInput, "nothing was submitted");
    }
  }
  std::string id;
  std::string log;
  {  // closed before the fork: no SQLite connection may cross it
    auto run = WorkflowRun::prepare(flow, config, run_options(g, true));
    id = run.id();
    remember_config(run, config);  // makes the run's directory
    log = run.run_dir() + "/coordinator.log";
  }
  auto side = detach(log);
  if (!side) fail(side.error());
  if (*side == DetachedSide::kCaller) {
    std::printf("%s\n", id.c_str());
    std::fflush(stdout);
    std::fprintf(stderr, "submitted run %s (coordinator log: %s)\n", id.c_str(), log.c_str());
    return kExitOk;
  }
  auto run = WorkflowRun::attach(id, config, run_options(g, true, a.no_cache));
  return execute(run, false);
}

}  // namespace

int main(int argc, char** argv, const Flow& flow) {
  using namespace sluice::cli;
  // What backends launch for each attempt: decided before any parsing or set-up.
  if (argc >= 3 && std::strcmp(argv[1], "__sluice_worker") == 0)
    return run_worker(argv[2], argc >= 4 ? argv[3] : "");

  register_local_backend();
  register_inproc_backend();
#ifdef SLUICE_WITH_MPI
  register_mpi_backend();
#endif
#ifdef SLUICE_HAVE_SLURM_BACKEND
  // Allocations started by this program run `APP worker`: function tasks in-process.
  register_slurm_backend();
  register_pilot_backend();
#endif
  // mpi ranks and pilot workers of this program call its function tasks in-process.
  worker::set_function_task_runner(run_function_in_process);
  const std::string program = argc > 0 ? argv[0] : "app";
  CLI::App app{"workflow " + flow.project() + ":" + flow.name() + " (built with the Sluice SDK)",
               program};
  app.require_subcommand(1);
  Globals g;
  std::string home_flag;
  app.add_option("--home", home_flag, "Sluice home (default: $SLUICE_HOME or ./.sluice)")
      ->envname("SLUICE_HOME");
  app.parse_complete_callback([&] { g.home = sluice_home(home_flag); });

  static RunVerbArgs a;
  auto add_run_options = [&](CLI::App* cmd) {
    cmd->add_option("--config", a.config, "saved or built-in configuration (inproc, local)");
    cmd->add_option("--backend", a.backend, "backend, instead of a configuration");
    cmd->add_option("--cpus", a.cpus, "cpu slots (default: all cores)")
        ->check(CLI::Range(1, 1 << 20));
    cmd->add_option("--gpus", a.gpus, "GPUs to hand out")->check(CLI::Range(0, 4096));
    cmd->add_option("--executors", a.executors, "executor labels offered")->delimiter(',');
    cmd->add_flag("-q,--quiet", a.quiet, "print only the run's id and final state");
    cmd->add_flag("--no-cache", a.no_cache, "run every task, reuse nothing from earlier runs");
  };
  auto* run = app.add_subcommand("run", "run this program's workflow until it ends");
  add_run_options(run);
  run->callback([&] {
    g_exit_code = guarded([&] {
      const Config config = pick_config(g, a);
      // Under mpirun every rank runs this verb: workers serve here, before the store.
      auto options = config.backend_options();
      if (!options) fail(options.error());
      if (auto status = enter_worker(config.backend, *options)) return *status;
      auto r = WorkflowRun::prepare(flow, config, run_options(g, a.quiet, a.no_cache));
      remember_config(r, config);
      return execute(r, a.quiet);
    });
  });
  auto* prepare = app.add_subcommand("prepare", "register a run of this workflow; print its id");
  add_run_options(prepare);
  prepare->callback([&] {
    g_exit_code = guarded([&] {
      const Config config = pick_config(g, a);
      auto r = WorkflowRun::prepare(flow, config, run_options(g, a.quiet));
      remember_config(r, config);
      cli::mark_prepared(r.run_dir());
      std::printf("%s\n", r.id().c_str());
      return kExitOk;
    });
  });
  auto* submit_cmd =
      app.add_subcommand("submit", "start a run in the background; print its id at once");
  submit_cmd->add_option("workflow", a.workflow, "this program's workflow (it has only one)");
  add_run_options(submit_cmd);
  submit_cmd->callback([&] { g_exit_code = guarded([&] { return submit(g, a, flow); }); });
  auto* start = app.add_subcommand("start", "execute a prepared run, or resume a stopped one");
  start->alias("resume");
  start->add_option("run", a.run, "run id or unique prefix")->required();
  start->add_flag("-q,--quiet", a.quiet, "print only the run's id and final state");
  start->add_flag("--no-cache", a.no_cache, "run every task, reuse nothing from earlier runs");
  start->add_option("--backend", a.backend,
                    "another backend than the run's own (mpi: under mpirun, the ranks that "
                    "serve as workers)");
  start->callback([&] {
    g_exit_code = guarded([&] {
      if (!a.backend.empty())
        if (auto status = enter_worker(a.backend, BackendOptions{})) return *status;
      const WorkflowRun prepared = WorkflowRun::by_id(a.run, g.home);
      const Config config = config_of(prepared, a.backend);
      // Another backend than the prepared one: get, ps and backend.json say which.
      if (config.backend != prepared.backend()) {
        remember_config(prepared, config);
        auto store = RunStore::open(g.home, RunStore::Mode::kReadWrite);
        if (!store) fail(store.error());
        if (auto r = (*store)->set_run_backend(prepared.id(), config.backend); !r) fail(r.error());
      }
      auto r = WorkflowRun::attach(a.run, config, run_options(g, a.quiet, a.no_cache));
      return execute(r, a.quiet);
    });
  });

  add_query_commands(app, g);
  add_manage_commands(app, g);
  add_data_commands(app, g);
  add_workflows_commands(app, g);
#ifdef SLUICE_HAVE_SLURM_BACKEND
  add_pilot_commands(app, g);
#endif
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
  } catch (const std::exception& e) {  // a bug or exhausted memory, not the caller's fault
    std::fflush(stdout);
    std::fprintf(stderr, "%s: internal error: %s\n", program.c_str(), e.what());
    return kExitInternal;
  }
  return g_exit_code;
}

int main(int argc, char** argv, const OrchestrationDef& orchestration) {
  cli::g_orchestration = &orchestration;
  return main(argc, argv, orchestration.flow());
}

}  // namespace sluice
