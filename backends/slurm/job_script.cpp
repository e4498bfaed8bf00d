#include "job_script.hpp"

#include "sluice/engine/attempt_logs.hpp"

namespace sluice::slurm {
namespace {

void header(std::string& s, const SubmitRequest& job) {
  s += "#!/bin/bash\n";
  s += "#SBATCH --job-name=" + shell_quote(job.name) + "\n";
  if (!job.comment.empty()) s += "#SBATCH --comment=" + shell_quote(job.comment) + "\n";
  s += "#SBATCH --chdir=" + shell_quote(job.workdir) + "\n";
  s += "#SBATCH --output=" + shell_quote(job.output) + "\n";
  s += "#SBATCH --error=" + shell_quote(job.error) + "\n";
  if (!job.array.empty()) s += "#SBATCH --array=" + job.array + "\n";
  for (const auto& o : resource_options(job)) s += "#SBATCH " + o + "\n";
}

// The exit-status record as a printf format: \037 is kExitTrailer's first byte.
std::string trailer_format() {
  std::string f = "\\037";
  f += kExitTrailer.substr(1);
  return f + "%d\\n";
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

std::string attempt_body(const LaunchRequest& req, const SubmitRequest& job,
                         const std::string& path_first) {
  std::string s;
  s += "# sluice: task " + req.spec->name + ", attempt " + std::to_string(req.attempt) +
       ". Print it again with: sluice job-script RUN " + req.spec->name + " --attempt " +
       std::to_string(req.attempt) + "\n";
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
  // The job's own record of its status, for when slurmctld has forgotten the job.
  s += "printf '" + trailer_format() + "' \"$status\" >&2\n";
  s += "exit \"$status\"\n";
  return s;
}

std::string attempt_script(const SubmitRequest& job, const std::string& body) {
  std::string s;
  header(s, job);
  return s + body;
}

std::string array_script(const SubmitRequest& job, const std::vector<std::string>& dirs,
                         const std::vector<std::string>& bodies) {
  std::string s;
  header(s, job);
  s += "# sluice: one element per attempt, each with its output in its attempt directory\n";
  s += "case \"$SLURM_ARRAY_TASK_ID\" in\n";
  for (std::size_t i = 0; i < dirs.size(); ++i)
    s += std::to_string(i) + ") d=" + shell_quote(dirs[i]) + " ;;\n";
  s += "*) echo \"no attempt for array index $SLURM_ARRAY_TASK_ID\" >&2; exit 1 ;;\nesac\n";
  s += "exec >\"$d/stdout\" 2>\"$d/stderr\" || exit 1\n";
  s += "case \"$SLURM_ARRAY_TASK_ID\" in\n";
  for (std::size_t i = 0; i < bodies.size(); ++i)
    s += std::to_string(i) + ")\n" + bodies[i] + ";;\n";
  s += "esac\n";
  return s;
}

std::string script_for_element(const std::string& script, const std::string& index) {
  if (index == "-") return script;
  const std::string flag = "\n#SBATCH --array=";
  const auto at = script.find(flag);
  if (at == std::string::npos) return script;
  const auto end = script.find('\n', at + 1);
  return script.substr(0, at) + flag + index + script.substr(end);
}

}  // namespace sluice::slurm
