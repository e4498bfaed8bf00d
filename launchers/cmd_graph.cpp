// `sluice graph FILE|RUN`: the DAG as Graphviz dot, Mermaid or SVG (through Graphviz's
// `dot`, run as a child process), tasks coloured by state for a run.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "commands.hpp"
#include "graph_view.hpp"

extern char** environ;

namespace sluice::cli {
namespace {

struct GraphArgs {
  std::string target;
  std::string format = "dot";
  std::string output;
  bool expand = false;
  std::size_t expand_up_to = kDefaultExpandUpTo;
};

std::string find_on_path(const std::string& exe) {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= p.size()) {
    std::size_t end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    std::string cand = p.substr(start, end - start) + "/" + exe;
    if (::access(cand.c_str(), X_OK) == 0) return cand;
    start = end + 1;
  }
  return "";
}

void write_output(const std::string& text, const std::string& path) {
  if (path.empty() || path == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return;
  }
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw CliError(kExitInternal, "cannot write " + path);
}

// Renders dot text to SVG with Graphviz: `dot -Tsvg IN [-o OUT]`.
void write_svg(const std::string& dot_text, const std::string& path) {
  const std::string dot = find_on_path("dot");
  if (dot.empty())
    throw CliError(kExitBadInput,
                   "--format svg needs Graphviz's `dot`, which is not on PATH: install it "
                   "(Debian/Ubuntu: apt-get install graphviz) or use --format dot|mermaid");
  char tmpl[] = "/tmp/sluice-graph-XXXXXX";
  const int fd = ::mkstemp(tmpl);
  if (fd < 0) throw CliError(kExitInternal, "cannot create a temporary file");
  ::close(fd);
  write_output(dot_text, tmpl);
  std::vector<std::string> args{dot, "-Tsvg", tmpl};
  if (!path.empty() && path != "-") {
    args.push_back("-o");
    args.push_back(path);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(stdout);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, dot.c_str(), nullptr, nullptr, argv.data(), environ);
  int status = 0;
  if (rc == 0) ::waitpid(pid, &status, 0);
  std::filesystem::remove(tmpl);
  if (rc != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw CliError(kExitInternal, "Graphviz `dot -Tsvg` failed");
}

int cmd_graph(const Globals& g, const GraphArgs& a) {
  RunView view;
  std::string title;
  if (std::filesystem::is_regular_file(a.target)) {
    auto v = load_file_view(a.target);
    if (!v) fail(v.error());
    view = std::move(*v);
    title = view.project + ":" + view.workflow;
  } else {
    auto store = open_store(g, RunStore::Mode::kReadOnly);
    RunRecord run = find_run(*store, a.target);
    auto v = load_run_view(*store, run.id);
    if (!v) fail(v.error());
    view = std::move(*v);
    title = run.workflow_id() + " run " + run.id + " (" + std::string(to_string(run.state)) + ")";
  }
  const FoldedGraph graph = fold_graph(view, a.expand_up_to, a.expand);
  if (a.format == "mermaid")
    write_output(render_mermaid(graph), a.output);
  else if (a.format == "svg")
    write_svg(render_dot(graph, title), a.output);
  else
    write_output(render_dot(graph, title), a.output);
  return kExitOk;
}

}  // namespace

void add_graph_commands(CLI::App& app, Globals& g) {
  static GraphArgs a;
  auto* cmd = app.add_subcommand("graph", "draw a workflow file's or a run's task graph");
  cmd->add_option("target", a.target, "workflow file, run id (or unique prefix) or workflow id")
      ->required();
  cmd->add_option("--format", a.format, "dot, mermaid or svg (svg needs Graphviz)")
      ->check(CLI::IsMember({"dot", "mermaid", "svg"}));
  cmd->add_option("-o,--output", a.output, "write here instead of stdout");
  cmd->add_flag("--expand", a.expand, "one node per task, however large a group is");
  cmd->add_option("--expand-up-to", a.expand_up_to,
                  "groups of at most this many tasks keep a node per task (default 12)");
  cmd->callback([&g] { g_exit_code = cmd_graph(g, a); });
}

}  // namespace sluice::cli
