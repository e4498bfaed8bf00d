// The sluice subcommands. Each registers its options on the CLI11 app; main() wires
// them together. Commands throw CliError; they return the process exit code.
#pragma once

#include <CLI/CLI.hpp>

#include <map>
#include <string>

#include "cli.hpp"
#include "sluice/config.hpp"

namespace sluice::cli {

void add_run_commands(CLI::App& app, Globals& g);       // run, validate, resume
void add_query_commands(CLI::App& app, Globals& g);     // ps, psw, pss, psf, get, logs
void add_manage_commands(CLI::App& app, Globals& g);    // cancel, remove, removeall
void add_data_commands(CLI::App& app, Globals& g);      // put, results, artifacts
void add_children_commands(CLI::App& app, Globals& g);  // add-child
void add_cache_commands(CLI::App& app, Globals& g);     // cache list, cache prune

// `sluice run --dry-run FILE`: which tasks would run, which come from the cache, and why.
int cmd_dry_run(const Globals& g, const std::string& file, bool no_cache);
void add_graph_commands(CLI::App& app, Globals& g);   // graph
void add_report_commands(CLI::App& app, Globals& g);  // report
void add_watch_commands(CLI::App& app, Globals& g);   // watch
void add_doctor_command(CLI::App& app, Globals& g);   // doctor
void add_config_commands(CLI::App& app, Globals& g);  // config save, list, show
void add_slurm_commands(CLI::App& app, Globals& g);   // sbatch, job-script
void add_pilot_commands(CLI::App& app, Globals& g);   // worker, workers

// Configuration `name` as Config::find() gives it (sluice/config.hpp); throws CliError
// (exit 2) for an unsafe name, one that does not exist or a malformed file.
Config load_config(const Globals& g, const std::string& name);
void add_workflows_commands(CLI::App& app, Globals& g);  // workflows

// `sluice get PARENT KEY` inside a task: prints a parent's value.
int cmd_get_input(const std::string& parent, const std::string& key, bool as_json);

// Set by the command that ran; main() returns it.
extern int g_exit_code;

}  // namespace sluice::cli
