// `sluice add-child`: inside a running attempt, ask for a child task. The request is a
// file in the attempt directory; the coordinator adds the child when the attempt
// succeeds (see core/include/sluice/children.hpp).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "commands.hpp"
#include "sluice/duration.hpp"
#include "sluice/engine/child_request.hpp"

namespace sluice::cli {
namespace {

struct AddChildArgs {
  std::string name, before, executor, memory, max_exec_time, max_wait_time, workdir, version;
  std::string shell, spec_file;
  int cpus = 1, gpus = 0, retries = 0;
  std::vector<std::string> env;
  std::vector<std::string> command;
};

std::string current_dir() {
  char buf[4096];
  return ::getcwd(buf, sizeof buf) ? buf : "/";
}

[[noreturn]] void bad(const std::string& why) {
  throw CliError(kExitBadInput, why);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) bad("cannot read " + path);
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

// The request text from --spec, with --before filled in where the file names none.
std::string spec_text(const AddChildArgs& a) {
  std::string text = read_file(a.spec_file);
  auto parsed = parse_child_requests(text, a.spec_file, current_dir());
  if (!parsed) {
    for (const auto& d : parsed.error()) std::fprintf(stderr, "%s\n", d.format().c_str());
    bad(a.spec_file + ": not a valid child request, nothing was added");
  }
  if (a.before.empty() && a.name.empty()) return text;
  // Re-written one task at a time so --before / --name apply; workdirs are absolute now.
  if (!a.name.empty() && parsed->size() != 1)
    bad("--name needs a spec with exactly one task (this one has " +
        std::to_string(parsed->size()) + ")");
  std::string out;
  for (ChildRequest& c : *parsed) {
    if (c.before.empty()) c.before = a.before;
    if (!a.name.empty()) c.spec.name = a.name;
    out += child_request_text(c);
  }
  return out;
}

std::string flags_text(const AddChildArgs& a) {
  if (a.name.empty()) bad("add-child needs --name NAME (or --spec FILE)");
  if (a.command.empty() == a.shell.empty())
    bad("add-child needs a command after '--' or --shell STRING (exactly one)");
  ChildRequest c;
  c.before = a.before;
  TaskSpec& s = c.spec;
  s.name = a.name;
  s.command = a.command;
  s.shell = a.shell;
  s.cpus = a.cpus;
  s.gpus = a.gpus;
  s.retries = a.retries;
  s.executor = a.executor;
  s.version = a.version;
  if (!a.memory.empty()) {
    auto mib = parse_memory_mib(a.memory);
    if (!mib) bad("--memory: not a size: " + a.memory + " (use 512M, 4G)");
    s.memory_mib = *mib;
  }
  auto duration = [&](const std::string& flag, const std::string& text, Millis& out) {
    if (text.empty()) return;
    auto d = parse_duration(text);
    if (!d) bad(flag + ": not a duration: " + text + " (use 90s, 10m, 2h)");
    out = *d;
  };
  duration("--max-exec-time", a.max_exec_time, s.max_exec_time);
  duration("--max-wait-time", a.max_wait_time, s.max_wait_time);
  for (const auto& kv : a.env) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) bad("--env wants NAME=VALUE, got '" + kv + "'");
    s.env.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  // Relative paths mean "relative to where add-child ran", as on any command line.
  s.workdir = a.workdir.empty()          ? current_dir()
              : a.workdir.front() == '/' ? a.workdir
                                         : current_dir() + "/" + a.workdir;
  std::string text = child_request_text(c);
  auto parsed = parse_child_requests(text, "add-child", current_dir());
  if (!parsed) {
    std::string why = parsed.error().front().message;
    bad("child '" + a.name + "': " + why);
  }
  return text;
}

int cmd_add_child(const AddChildArgs& a) {
  const char* dir = std::getenv("SLUICE_ATTEMPT_DIR");
  if (dir == nullptr || *dir == '\0')
    bad("add-child runs inside a task started by Sluice (SLUICE_ATTEMPT_DIR is not set)");
  const std::string text = a.spec_file.empty() ? flags_text(a) : spec_text(a);
  auto written = write_child_request(dir, text);
  if (!written) fail(written.error());
  return kExitOk;
}

}  // namespace

void add_children_commands(CLI::App& app, Globals&) {
  static AddChildArgs a;
  auto* cmd = app.add_subcommand(
      "add-child",
      "inside a task: add a child task to the run when this attempt succeeds\n"
      "  sluice add-child --name NAME [--before DOWNSTREAM] [options] -- COMMAND ARGS...\n"
      "  sluice add-child --spec FILE.toml [--before DOWNSTREAM]");
  cmd->add_option("--name", a.name, "the child's task name (unique in the run)");
  cmd->add_option("--before", a.before,
                  "a task downstream of this one that must wait for the child and receive "
                  "its artifact as an input");
  cmd->add_option("--spec", a.spec_file,
                  "a TOML file of [tasks.NAME] tables written like a workflow's tasks");
  cmd->add_option("--shell", a.shell, "run this string with /bin/sh -c instead of a command");
  cmd->add_option("--cpus", a.cpus, "cpu slots")->check(CLI::Range(1, 4096));
  cmd->add_option("--gpus", a.gpus, "GPUs")->check(CLI::Range(0, 256));
  cmd->add_option("--memory", a.memory, "memory (512M, 4G)");
  cmd->add_option("--executor", a.executor, "executor label (cpu, gpu, …)");
  cmd->add_option("--retries", a.retries, "extra attempts after a failure")
      ->check(CLI::Range(0, 100));
  cmd->add_option("--max-exec-time", a.max_exec_time, "kill an attempt running longer");
  cmd->add_option("--max-wait-time", a.max_wait_time, "fail if it cannot start within");
  cmd->add_option("--env", a.env, "NAME=VALUE for the child's environment (repeatable)");
  cmd->add_option("--workdir", a.workdir, "working directory (default: the current one)");
  cmd->add_option("--version", a.version, "task version (default 1)");
  cmd->add_option("command", a.command, "the command and its arguments, after '--'");
  cmd->callback([] { g_exit_code = cmd_add_child(a); });
}

}  // namespace sluice::cli
