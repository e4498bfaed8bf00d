// `sluice run`, `sluice validate`, `sluice resume`: load, check, then coordinate a run
// in the foreground with live progress.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>

#include "commands.hpp"
#include "sluice/backend_registry.hpp"
#include "sluice/coordinator.hpp"
#include "sluice/loader.hpp"
#include "sluice/run_id.hpp"
#include "sluice/run_lock.hpp"

namespace sluice::cli {
namespace {

std::atomic<bool> g_interrupted{false};
std::atomic<bool> g_terminated{false};

// Exit status after SIGTERM: the run was stopped, not finished; 128 + SIGTERM as a shell
// reports a process ended by it.
constexpr int kExitStopped = 128 + SIGTERM;

// SIGINT (Ctrl-C) cancels the run. SIGTERM (Slurm at a job's time limit, a system
// shutdown) only stops it: the attempts are killed and the run stays resumable.
void on_interrupt(int) {
  g_interrupted.store(true);
}

void on_terminate(int) {
  g_terminated.store(true);
}

struct RunArgs {
  std::string file;
  std::string run;
  std::string backend = "local";
  int cpus = 0;
  int gpus = -1;
  std::vector<std::string> executors;
  bool quiet = false;
  double progress_every_s = 5.0;
};

[[noreturn]] void reject(const Diagnostics& diags) {
  for (const auto& d : diags) std::fprintf(stderr, "%s\n", d.format().c_str());
  throw CliError(kExitBadInput, diags.size() == 1
                                    ? "1 error, nothing was run"
                                    : std::to_string(diags.size()) + " errors, nothing was run");
}

Workflow load_or_reject(const std::string& file) {
  auto wf = load_workflow_file(file);
  if (!wf) reject(wf.error());
  return std::move(*wf);
}

std::unique_ptr<Backend> make_backend(const RunArgs& a) {
  BackendOptions opts;
  opts.cpus = a.cpus;
  opts.gpus = a.gpus;
  opts.executors = a.executors;
  auto backend = create_backend(a.backend, opts);
  if (!backend) fail(backend.error());
  return std::move(*backend);
}

// Progress: one line rewritten in place on a terminal, a line every few seconds
// otherwise (batch logs stay readable), and always a final summary.
class Progress {
 public:
  explicit Progress(const RunArgs& a)
      : quiet_(a.quiet),
        tty_(::isatty(STDERR_FILENO) == 1),
        every_(a.progress_every_s),
        start_(std::chrono::steady_clock::now()),
        last_line_(start_) {}

  void update(const Scheduler& s, bool final) {
    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    std::string line = summary(s, elapsed);
    if (final) {
      if (tty_ && !quiet_) std::fprintf(stderr, "\r\033[K");
      std::fprintf(stderr, "%s\n", line.c_str());
      return;
    }
    if (quiet_) return;
    if (tty_) {
      std::fprintf(stderr, "\r\033[K%s", line.c_str());
      std::fflush(stderr);
    } else if (std::chrono::duration<double>(now - last_line_).count() >= every_) {
      last_line_ = now;
      std::fprintf(stderr, "%s\n", line.c_str());
    }
  }

 private:
  std::string summary(const Scheduler& s, double elapsed) const {
    const auto& c = s.counts();
    auto n = [&](TaskState st) { return c[static_cast<int>(st)]; };
    const std::size_t done = n(TaskState::kSucceeded) + n(TaskState::kFailed) +
                             n(TaskState::kCancelled) + n(TaskState::kSkipped);
    std::size_t total = 0;  // grows as attempts add dynamic children
    for (std::size_t k : c) total += k;
    char buf[320];
    std::snprintf(buf, sizeof(buf),
                  "[%7.1fs] %zu/%zu done: %zu succeeded, %zu failed, %zu skipped, %zu cancelled"
                  " | %zu running, %zu ready, %zu waiting",
                  elapsed, done, total, n(TaskState::kSucceeded), n(TaskState::kFailed),
                  n(TaskState::kSkipped), n(TaskState::kCancelled),
                  n(TaskState::kRunning) + n(TaskState::kQueued), n(TaskState::kReady),
                  n(TaskState::kWaiting));
    std::string line = buf;
    if (done > 0 && done < total && elapsed > 1.0) {
      const double eta = elapsed / static_cast<double>(done) * static_cast<double>(total - done);
      std::snprintf(buf, sizeof(buf), " | eta %.0fs", eta);
      line += buf;
    }
    return line;
  }

  bool quiet_, tty_;
  double every_;
  std::chrono::steady_clock::time_point start_, last_line_;
};

int coordinate(RunStore& store, Backend& backend, Workflow& wf, const RunRecord& run,
               bool resume, const RunArgs& a) {
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
  ::signal(SIGPIPE, SIG_IGN);

  Progress progress(a);
  CoordinatorOptions opts;
  opts.interrupt = &g_interrupted;
  opts.stop = &g_terminated;
  opts.on_progress = [&](const Scheduler& s, bool final) { progress.update(s, final); };
  auto state = coord.run(opts);
  if (!state) fail(state.error());
  if (*state == RunState::kRunning) {
    std::printf("run %s stopped (SIGTERM): running attempts were killed; "
                "continue it with `sluice resume %s`\n",
                run.id.c_str(), run.id.c_str());
    return kExitStopped;
  }
  std::printf("run %s %s\n", run.id.c_str(), std::string(to_string(*state)).c_str());
  return *state == RunState::kSucceeded ? kExitOk : kExitFailed;
}

int cmd_run(const Globals& g, const RunArgs& a) {
  Workflow wf = load_or_reject(a.file);
  auto backend = make_backend(a);
  if (auto d = check_against_capacity(wf, backend->capacity()); !d.empty()) reject(d);

  auto store = open_store(g, RunStore::Mode::kReadWrite);
  auto revision = store->register_workflow(wf);
  if (!revision) fail(revision.error());
  auto run = store->create_run(wf, *revision, new_run_id(), backend->name());
  if (!run) fail(run.error());
  std::printf("run %s %s:%s:%d (%zu tasks, backend %s, %d cpus, %d gpus)\n", run->id.c_str(),
              wf.project.c_str(), wf.name.c_str(), *revision, wf.tasks.size(),
              backend->name().c_str(), backend->capacity().cpus, backend->capacity().gpus);
  std::fflush(stdout);
  return coordinate(*store, *backend, wf, *run, false, a);
}

int cmd_validate(const Globals&, const RunArgs& a) {
  Workflow wf = load_or_reject(a.file);
  auto backend = make_backend(a);
  if (auto d = check_against_capacity(wf, backend->capacity()); !d.empty()) reject(d);
  std::printf("%s: ok, workflow %s:%s with %zu tasks\n", a.file.c_str(), wf.project.c_str(),
              wf.name.c_str(), wf.tasks.size());
  return kExitOk;
}

int cmd_resume(const Globals& g, RunArgs a) {
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
  auto wf = load_workflow_text(*text, run.source_path, run.base_dir);
  if (!wf) reject(wf.error());
  if (wf->content_hash != run.content_hash)
    throw CliError(kExitInternal,
                   "stored definition of run " + run.id + " does not match its hash");
  a.backend = run.backend;
  auto backend = make_backend(a);
  std::printf("run %s resumed\n", run.id.c_str());
  std::fflush(stdout);
  return coordinate(*store, *backend, *wf, run, true, a);
}

void add_backend_options(CLI::App* cmd, RunArgs& a) {
  cmd->add_option("--backend", a.backend, "where attempts execute (local)");
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
  run->add_option("--progress-every", a.progress_every_s,
                  "seconds between progress lines when not on a terminal");
  run->callback([&] { g_exit_code = cmd_run(g, a); });

  auto* validate = app.add_subcommand("validate", "check a workflow file without running it");
  validate->add_option("file", a.file, "workflow file (TOML)")->required();
  add_backend_options(validate, a);
  validate->callback([&] { g_exit_code = cmd_validate(g, a); });

  auto* resume = app.add_subcommand("resume", "finish a run whose coordinator stopped");
  resume->add_option("run", a.run, "run id or unique prefix")->required();
  resume->add_option("--cpus", a.cpus, "cpu slots (default: all cores)");
  resume->add_option("--gpus", a.gpus, "GPUs to hand out (default: detected)");
  resume->add_flag("-q,--quiet", a.quiet, "no live progress, only the final summary");
  resume->callback([&] { g_exit_code = cmd_resume(g, a); });
}

}  // namespace sluice::cli
