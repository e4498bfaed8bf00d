// The `sluice` command line. Exit codes: 0 ok, 1 the workflow failed, 2 bad input,
// 3 internal error (store, operating system).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string_view>

#include "commands.hpp"
#include "inproc_commands.hpp"
#include "local_backend.hpp"
#include "nested_runs.hpp"
#include "sluice/engine/printable.hpp"
#ifdef SLUICE_WITH_MPI
#include "mpi_backend.hpp"
#endif
#ifdef SLUICE_HAVE_SLURM_BACKEND
#include "pilot_backend.hpp"
#include "slurm_backend.hpp"
#endif

namespace sluice::cli {
int g_exit_code = kExitOk;
}  // namespace sluice::cli

namespace {

using AddCommands = void (*)(CLI::App&, sluice::cli::Globals&);

// The commands a task calls, often thousands of times a run (`sluice put` in each child
// of a map-reduce): their process builds only its own group of commands, not the whole
// tree (building and destroying every command's options was ~15% of `sluice put`).
// Only when the command comes first, so `--home DIR` can never be taken for it.
AddCommands helper_group(int argc, char** argv) {
  using namespace sluice::cli;
  if (argc < 2) return nullptr;
  const std::string_view first = argv[1];
  if (first == "put" || first == "inputs" || first == "results" || first == "artifacts")
    return add_data_commands;
  if (first == "get") return add_query_commands;
  if (first == "add-child") return add_children_commands;
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sluice::cli;
  sluice::register_local_backend();
  register_inproc_for_commands();  // command tasks: run as local processes
#ifdef SLUICE_WITH_MPI
  sluice::register_mpi_backend();  // in `sluice`: re-executes as `sluice-mpi`
#endif
#ifdef SLUICE_HAVE_SLURM_BACKEND
  sluice::register_slurm_backend();
  sluice::register_pilot_backend();  // `slurm` with mode = pilot | auto, and `pilot`
#endif

  CLI::App app{"Sluice: workflows of tasks on your laptop, Slurm clusters and MPI ranks", "sluice"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "sluice 0.1.0");
  Globals g;
  std::string home_flag;
  app.add_option("--home", home_flag, "Sluice home (default: $SLUICE_HOME or ./.sluice)")
      ->envname("SLUICE_HOME");
  app.parse_complete_callback([&] {
    g.home = sluice::sluice_home(home_flag);
    follow_nested_run(app, g);  // a sub-workflow's run id, given with the outer home
  });

  if (auto* group = helper_group(argc, argv)) {
    group(app, g);
  } else {
    add_run_commands(app, g);
    add_query_commands(app, g);
    add_manage_commands(app, g);
    add_data_commands(app, g);
    add_children_commands(app, g);
    add_cache_commands(app, g);
    add_graph_commands(app, g);
    add_report_commands(app, g);
    add_watch_commands(app, g);
    add_doctor_command(app, g);
    add_config_commands(app, g);
    add_slurm_commands(app, g);
    add_pilot_commands(app, g);
    add_workflows_commands(app, g);
  }
  // --home is accepted after the subcommand too: `sluice ps --home DIR`.
  for (auto* sub : app.get_subcommands({}))
    sub->add_option("--home", home_flag, "Sluice home (default: $SLUICE_HOME or ./.sluice)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : kExitBadInput;
  } catch (const CliError& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "sluice: %s\n", sluice::printable(e.what(), true).c_str());
    return e.code;
  }
  return g_exit_code;
}
