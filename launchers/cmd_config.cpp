// `sluice config save|list|show|remove`: named backend configurations, so that a login-node
// session types `sluice run wf.toml --config cluster` instead of a dozen options. Stored
// as SLUICE_HOME/configs/NAME.toml:
//
//   backend = "slurm"
//   [options]
//   partition = "debug"
#include <toml++/toml.h>
#include <algorithm>
#include <cstdio>
#include <sstream>

#include "commands.hpp"
#include "sluice/config.hpp"
#include "sluice/engine/backend_registry.hpp"

namespace sluice::cli {
namespace {

void check_name(const std::string& name) {
  if (!is_config_name(name))
    throw CliError(kExitBadInput, "configuration name '" + name +
                                      "' is not a safe identifier (use letters, digits, '_', "
                                      "'-' and '.')");
}

// "valid keys for backend B:" and the backend's options table.
std::string valid_keys(const std::string& backend) {
  auto table = backend_option_table(backend);
  if (!table) return "";
  return "; valid keys for backend " + backend + ":\n" + format_option_table(*table);
}

struct SaveArgs {
  std::string name;
  std::string backend = "local";
  std::vector<std::string> options;
};

int cmd_save(const Globals& g, const SaveArgs& a) {
  check_name(a.name);
  if (auto names = backend_names(); std::find(names.begin(), names.end(), a.backend) == names.end())
    throw CliError(kExitBadInput, "unknown backend '" + a.backend + "'");
  Config c{a.name, a.backend, {}};
  for (const auto& kv : a.options) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      throw CliError(kExitBadInput, "option '" + kv + "' is not KEY=VALUE" + valid_keys(a.backend));
    c.options[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  // Keys and values are checked against the backend's options table, then by making the
  // backend once (what only its factory knows: libslurm there, gpus_per_worker dividing
  // gpus): a typo fails now, not at run time. `sluice` does not run inproc, whose table
  // is the whole check (inproc_options.hpp).
  auto options = c.backend_options();
  if (!options) throw CliError(kExitBadInput, options.error().message);
  if (a.backend != "inproc")
    if (auto b = create_backend(a.backend, *options); !b) fail(b.error());
  if (auto saved = c.save(g.home); !saved) throw CliError(kExitInternal, saved.error().message);
  std::printf("saved configuration %s (%s/%s.toml)\n", a.name.c_str(), config_dir(g.home).c_str(),
              a.name.c_str());
  return kExitOk;
}

std::string options_text(const Config& c) {
  std::string opts;
  for (const auto& [k, v] : c.options) opts += (opts.empty() ? "" : " ") + k + "=" + v;
  return opts;
}

int cmd_list(const Globals& g) {
  Table t({"NAME", "BACKEND", "OPTIONS"});
  for (const auto& n : Config::list(g.home)) {
    Config c = load_config(g, n);
    t.add({n, c.backend, options_text(c)});
  }
  t.print(stdout);
  return kExitOk;
}

// What a run with --config NAME would use, wherever it was found (this home, the
// user's ~/.config/sluice, built in), as the TOML that would save it, then the keys its
// backend documents, as comments.
int cmd_show(const Globals& g, const std::string& name) {
  Config c = load_config(g, name);
  toml::table doc;
  doc.insert("backend", c.backend);
  for (const auto& [k, v] : c.options) doc.insert(k, v);
  std::ostringstream text;
  text << doc;
  std::printf("# configuration %s\n%s\n", name.c_str(), text.str().c_str());
  if (auto table = backend_option_table(c.backend)) {
    std::printf("\n# options of backend %s:\n%s", c.backend.c_str(),
                format_option_table(*table, "#   ").c_str());
  } else {
    std::printf("\n# backend %s is not known to this program\n", c.backend.c_str());
  }
  if (auto checked = c.backend_options(); !checked)
    std::printf("\n# not usable as it stands: %s\n", checked.error().message.c_str());
  return kExitOk;
}

}  // namespace

// One lookup for the CLI and the C++ SDK: SLUICE_HOME/configs/NAME.toml, then
// ~/.config/sluice/NAME.toml, then the built-ins (see sluice/config.hpp).
Config load_config(const Globals& g, const std::string& name) {
  check_name(name);
  auto found = Config::find(name, g.home);
  if (!found) throw CliError(kExitBadInput, found.error().message + " (sluice config list)");
  return std::move(*found);
}

void add_config_commands(CLI::App& app, Globals& g) {
  auto* config = app.add_subcommand("config", "saved backend configurations");
  config->require_subcommand(1);
  static SaveArgs a;
  auto* save =
      config->add_subcommand("save", "save a configuration: NAME --backend B KEY=VALUE...");
  save->add_option("name", a.name, "configuration name")->required();
  save->add_option("--backend", a.backend, "backend (local, slurm, inproc, ...)");
  save->add_option("options", a.options,
                   "backend options KEY=VALUE (`sluice doctor` lists each backend's keys)");
  save->callback([&] { g_exit_code = cmd_save(g, a); });

  auto* list = config->add_subcommand("list", "list saved configurations");
  list->callback([&] { g_exit_code = cmd_list(g); });

  static std::string show_name;
  auto* show = config->add_subcommand("show", "print a saved configuration");
  show->add_option("name", show_name, "configuration name")->required();
  show->callback([&] { g_exit_code = cmd_show(g, show_name); });

  static std::string remove_name;
  auto* remove = config->add_subcommand("remove", "delete a saved configuration");
  remove->add_option("name", remove_name, "configuration name")->required();
  remove->callback([&] {
    check_name(remove_name);
    if (auto r = Config::remove(remove_name, g.home); !r)
      throw CliError(kExitBadInput, r.error().message);
    std::printf("configuration '%s' removed\n", remove_name.c_str());
  });
}

}  // namespace sluice::cli
