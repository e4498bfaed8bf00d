// Config: a named runtime configuration — which backend runs a workflow and its
// settings — so the same program runs on a laptop or a cluster by name:
// `./app run --config gpu-nodes`.
//
// Built in: "inproc" (threads of this process; the fastest for C++ function tasks) and
// "local" (one process per attempt on this machine). Saved ones are TOML files looked
// up as SLUICE_HOME/configs/NAME.toml, then ~/.config/sluice/NAME.toml:
//
//   backend = "local"
//   cpus = "8"              # any other key is a backend option (a string)
//   [options]               # options may also sit in a table
//   executors = "cpu,gpu"
//
// Options every backend understands: cpus, gpus, executors (comma-separated labels);
// the rest go to the backend in BackendOptions::extra. Each backend documents its keys
// in an options table (`sluice config show NAME`, `sluice doctor`); an unknown key or a
// malformed value is an error when the configuration is used.
//
// This is the one place that knows where configurations and the home live: the `sluice`
// command line and programs built with the SDK both use it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "sluice/error.hpp"

namespace sluice {

// Settings common to all backends; backend-specific ones travel in `extra`.
struct BackendOptions {
  int cpus = 0;                        // 0: the backend decides (local: all cores)
  int gpus = -1;                       // -1: detect
  std::vector<std::string> executors;  // empty: accept every label
  std::map<std::string, std::string> extra;
};

struct Config {
  std::string name;
  std::string backend;
  std::map<std::string, std::string> options;

  // The built-in configuration `name`, or kNotFound.
  static Expected<Config> builtin(const std::string& name);
  // A saved configuration (see above) or a built-in one. `home` "" means $SLUICE_HOME,
  // else ./.sluice. kNotFound lists the places searched; kInvalidInput for a bad file.
  static Expected<Config> find(const std::string& name, const std::string& home = "");
  // Same, throwing the error as sluice::Error (for programs).
  static Config load(const std::string& name, const std::string& home = "");
  // Parses a configuration file's text.
  static Expected<Config> parse(const std::string& name, const std::string& toml_text);

  // Writes HOME/configs/NAME.toml (the directory is created).
  Expected<void> save(const std::string& home = "") const;
  // Deletes HOME/configs/NAME.toml; kNotFound when there is none.
  static Expected<void> remove(const std::string& name, const std::string& home = "");
  // The saved configurations' names in HOME/configs, sorted.
  static std::vector<std::string> list(const std::string& home = "");
  // Every name find() can load, sorted, each once: saved in HOME/configs, in
  // ~/.config/sluice, and the built-ins.
  static std::vector<std::string> list_all(const std::string& home = "");
  // Where find() takes `name` from: the file's path, "built-in", or "" for none.
  static std::string source(const std::string& name, const std::string& home = "");

  // `options` checked against the backend's options table (when that backend is
  // registered in this program) and parsed: cpus, gpus and executors in their fields,
  // the rest in `extra`. kInvalidInput for an unknown key or a malformed value, naming
  // the configuration and listing the backend's valid keys.
  Expected<BackendOptions> backend_options() const;
};

// The Sluice home: `flag` if set, else $SLUICE_HOME, else ./.sluice; made absolute.
std::string sluice_home(const std::string& flag = "");

// Where saved configurations live: HOME/configs (HOME resolved as sluice_home()).
std::string config_dir(const std::string& home = "");

// Whether `name` may name a saved configuration: letters, digits, '_', '-' and '.', not
// starting with '.' (it becomes a file name).
bool is_config_name(const std::string& name);

// Options as a configuration file or -O gives them, parsed: cpus, gpus (whole numbers)
// and executors (comma-separated) into their fields, every other key into `extra`.
// kInvalidInput for a cpus or gpus that is not a number. The keys are not checked
// here: that is the backend's options table (Config::backend_options()).
Expected<BackendOptions> parse_backend_options(const std::map<std::string, std::string>& options);

// The reverse of parse_backend_options(): `extra`, plus cpus, gpus and executors when
// they are set (cpus > 0, gpus >= 0, executors not empty).
std::map<std::string, std::string> option_strings(const BackendOptions& options);

}  // namespace sluice
