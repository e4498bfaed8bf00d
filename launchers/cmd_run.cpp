// `sluice run`, `sluice validate`, `sluice resume`: load, check, then coordinate a run
// in the foreground with live progress. `sluice submit`: the same checks, then the
// coordinator detaches and the command prints the run id.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>

#include <filesystem>

#include "commands.hpp"
#include "detach.hpp"
#include "progress.hpp"
#include "run_backend.hpp"
#include "sluice/engine/backend_registry.hpp"
#include "sluice/engine/coordinator.hpp"
#include "sluice/engine/counted.hpp"
#include "sluice/engine/loader.hpp"
#include "sluice/engine/printable.hpp"
#include "sluice/engine/run_id.hpp"
#include "sluice/engine/run_lock.hpp"
#include "sluice/engine/sdk_definition.hpp"

namespace sluice::cli {
namespace {

std::atomic<bool> g_interrupted{false};
std::atomic<bool> g_terminated{false};
std::atomic<int> g_stop_signal{0};  // the signal that set g_terminated

// SIGINT (Ctrl-C) cancels the run. SIGTERM (Slurm at a job's time limit, a system
// shutdown) and SIGHUP (the terminal or SSH connection closed) only stop it: the attempts
// are killed and the run stays resumable. Left at its default, SIGHUP ended the
// coordinator at once and left every attempt running with nobody watching it.
void on_interrupt(int) {
  g_interrupted.store(true);
}

void on_terminate(int sig) {
  g_stop_signal.store(sig);
  g_terminated.store(true);
}

struct RunArgs {
  std::string file;
  std::string run;
  std::string backend = "local";
  std::string resume_backend;  // `resume --backend`: empty = the run's own backend
  int cpus = 0;
  int gpus = -1;
  std::vector<std::string> executors;
  std::vector<std::string> options;  // KEY=VALUE for BackendOptions::extra
  std::string config;                // a saved configuration (sluice config save)
  std::string run_id;                // pre-made by `sluice sbatch`
  // `resume`: the options the run was started with (run_backend.hpp), under the rest.
  std::map<std::string, std::string> restored;
  bool quiet = false;
  bool verbose = false;  // say how the backend reaches its workers (the Slurm driver, why)
  bool no_cache = false;
  bool dry_run = false;
  double progress_every_s = 5.0;
};

[[noreturn]] void reject(const Diagnostics& diags) {
  for (const auto& d : diags) std::fprintf(stderr, "%s\n", printable(d.format(), true).c_str());
  throw CliError(kExitBadInput, diags.size() == 1
                                    ? "1 error, nothing was run"
                                    : std::to_string(diags.size()) + " errors, nothing was run");
}

Workflow load_or_reject(const std::string& file) {
  auto wf = load_workflow_file(file);
  if (!wf) reject(wf.error());
  return std::move(*wf);
}

// The options a resumed run was started with, then a saved configuration, then
// --backend-option on top, checked against the backend's options table (exit 2 with
// its valid keys) before any rank serves, anything is saved or a run is made. `name`
// gets the backend to use: the configuration's when --backend was left at its default.
BackendOptions backend_options(const Globals& g, const RunArgs& a, std::string* name = nullptr) {
  std::string backend = a.backend;
  // An unknown backend is reported when it is made, with the names there are.
  auto check = [&](const std::map<std::string, std::string>& strings, const std::string& where) {
    if (auto checked = check_backend_options(backend, strings);
        !checked && checked.error().code != ErrorCode::kNotFound)
      throw CliError(kExitBadInput, where + checked.error().message);
  };
  std::map<std::string, std::string> strings = a.restored;
  if (!a.config.empty()) {
    Config c = load_config(g, a.config);
    if (backend == "local") backend = c.backend;
    check(c.options, "configuration '" + a.config + "': ");
    for (const auto& [k, v] : c.options) strings[k] = v;
  }
  for (const auto& kv : a.options) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      throw CliError(kExitBadInput, "backend option '" + kv + "' is not KEY=VALUE");
    strings[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  check(strings, "");
  auto opts = parse_backend_options(strings);
  if (!opts) throw CliError(kExitBadInput, "backend option " + opts.error().message);
  // Flags win over what the configuration or -O says.
  if (a.cpus > 0) opts->cpus = a.cpus;
  if (a.gpus >= 0) opts->gpus = a.gpus;
  if (!a.executors.empty()) opts->executors = a.executors;
  if (name) *name = backend;
  return std::move(*opts);
}

std::unique_ptr<Backend> make_backend(const Globals& g, const RunArgs& a) {
  std::string name;
  BackendOptions opts = backend_options(g, a, &name);
  auto backend = create_backend(name, opts);
  if (!backend) fail(backend.error());
  if (a.verbose)
    if (const std::string how = (*backend)->describe(); !how.empty())
      std::fprintf(stderr, "sluice: backend %s: %s\n", name.c_str(), how.c_str());
  return std::move(*backend);
}

// Progress of the run this process coordinates (see progress.hpp).
class Progress {
 public:
  explicit Progress(const RunArgs& a)
      : printer_(stderr, a.quiet, a.progress_every_s), start_(std::chrono::steady_clock::now()) {}

  void update(const Scheduler& s, bool final) {
    const auto now = std::chrono::steady_clock::now();
    printer_.update(s.counts(), std::chrono::duration<double>(now - start_).count(), final);
  }

 private:
  ProgressPrinter printer_;
  std::chrono::steady_clock::time_point start_;
};

int coordinate(RunStore& store, Backend& backend, Workflow& wf, const RunRecord& run, bool resume,
               const RunArgs& a) {
  auto lock = RunLock::acquire(store.run_dir(run.id));
  if (!lock) fail(lock.error());
  Coordinator coord(store, backend, wf, run.id);
  if (resume)
    if (auto r = coord.restore_from_store(); !r) fail(r.error());

  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  sa.sa_handler = on_terminate;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGHUP, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  Progress progress(a);
  CoordinatorOptions opts;
  opts.interrupt = &g_interrupted;
  opts.stop = &g_terminated;
  opts.use_cache = !a.no_cache;
  opts.on_progress = [&](const Scheduler& s, bool final) { progress.update(s, final); };
  auto state = coord.run(opts);
  if (!state) fail(state.error());
  if (*state == RunState::kRunning) {
    // The exit status a shell reports for a process ended by that signal: the run was
    // stopped, not finished. After SIGHUP the terminal may be gone: the log (submit) or
    // `sluice get` still has the message.
    const int sig = g_stop_signal.load() == SIGHUP ? SIGHUP : SIGTERM;
    std::printf(
        "run %s stopped (%s): running attempts were killed; "
        "continue it with `sluice resume %s`\n",
        run.id.c_str(), sig == SIGHUP ? "SIGHUP" : "SIGTERM", run.id.c_str());
    std::fflush(stdout);
    return 128 + sig;
  }
  std::printf("run %s %s\n", run.id.c_str(), std::string(to_string(*state)).c_str());
  return *state == RunState::kSucceeded ? kExitOk : kExitFailed;
}

// Keeps what `resume` needs to make the same backend again (run_backend.hpp).
// `detail`: the backend's describe(), kept for people reading the run's record.
void remember_backend(RunStore& store, const std::string& run_id, const Globals& g,
                      const RunArgs& a, const std::string& detail) {
  std::string name;
  const BackendOptions opts = backend_options(g, a, &name);
  const std::string dir = store.run_dir(run_id);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (!save_run_backend(dir, name, opts, detail))
    std::fprintf(stderr,
                 "sluice: warning: cannot write %s/backend.json: `sluice resume %s` "
                 "will need the backend options again\n",
                 dir.c_str(), run_id.c_str());
}

int cmd_run(const Globals& g, const RunArgs& a) {
  if (a.dry_run) return cmd_dry_run(g, a.file, a.no_cache);
  Workflow wf = load_or_reject(a.file);
  // In an MPI job every rank runs this command; only one goes on to coordinate.
  if (auto status = enter_worker(a.backend, backend_options(g, a))) return *status;
  auto backend = make_backend(g, a);
  if (auto d = check_against_capacity(wf, backend->capacity()); !d.empty()) reject(d);

  auto store = open_store(g, RunStore::Mode::kReadWrite);
  auto revision = store->register_workflow(wf);
  if (!revision) fail(revision.error());
  if (!a.run_id.empty() && !is_run_id(a.run_id))
    throw CliError(kExitBadInput, "'" + a.run_id + "' is not a run id");
  auto run =
      store->create_run(wf, *revision, a.run_id.empty() ? new_run_id() : a.run_id, backend->name());
  if (!run) fail(run.error());
  remember_backend(*store, run->id, g, a, backend->describe());
  std::printf("run %s %s:%s:%d (%s, backend %s, %s, %s)\n", run->id.c_str(), wf.project.c_str(),
              wf.name.c_str(), *revision, counted(wf.tasks.size(), "task", "tasks").c_str(),
              backend->name().c_str(), counted(backend->capacity().cpus, "cpu", "cpus").c_str(),
              counted(backend->capacity().gpus, "gpu", "gpus").c_str());
  std::fflush(stdout);
  return coordinate(*store, *backend, wf, *run, false, a);
}

// Everything that can be wrong with the input is checked here, before detaching, so a bad
// file is reported as `file:line:col` with exit 2 and leaves no run behind.
int cmd_submit(const Globals& g, const RunArgs& a) {
  Workflow wf = load_or_reject(a.file);
  std::string backend_name;
  (void)backend_options(g, a, &backend_name);
  if (backend_name == "mpi")
    throw CliError(kExitBadInput,
                   "the mpi backend's coordinator is rank 0 of an MPI job: start it with "
                   "`mpirun -n N sluice run --backend mpi FILE` (or `sluice sbatch`), not submit");
  std::string detail;
  {
    // Made only to check the workflow against its capacity; the daemon makes its own
    // (no backend threads or connections may cross the fork).
    auto backend = make_backend(g, a);
    if (auto d = check_against_capacity(wf, backend->capacity()); !d.empty()) reject(d);
    detail = backend->describe();
  }
  if (!a.run_id.empty() && !is_run_id(a.run_id))
    throw CliError(kExitBadInput, "'" + a.run_id + "' is not a run id");
  std::string run_id, log_path;
  {
    auto store = open_store(g, RunStore::Mode::kReadWrite);
    auto revision = store->register_workflow(wf);
    if (!revision) fail(revision.error());
    auto run =
        store->create_run(wf, *revision, a.run_id.empty() ? new_run_id() : a.run_id, backend_name);
    if (!run) fail(run.error());
    run_id = run->id;
    const std::string dir = store->run_dir(run_id);
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    log_path = dir + "/coordinator.log";
    remember_backend(*store, run_id, g, a, detail);
  }
  auto side = detach(log_path);
  if (!side) fail(side.error());
  if (*side == DetachedSide::kCaller) {
    std::printf("%s\n", run_id.c_str());
    std::fflush(stdout);
    std::fprintf(stderr, "submitted run %s (coordinator log: %s)\n", run_id.c_str(),
                 log_path.c_str());
    return kExitOk;
  }
  auto store = open_store(g, RunStore::Mode::kReadWrite);
  RunRecord run = find_run(*store, run_id);
  auto backend = make_backend(g, a);
  std::printf("run %s %s:%s:%d (%zu tasks, backend %s, detached)\n", run.id.c_str(),
              wf.project.c_str(), wf.name.c_str(), run.revision, wf.tasks.size(),
              backend->name().c_str());
  std::fflush(stdout);
  return coordinate(*store, *backend, wf, run, false, a);
}

// Without a backend named (--backend, --config, --cpus, --gpus, -O, --executors) the file
// is checked alone: a workflow written for a cluster validates on a laptop. Told of one,
// it checks capacity against that backend, and says which.
int cmd_validate(const Globals& g, const RunArgs& a, bool backend_named) {
  Workflow wf = load_or_reject(a.file);
  const bool told = backend_named || !a.config.empty() || a.cpus > 0 || a.gpus >= 0 ||
                    !a.options.empty() || !a.executors.empty();
  std::string checked =
      "capacity not checked: no backend given (--backend, --config or --gpus "
      "checks it)";
  if (told) {
    if (auto status = enter_worker(a.backend, backend_options(g, a))) return *status;
    auto backend = make_backend(g, a);
    const Capacity c = backend->capacity();
    if (auto d = check_against_capacity(wf, c); !d.empty()) reject(d);
    checked = "checked against backend " + backend->name() + ": " + std::to_string(c.cpus) +
              " cpus, " + std::to_string(c.gpus) + (c.gpus == 1 ? " GPU" : " GPUs");
  }
  std::printf("%s: ok, workflow %s:%s with %zu tasks (%s)\n", printable(a.file).c_str(),
              printable(wf.project).c_str(), printable(wf.name).c_str(), wf.tasks.size(),
              checked.c_str());
  return kExitOk;
}

// A run built by a C++ program (sdk_definition.hpp) goes on only in that program: its
// function tasks run in it, and an orchestration's coroutine decides the next calls.
// Loaded here as a TOML workflow, it would be rejected with unrelated parse errors.
void refuse_sdk_run(std::string_view text, const RunRecord& run) {
  if (!is_sdk_definition(text)) return;
  std::string program = "APP";
  bool orchestration = false;
  if (auto wf = load_sdk_definition(text, run.base_dir)) {
    for (const TaskSpec& t : wf->tasks) {
      if (!t.command.empty()) program = std::filesystem::path(t.command[0]).filename().string();
      orchestration = orchestration || t.function == kOrchestrationFunction;
    }
  }
  program = printable(program);
  throw CliError(kExitBadInput,
                 "run " + run.id + " is " + (orchestration ? "an orchestration" : "a workflow") +
                     " of the C++ program " + program + ": resume it with that program (`" +
                     program + " resume " + run.id + "`)" +
                     (orchestration ? "; `sluice resume` cannot replay its coroutine" : ""));
}

int cmd_resume(const Globals& g, RunArgs a) {
  // Workers of an MPI job must leave before anything reads the store or the run lock.
  if (!a.resume_backend.empty())
    if (auto status = enter_worker(a.resume_backend, backend_options(g, a))) return *status;
  auto store = open_store(g, RunStore::Mode::kReadWrite);
  RunRecord run = find_run(*store, a.run);
  if (run.state == RunState::kSucceeded) {
    std::printf("run %s already succeeded: nothing to resume\n", run.id.c_str());
    return kExitOk;
  }
  // A coordinator killed while it was spawning an attempt leaves its lock with the
  // half-started child until that child execs: give such a lock a moment to go.
  const auto lock_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (RunLock::is_held(store->run_dir(run.id))) {
    if (std::chrono::steady_clock::now() >= lock_deadline)
      throw CliError(kExitBadInput,
                     "run " + run.id + " is still running (its coordinator is alive)");
    ::usleep(50'000);
  }
  auto text = store->run_definition(run.id);
  if (!text) fail(text.error());
  refuse_sdk_run(*text, run);
  auto wf = load_workflow_text(*text, run.source_path, run.base_dir);
  if (!wf) reject(wf.error());
  if (wf->content_hash != run.content_hash)
    throw CliError(kExitInternal,
                   "stored definition of run " + run.id + " does not match its hash");
  // The backend and options it was started with, unless --backend names another one;
  // --config and -O apply on top.
  a.backend = a.resume_backend.empty() ? run.backend : a.resume_backend;
  auto saved = load_run_backend(store->run_dir(run.id));
  if (saved && (a.resume_backend.empty() || a.resume_backend == saved->backend)) {
    a.backend = saved->backend;
    a.restored = saved->options;
  }
  auto backend = make_backend(g, a);
  // The record says how the run goes on now (a resume may pick another Slurm driver).
  if (saved && saved->backend == a.backend && saved->detail != backend->describe()) {
    saved->detail = backend->describe();
    (void)save_run_backend(store->run_dir(run.id), *saved);
  }
  std::printf("run %s resumed\n", run.id.c_str());
  std::fflush(stdout);
  return coordinate(*store, *backend, *wf, run, true, a);
}

void add_backend_options(CLI::App* cmd, RunArgs& a) {
  cmd->add_option("--backend", a.backend,
                  "where attempts execute (local, slurm; mpi under mpirun)");
  cmd->add_option("-O,--backend-option", a.options,
                  "backend option KEY=VALUE, repeatable (slurm: driver=cli, partition=P, ...)");
  cmd->add_option("--config", a.config, "use a saved configuration (sluice config save)");
  cmd->add_option("--cpus", a.cpus, "cpu slots (default: all cores)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--gpus", a.gpus, "GPUs to hand out (default: detected)")
      ->check(CLI::Range(0, 4096));
  cmd->add_option("--executors", a.executors, "executor labels offered (default: any)")
      ->delimiter(',');
}

}  // namespace

void add_run_commands(CLI::App& app, Globals& g) {
  static RunArgs a;
  auto* run = app.add_subcommand("run", "run a workflow in the foreground until it ends");
  run->add_option("file", a.file, "workflow file (TOML)")->required();
  add_backend_options(run, a);
  run->add_flag("-q,--quiet", a.quiet, "no live progress, only the final summary");
  run->add_flag("-v,--verbose", a.verbose,
                "say how the backend reaches its workers (slurm: which driver, and why)");
  run->add_flag("--no-cache", a.no_cache, "run every task, reuse nothing from earlier runs");
  run->add_flag("--dry-run", a.dry_run,
                "say which tasks would run and why (or come from the cache); run nothing");
  run->add_flag("--json", g.json, "with --dry-run: machine-readable output");
  run->add_option("--run-id", a.run_id, "use this (new) run id instead of making one");
  run->add_option("--progress-every", a.progress_every_s,
                  "seconds between progress lines when not on a terminal");
  run->callback([&] { g_exit_code = cmd_run(g, a); });

  auto* submit = app.add_subcommand(
      "submit", "start a run in the background; print its id (then: wait, get, logs RUN)");
  submit->add_option("file", a.file, "workflow file (TOML)")->required();
  add_backend_options(submit, a);
  submit->add_flag("--no-cache", a.no_cache, "run every task, reuse nothing from earlier runs");
  submit->add_flag("-v,--verbose", a.verbose,
                   "say how the backend reaches its workers (slurm: which driver, and why)");
  submit->add_option("--run-id", a.run_id, "use this (new) run id instead of making one");
  submit->callback([&] { g_exit_code = cmd_submit(g, a); });

  auto* validate = app.add_subcommand("validate", "check a workflow file without running it");
  validate->add_option("file", a.file, "workflow file (TOML)")->required();
  add_backend_options(validate, a);
  validate->callback([&, validate] {
    g_exit_code = cmd_validate(g, a, validate->get_option("--backend")->count() > 0);
  });

  auto* resume = app.add_subcommand("resume", "finish a run whose coordinator stopped");
  resume->add_option("run", a.run, "run id (or unique prefix) or workflow id")->required();
  resume->add_option("--backend", a.resume_backend,
                     "where attempts execute (default: the run's backend; under mpirun: mpi)");
  resume->add_option("--cpus", a.cpus, "cpu slots (default: all cores)");
  resume->add_option("--gpus", a.gpus, "GPUs to hand out (default: detected)");
  resume->add_flag("-q,--quiet", a.quiet, "no live progress, only the final summary");
  resume->add_flag("-v,--verbose", a.verbose,
                   "say how the backend reaches its workers (slurm: which driver, and why)");
  resume->add_flag("--no-cache", a.no_cache, "run every remaining task, reuse nothing");
  resume->add_option("-O,--backend-option", a.options, "backend option KEY=VALUE, repeatable");
  resume->add_option("--config", a.config, "use a saved configuration's backend options");
  resume->callback([&] { g_exit_code = cmd_resume(g, a); });
}

}  // namespace sluice::cli
