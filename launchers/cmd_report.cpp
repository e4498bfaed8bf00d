// `sluice report RUN -o report.html`: one self-contained HTML page about a run (see
// report_html.hpp). Works while the run goes on: it shows the run as it is now.
#include <cstdio>
#include <fstream>

#include "commands.hpp"
#include "nested_runs.hpp"
#include "report_data.hpp"
#include "report_html.hpp"

namespace sluice::cli {
namespace {

struct ReportArgs {
  std::string run;
  std::string output;
  bool json = false;
};

int cmd_report(const Globals& g, const ReportArgs& a) {
  auto store = open_store(g, RunStore::Mode::kReadOnly);
  RunRecord run = find_run(*store, a.run);
  auto view = load_run_view(*store, run.id);
  if (!view) fail(view.error());
  nlohmann::json data = report_json(*view, *store, now_us());
  data["nested_runs"] = nested_runs_json(nested_runs(*store, run.id));  // sub-workflow runs
  const std::string text =
      a.json ? data.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n"
             : render_report_html(data);
  // --json without -o writes report-RUN.json: never JSON into a file named .html.
  const std::string path =
      a.output.empty() ? "report-" + run.id + (a.json ? ".json" : ".html") : a.output;
  if (path == "-") {
    std::fwrite(text.data(), 1, text.size(), stdout);
    return kExitOk;
  }
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) throw CliError(kExitInternal, "cannot write " + path);
  std::printf("wrote %s (%zu bytes, %zu tasks)\n", path.c_str(), text.size(), view->tasks.size());
  return kExitOk;
}

}  // namespace

void add_report_commands(CLI::App& app, Globals& g) {
  static ReportArgs a;
  auto* cmd = app.add_subcommand("report", "write a self-contained HTML report of a run");
  cmd->add_option("run", a.run, "run id (or unique prefix) or workflow id")->required();
  cmd->add_option(
      "-o,--output", a.output,
      "file to write (default report-RUN.html, with --json report-RUN.json; - for stdout)");
  cmd->add_flag("--json", a.json, "write the report's data as JSON instead of HTML");
  cmd->callback([&g] { g_exit_code = cmd_report(g, a); });
}

}  // namespace sluice::cli
