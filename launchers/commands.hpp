// The sluice subcommands. Each registers its options on the CLI11 app; main() wires
// them together. Commands throw CliError; they return the process exit code.
#pragma once

#include <CLI/CLI.hpp>

#include "cli.hpp"

namespace sluice::cli {

void add_run_commands(CLI::App& app, Globals& g);     // run, validate, resume
void add_query_commands(CLI::App& app, Globals& g);   // ps, psw, pss, psf, get, logs
void add_manage_commands(CLI::App& app, Globals& g);  // cancel, remove, removeall
void add_data_commands(CLI::App& app, Globals& g);    // put, results, artifacts
void add_children_commands(CLI::App& app, Globals& g);  // add-child
void add_workflows_commands(CLI::App& app, Globals& g);  // workflows

// `sluice get PARENT KEY` inside a task: prints a parent's value.
int cmd_get_input(const std::string& parent, const std::string& key, bool as_json);

// Set by the command that ran; main() returns it.
extern int g_exit_code;

}  // namespace sluice::cli
