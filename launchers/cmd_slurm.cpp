// `sluice sbatch FILE`: the coordinator itself as a Slurm job, so a long run survives
// the login session. The run id is made here and handed to `sluice run --run-id`, so it
// is known (printed) before the job even starts.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "commands.hpp"
#include "job_script.hpp"
#include "sluice/engine/capture.hpp"
#include "sluice/engine/host_info.hpp"
#include "sluice/engine/loader.hpp"
#include "sluice/engine/run_id.hpp"
#include "slurm_parse.hpp"
#include "submit_log.hpp"
#include "task_view.hpp"

namespace sluice::cli {
namespace {

namespace fs = std::filesystem;

struct SbatchArgs {
  std::string file;
  std::string config;
  bool dry_run = false;
  std::vector<std::string> sbatch;  // after `--`
};

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string self_exe() {
  std::string path = self_executable();
  return path.empty() ? "sluice" : path;
}

int cmd_sbatch(const Globals& g, const SbatchArgs& a) {
  auto wf = load_workflow_file(a.file);
  if (!wf) {
    for (const auto& d : wf.error()) std::fprintf(stderr, "%s\n", d.format().c_str());
    throw CliError(kExitBadInput, "the workflow has errors, nothing was submitted");
  }
  // The configuration exists and its options are valid: checked here, not in the job.
  if (!a.config.empty())
    if (auto options = load_config(g, a.config).backend_options(); !options)
      throw CliError(kExitBadInput, options.error().message);
  const std::string run_id = new_run_id();
  const std::string file = fs::absolute(a.file).lexically_normal().string();
  const std::string log_dir = g.home + "/coordinators";
  std::string s = "#!/bin/bash\n";
  s += "#SBATCH --job-name=" + quote("sluice-coordinator:" + wf->name) + "\n";
  s += "#SBATCH --cpus-per-task=1\n#SBATCH --mem=1G\n";
  s += "#SBATCH --output=" + quote(log_dir + "/" + run_id + ".out") + "\n";
  s += "#SBATCH --chdir=" + quote(fs::current_path().string()) + "\n";
  for (const auto& o : a.sbatch) s += "#SBATCH " + o + "\n";
  s += "# sluice: run " + run_id + " of " + file + "; its tasks are Slurm jobs of their own\n";
  s += "exec " + quote(self_exe()) + " --home " + quote(g.home) + " run " + quote(file) +
       " --run-id " + run_id + " --progress-every 30";
  s += a.config.empty() ? " --backend slurm" : " --config " + quote(a.config);
  s += "\n";
  if (a.dry_run) {
    std::fputs(s.c_str(), stdout);
    return kExitOk;
  }
  std::error_code ec;
  fs::create_directories(log_dir, ec);
  const std::string path = log_dir + "/" + run_id + ".sh";
  std::ofstream(path) << s;
  // One try: a submission that timed out may have gone through (see cli_driver.cpp).
  const std::vector<std::string> argv{"sbatch", "--parsable", path};
  const auto timeout = std::chrono::seconds(60);
  auto r = capture_output(argv, timeout);
  if (!r) throw CliError(kExitInternal, r.error().message + " (script: " + path + ")");
  if (!r->ok()) {
    std::string why = describe_outcome(argv, *r, timeout) + " (script: " + path + ")";
    if (r->timed_out) why += "; check squeue before submitting again";
    throw CliError(kExitInternal, why);
  }
  auto job = slurm::parse_sbatch_output(r->out);
  if (!job) throw CliError(kExitInternal, job.error().message + " (script: " + path + ")");
  std::printf("job %s\nrun %s\n", job->c_str(), run_id.c_str());
  return kExitOk;
}

struct JobScriptArgs {
  std::string run, task;
  unsigned attempt = 0;
};

// The script a Slurm job of the run ran for the attempt, as `sbatch` takes it again: an
// array's script runs only the attempt's element. From the run's submission log; an
// older home kept it as job.sh in the attempt directory.
int cmd_job_script(const Globals& g, const JobScriptArgs& a) {
  auto store = open_store(g, RunStore::Mode::kReadOnly);
  RunRecord run = find_run(*store, a.run);
  auto tasks = store->list_tasks(run.id);
  if (!tasks) fail(tasks.error());
  const TaskRecord& task = find_task(*tasks, run, a.task);
  if (task.attempts == 0) throw CliError(kExitBadInput, why_no_attempt(run, task));
  const unsigned attempt = a.attempt ? a.attempt : task.attempts;
  const std::string dir = store->attempt_dir(run.id, task.name, attempt);
  const slurm::SubmitLog log(store->run_dir(run.id), true);
  if (const slurm::Submission* s = log.find(dir); s && !s->name.empty()) {
    std::fputs(slurm::script_for_element(s->script, s->index).c_str(), stdout);
    return kExitOk;
  }
  std::ifstream legacy(dir + "/job.sh", std::ios::binary);
  if (legacy) {
    std::printf("%s", std::string(std::istreambuf_iterator<char>(legacy), {}).c_str());
    return kExitOk;
  }
  throw CliError(kExitBadInput, "attempt " + std::to_string(attempt) + " of task '" + task.name +
                                    "' was not submitted as a Slurm job of its own");
}

}  // namespace

void add_slurm_commands(CLI::App& app, Globals& g) {
  static JobScriptArgs js;
  auto* script = app.add_subcommand(
      "job-script",
      "print the batch script a task's Slurm job ran (resubmit with: sluice job-script RUN "
      "TASK | sbatch)");
  script->add_option("run", js.run, "run id (or unique prefix) or workflow id")->required();
  script->add_option("task", js.task, "task name")->required();
  script->add_option("--attempt", js.attempt, "attempt number (default: the latest)");
  script->callback([&g] { g_exit_code = cmd_job_script(g, js); });

  static SbatchArgs a;
  auto* sb = app.add_subcommand(
      "sbatch", "run a workflow's coordinator as a Slurm job: sluice sbatch FILE [-- sbatch opts]");
  sb->add_option("file", a.file, "workflow file (TOML)")->required();
  sb->add_option("--config", a.config,
                 "saved configuration for the run (default: --backend slurm)");
  sb->add_flag("--dry-run", a.dry_run, "print the batch script, submit nothing");
  sb->add_option("sbatch", a.sbatch, "options for the coordinator's own job (after --)");
  sb->callback([&] { g_exit_code = cmd_sbatch(g, a); });
}

}  // namespace sluice::cli
