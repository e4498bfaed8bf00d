#include "job_script.hpp"

namespace sluice::slurm {
namespace {

void header(std::string& s, const SubmitRequest& job) {
  s += "#!/bin/bash\n";
  s += "#SBATCH --job-name=" + shell_quote(job.name) + "\n";
  s += "#SBATCH --chdir=" + shell_quote(job.workdir) + "\n";
  s += "#SBATCH --output=" + shell_quote(job.output) + "\n";
  s += "#SBATCH --error=" + shell_quote(job.error) + "\n";
  if (!job.array.empty()) s += "#SBATCH --array=" + job.array + "\n";
  for (const auto& o : resource_options(job)) s += "#SBATCH " + o + "\n";
}

}  // namespace

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char ch : s) {
    if (ch == '\'')
      out += "'\\''";
    else
      out += ch;
  }
  return out + "'";
}

std::vector<std::string> resource_options(const SubmitRequest& r) {
  std::vector<std::string> o;
  o.push_back("--cpus-per-task=" + std::to_string(r.cpus));
  if (r.gpus > 0) o.push_back("--gres=gpu:" + std::to_string(r.gpus));
  if (r.mem_mib > 0) o.push_back("--mem=" + std::to_string(r.mem_mib) + "M");
  if (r.time_min > 0) o.push_back("--time=" + std::to_string(r.time_min));
  auto add = [&](const char* flag, const std::string& v) {
    if (!v.empty()) o.push_back(std::string(flag) + "=" + v);
  };
  add("--partition", r.partition);
  add("--account", r.account);
  add("--qos", r.qos);
  add("--constraint", r.constraint);
  add("--reservation", r.reservation);
  for (const auto& e : r.extra) o.push_back(e);
  return o;
}

std::string attempt_script(const LaunchRequest& req, const SubmitRequest& job,
                           const std::string& path_first) {
  std::string s;
  header(s, job);
  s += "# sluice: task " + req.spec->name + ", attempt " + std::to_string(req.attempt) +
       ". Resubmit by hand with: sbatch job.sh\n";
  s += "cd " + shell_quote(job.workdir) + " || exit 1\n";
  for (const auto& [k, v] : req.spec->env) s += "export " + k + "=" + shell_quote(v) + "\n";
  for (const auto& [k, v] : req.env) s += "export " + k + "=" + shell_quote(v) + "\n";
  s += "export PATH=" + shell_quote(path_first) + ":\"$PATH\"\n";
  const std::string& shell = req.shell ? *req.shell : req.spec->shell;
  const std::vector<std::string>& argv = req.command ? *req.command : req.spec->command;
  if (!shell.empty()) {
    s += "/bin/sh -c " + shell_quote(shell) + "\n";
  } else {
    for (std::size_t i = 0; i < argv.size(); ++i) s += (i ? " " : "") + shell_quote(argv[i]);
    s += "\n";
  }
  s += "status=$?\n";
  s += "echo \"$status\" > " + shell_quote(req.attempt_dir + "/exit_status") + "\n";
  s += "exit \"$status\"\n";
  return s;
}

std::string array_script(const SubmitRequest& job, const std::vector<std::string>& dirs) {
  std::string s;
  header(s, job);
  s += "# sluice: one element per attempt; each attempt directory holds its own job.sh\n";
  s += "case \"$SLURM_ARRAY_TASK_ID\" in\n";
  for (std::size_t i = 0; i < dirs.size(); ++i)
    s += std::to_string(i) + ") d=" + shell_quote(dirs[i]) + " ;;\n";
  s += "*) echo \"no attempt for array index $SLURM_ARRAY_TASK_ID\" >&2; exit 1 ;;\nesac\n";
  s += "exec >\"$d/stdout\" 2>\"$d/stderr\"\n";
  s += "exec /bin/bash \"$d/job.sh\"\n";
  return s;
}

}  // namespace sluice::slurm
