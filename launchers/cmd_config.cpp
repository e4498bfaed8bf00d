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
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.hpp"
#include "sluice/config.hpp"
#include "sluice/engine/backend_registry.hpp"

namespace sluice::cli {
namespace {

using nlohmann::json;

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
  // gpus): a typo fails now, not at run time. inproc's table is the whole check: in
  // `sluice` it makes local processes (inproc_commands.hpp), not what an SDK program makes.
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

// A configuration as list and show report it: where it comes from, and whether a run
// could use it (its keys checked against its backend's options table).
struct Described {
  std::string name, source;
  Config config;
  std::string problem;  // "" when usable
};

Described describe(const Globals& g, const std::string& name) {
  Described d{name, Config::source(name, g.home), {}, {}};
  auto found = Config::find(name, g.home);
  if (!found) {
    d.problem = found.error().message;
    return d;
  }
  d.config = std::move(*found);
  if (auto checked = d.config.backend_options(); !checked) d.problem = checked.error().message;
  return d;
}

json describe_json(const Described& d) {
  json options = json::object();
  for (const auto& [k, v] : d.config.options) options[k] = v;
  return {{"name", d.name},      {"backend", d.config.backend},       {"options", options},
          {"source", d.source},  {"builtin", d.source == "built-in"}, {"usable", d.problem.empty()},
          {"problem", d.problem}};
}

// The problem's first clause, for a table cell ("unknown option 'x' for backend local").
std::string short_problem(const std::string& problem) {
  std::string s = problem.substr(0, problem.find('\n'));
  if (auto cut = s.find("; valid keys"); cut != std::string::npos) s.resize(cut);
  return s;
}

// Saved ones (this home, then ~/.config/sluice) and the built-ins, marked so.
int cmd_list(const Globals& g) {
  json out = json::array();
  Table t({"NAME", "BACKEND", "OPTIONS", "SOURCE", "STATUS"});
  for (const auto& n : Config::list_all(g.home)) {
    const Described d = describe(g, n);
    out.push_back(describe_json(d));
    t.add({n, d.config.backend.empty() ? "-" : d.config.backend, options_text(d.config), d.source,
           d.problem.empty() ? "ok" : "unusable: " + short_problem(d.problem)});
  }
  if (g.json) {
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    t.print(stdout);
  }
  return kExitOk;
}

// What a run with --config NAME would use, wherever it was found (this home, the
// user's ~/.config/sluice, built in), as the TOML that would save it, then the keys its
// backend documents, as comments.
int cmd_show(const Globals& g, const std::string& name) {
  check_name(name);
  Described d = describe(g, name);
  if (d.source.empty()) load_config(g, name);  // throws: not found, with where it looked
  if (d.config.backend.empty()) throw CliError(kExitBadInput, d.problem);  // malformed file
  auto table = backend_option_table(d.config.backend);
  if (g.json) {
    json out = describe_json(d);
    json keys = nullptr;
    if (table) {
      keys = json::array();
      for (const auto& spec : *table)
        keys.push_back({{"key", spec.key}, {"default", spec.default_value}, {"doc", spec.doc}});
    }
    out["backend_options"] = std::move(keys);
    std::printf("%s\n", out.dump(2).c_str());
    return kExitOk;
  }
  toml::table doc;
  doc.insert("backend", d.config.backend);
  for (const auto& [k, v] : d.config.options) doc.insert(k, v);
  std::ostringstream text;
  text << doc;
  std::printf("# configuration %s (%s)\n%s\n", name.c_str(), d.source.c_str(), text.str().c_str());
  if (table) {
    std::printf("\n# options of backend %s:\n%s", d.config.backend.c_str(),
                format_option_table(*table, "#   ").c_str());
  } else {
    std::printf("\n# backend %s is not known to this program\n", d.config.backend.c_str());
  }
  if (!d.problem.empty()) std::printf("\n# not usable as it stands: %s\n", d.problem.c_str());
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

  auto* list =
      config->add_subcommand("list", "list the configurations: saved ones and the built-ins");
  list->add_flag("--json", g.json, "machine-readable output");
  list->callback([&] { g_exit_code = cmd_list(g); });

  static std::string show_name;
  auto* show = config->add_subcommand("show", "print a configuration and its backend's keys");
  show->add_option("name", show_name, "configuration name")->required();
  show->add_flag("--json", g.json, "machine-readable output");
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
