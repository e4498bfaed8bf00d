// `sluice doctor`: what Sluice sees on this machine (cores, memory, GPUs, Slurm, MPI,
// HDF5, the home and its store), one line per check with ok/missing and a hint. It only
// reads: probes run with a short timeout, the store is opened read-only, and the exit
// code is 0 whatever it finds.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "commands.hpp"
#include "driver_choice.hpp"
#include "sluice/engine/backend_registry.hpp"
#include "sluice/engine/capture.hpp"
#include "sluice/engine/gpus.hpp"
#include "sluice/engine/host_info.hpp"

namespace sluice::cli {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

struct DoctorArgs {
  int gpus = -1;
  double timeout_s = 3.0;
};

// One line of the report. `details` carries the check's facts for --json.
struct Check {
  Check(std::string n, bool good, std::string text)
      : name(std::move(n)), ok(good), summary(std::move(text)) {}
  std::string name;
  bool ok = false;
  std::string summary;
  std::string hint;  // what to do about it; empty when nothing
  json details = json::object();
};

std::string first_line(std::string_view text) {
  text = text.substr(0, text.find('\n'));
  while (!text.empty() && (text.back() == '\r' || text.back() == ' ')) text.remove_suffix(1);
  return std::string(text);
}

std::string gib(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1ull << 30));
  return buf;
}

std::chrono::milliseconds to_ms(double seconds) {
  return std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
}

// Why a probe gave nothing, in one line.
std::string probe_failure(const Expected<CapturedOutput>& r) {
  if (!r) return r.error().message;
  if (r->timed_out) return "no answer (timed out)";
  std::string line = first_line(r->err.empty() ? r->out : r->err);
  return "exit " + std::to_string(r->exit_code) + (line.empty() ? "" : ": " + line);
}

bool probe_ok(const Expected<CapturedOutput>& r) {
  return r && !r->timed_out && r->exit_code == 0;
}

Check check_cpus(const HostInfo& h) {
  Check c{
      "cpus", true,
      std::to_string(h.usable_cpus) + " usable of " + std::to_string(h.online_cpus) + " online"};
  if (h.usable_cpus < h.online_cpus)
    c.hint = "this process is restricted (Slurm step or taskset); the local backend uses " +
             std::to_string(h.usable_cpus);
  c.details = {{"usable", h.usable_cpus}, {"online", h.online_cpus}};
  return c;
}

Check check_memory(const HostInfo& h) {
  Check c{"memory", h.memory_total_bytes > 0, "unknown"};
  if (c.ok)
    c.summary =
        gib(h.memory_total_bytes) + " total, " + gib(h.memory_available_bytes) + " available";
  else
    c.hint = "/proc/meminfo is not readable";
  c.details = {{"total_bytes", h.memory_total_bytes},
               {"available_bytes", h.memory_available_bytes}};
  return c;
}

Check check_gpus(const DoctorArgs& a) {
  GpuDetectOptions o;
  o.count = a.gpus;
  o.timeout = to_ms(a.timeout_s);
  const GpuInventory inv = detect_gpus(o);
  Check c{"gpus", !inv.devices.empty(), ""};
  json devices = json::array();
  for (const GpuDevice& d : inv.devices) {
    devices.push_back({{"index", d.index},
                       {"id", d.id},
                       {"name", d.name},
                       {"memory_bytes", d.memory_bytes},
                       {"uuid", d.uuid}});
  }
  if (inv.devices.empty()) {
    c.summary = "none";
    for (std::size_t i = 0; i < inv.notes.size(); ++i)
      c.summary += (i == 0 ? " (" : "; ") + inv.notes[i] + (i + 1 == inv.notes.size() ? ")" : "");
    c.hint = a.gpus == 0 ? "none declared (--gpus 0)"
                         : "no GPU found (CUDA runtime, nvidia-smi, CUDA_VISIBLE_DEVICES); on a "
                           "GPU node check the driver with nvidia-smi, or declare devices with "
                           "--gpus N / SLUICE_GPUS";
  } else {
    // "2 × NVIDIA H100 80GB HBM3 (80 GiB)" when they are alike, else each one.
    std::map<std::string, int> kinds;
    for (const GpuDevice& d : inv.devices) {
      std::string kind = d.name.empty() ? "device" : d.name;
      if (d.memory_bytes > 0) kind += " (" + format_memory(d.memory_bytes) + ")";
      ++kinds[kind];
    }
    for (const auto& [kind, n] : kinds) {
      if (!c.summary.empty()) c.summary += ", ";
      c.summary += std::to_string(n) + " x " + kind;
    }
    std::string ids;
    for (const GpuDevice& d : inv.devices) ids += (ids.empty() ? "" : ",") + d.id;
    c.summary += " [ids " + ids + "; from " + std::string(to_string(inv.source)) + "]";
  }
  c.details = {{"count", inv.devices.size()},
               {"source", to_string(inv.source)},
               {"devices", devices},
               {"notes", inv.notes}};
  return c;
}

// "Key = Value" lines of `scontrol show config`.
std::map<std::string, std::string> parse_config(std::string_view text) {
  std::map<std::string, std::string> out;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    const std::size_t eq = line.find(" = ");
    if (eq == std::string_view::npos) continue;
    std::string_view key = line.substr(0, eq);
    while (!key.empty() && key.back() == ' ') key.remove_suffix(1);
    out[std::string(key)] = first_line(line.substr(eq + 3));
  }
  return out;
}

// Which driver `--backend slurm` (driver=auto) would use here, and why (driver_choice.hpp).
void add_driver_choice(Check& c, slurm::DriverFacts facts) {
  facts.libslurm = slurm::libslurm_info();
  const auto& lib = facts.libslurm;
  c.details["libslurm_built_for"] = lib.built_for ? lib.built_for->release() : "";
  c.details["libslurm_loaded"] = lib.loaded ? lib.loaded->str() : "";
  c.details["controller_version"] = facts.controller ? facts.controller->str() : "";
  auto choice = slurm::choose_driver(facts);
  c.details["driver"] = choice ? choice->driver : "";
  c.details["driver_reason"] = choice ? choice->reason : choice.error().message;
  if (choice) c.summary += "; driver " + choice->driver + " (" + choice->reason + ")";
}

Check check_slurm(const DoctorArgs& a) {
  Check c{"slurm", false, ""};
  const std::string sinfo = find_on_path("sinfo");
  c.details["sinfo"] = sinfo;
  if (sinfo.empty()) {
    c.summary = "sinfo not found";
    c.hint = "install the Slurm client (slurm-client) or load its module to use Slurm";
    return c;
  }
  const auto timeout = to_ms(a.timeout_s);
  if (auto v = capture_output({"sinfo", "--version"}, timeout); probe_ok(v)) {
    std::string line = first_line(v->out);  // "slurm 22.05.8"
    if (line.starts_with("slurm ")) line.erase(0, 6);
    c.details["version"] = line;
  }
  auto conf = capture_output({"scontrol", "show", "config"}, timeout);
  if (!probe_ok(conf)) {
    c.summary = "controller not reachable: " + probe_failure(conf);
    c.hint = "start slurmctld (a test cluster: scripts/slurm-up.sh) or check SLURM_CONF";
    slurm::DriverFacts facts;
    facts.controller_error = "scontrol show config: " + probe_failure(conf);
    add_driver_choice(c, facts);
    return c;
  }
  const auto cfg = parse_config(conf->out);
  auto get = [&](const char* key) {
    auto it = cfg.find(key);
    return it == cfg.end() ? std::string() : it->second;
  };
  if (!get("SLURM_VERSION").empty()) c.details["version"] = get("SLURM_VERSION");
  c.details["cluster"] = get("ClusterName");
  c.details["max_array_size"] = get("MaxArraySize");
  c.details["gres_types"] = get("GresTypes");

  json partitions = json::array();
  std::string shown;
  // One line per partition: name (default marked *), availability, nodes, GRES.
  if (auto p = capture_output({"sinfo", "-h", "-o", "%P|%a|%D|%G"}, timeout); probe_ok(p)) {
    std::string_view text = p->out;
    while (!text.empty()) {
      const std::size_t nl = text.find('\n');
      std::string line = first_line(text.substr(0, nl));
      text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
      std::vector<std::string> f;
      for (std::size_t pos = 0;;) {
        const std::size_t bar = line.find('|', pos);
        f.push_back(line.substr(pos, bar - pos));
        if (bar == std::string::npos) break;
        pos = bar + 1;
      }
      if (f.size() != 4) continue;
      partitions.push_back({{"name", f[0]}, {"state", f[1]}, {"nodes", f[2]}, {"gres", f[3]}});
      shown += (shown.empty() ? "" : ", ") + f[0] + " (" + f[2] +
               (f[2] == "1" ? " node" : " nodes") + (f[3] == "(null)" ? "" : ", " + f[3]) +
               (f[1] == "up" ? "" : ", " + f[1]) + ")";
    }
  }
  c.details["partitions"] = partitions;
  c.ok = true;
  const std::string version = c.details.value("version", std::string("?"));
  c.summary = version + ", cluster " + get("ClusterName") + ", partitions " +
              (shown.empty() ? "none" : shown) + ", MaxArraySize " + get("MaxArraySize") +
              ", GresTypes " + (get("GresTypes").empty() ? "none" : get("GresTypes"));
  slurm::DriverFacts facts;
  facts.controller = slurm::controller_version_from_config(conf->out);
  if (!facts.controller) facts.controller_error = "scontrol show config printed no SLURM_VERSION";
  add_driver_choice(c, facts);
  return c;
}

Check check_mpi(const DoctorArgs& a) {
  Check c{"mpi", false, ""};
  const std::string mpirun = find_on_path("mpirun");
  c.details["mpirun"] = mpirun;
  if (mpirun.empty()) {
    c.summary = "mpirun not found";
    c.hint = "install Open MPI (openmpi-bin libopenmpi-dev) or load an MPI module";
    return c;
  }
  auto v = capture_output({"mpirun", "--version"}, to_ms(a.timeout_s));
  if (!probe_ok(v)) {
    c.summary = mpirun + " does not start: " + probe_failure(v);
    c.hint = "check the MPI installation (mpirun --version)";
    return c;
  }
  c.ok = true;
  const std::string version = first_line(v->out.empty() ? v->err : v->out);
  c.details["version"] = version;
  c.summary = version + " (" + mpirun + ")";
  return c;
}

Check check_hdf5() {
  Check c{"hdf5", true, hdf5_library_version() + " (linked into sluice)"};
  c.details["version"] = hdf5_library_version();
  return c;
}

// The nearest directory at or above `p` that exists.
fs::path existing_ancestor(fs::path p) {
  std::error_code ec;
  while (!p.empty() && !fs::exists(p, ec) && p != p.parent_path()) p = p.parent_path();
  return p;
}

Check check_store(const Globals& g) {
  const fs::path home = g.home;
  const fs::path db = home / "store.db";
  std::error_code ec;
  const bool exists = fs::exists(db, ec);
  const fs::path probe = exists ? db : existing_ancestor(home);
  const bool writable = !probe.empty() && ::access(probe.c_str(), W_OK) == 0 &&
                        (!exists || ::access(home.c_str(), W_OK) == 0);
  Check c{"store", false, ""};
  c.details = {{"home", home.string()},
               {"path", db.string()},
               {"exists", exists},
               {"writable", writable},
               {"schema_version", RunStore::schema_version()},
               {"runs", nullptr}};
  if (!exists) {
    c.ok = writable;
    c.summary = "no store yet at " + db.string() + (writable ? " (writable)" : " (not writable)");
    c.hint = writable ? "created by the first `sluice run` with this home"
                      : "pick a writable home with --home DIR or SLUICE_HOME";
    return c;
  }
  auto store = RunStore::open(home.string(), RunStore::Mode::kReadOnly);
  if (!store) {
    c.summary = db.string() + ": " + store.error().message;
    c.hint = "a store from another Sluice version, or damaged; use another --home";
    return c;
  }
  auto runs = (*store)->list_runs({});
  if (!runs) {
    c.summary = db.string() + ": " + runs.error().message;
    return c;
  }
  c.ok = writable;
  c.details["runs"] = runs->size();
  c.summary = db.string() + ": schema " + std::to_string(RunStore::schema_version()) + ", " +
              std::to_string(runs->size()) + " run(s), " + (writable ? "writable" : "read-only");
  if (!writable) c.hint = "runs need a writable home: --home DIR or SLUICE_HOME";
  return c;
}

// Every backend this program has, with the keys its options table documents: what
// -O KEY=VALUE and `sluice config save NAME --backend B KEY=VALUE` accept.
void print_backend_options() {
  std::printf(
      "\nbackend options (-O KEY=VALUE, or sluice config save NAME --backend B KEY=VALUE):\n");
  for (const auto& name : backend_names()) {
    auto table = backend_option_table(name);
    if (!table) continue;
    std::printf("  %s\n%s", name.c_str(), format_option_table(*table, "    ").c_str());
  }
}

json backend_options_json() {
  json out = json::object();
  for (const auto& name : backend_names()) {
    auto table = backend_option_table(name);
    if (!table) continue;
    json keys = json::array();
    for (const auto& spec : *table)
      keys.push_back({{"key", spec.key}, {"default", spec.default_value}, {"doc", spec.doc}});
    out[name] = std::move(keys);
  }
  return out;
}

int cmd_doctor(const Globals& g, const DoctorArgs& a) {
  const HostInfo host = probe_host();
  std::vector<Check> checks;
  checks.push_back(check_cpus(host));
  checks.push_back(check_memory(host));
  checks.push_back(check_gpus(a));
  checks.push_back(check_slurm(a));
  checks.push_back(check_mpi(a));
  checks.push_back(check_hdf5());
  checks.push_back(check_store(g));

  if (g.json) {
    json out = {{"host", host.hostname}, {"sluice_version", "0.1.0"}};
    for (const Check& c : checks) {
      json j = c.details;
      j["status"] = c.ok ? "ok" : "missing";
      j["summary"] = c.summary;
      j["hint"] = c.hint;
      out[c.name] = std::move(j);
    }
    out["backends"] = backend_options_json();
    std::printf("%s\n", out.dump(2).c_str());
    return kExitOk;
  }
  std::printf("sluice doctor on %s\n", host.hostname.c_str());
  for (const Check& c : checks) {
    std::printf("  %-8s %-7s %s\n", c.ok ? "ok" : "missing", c.name.c_str(), c.summary.c_str());
    if (!c.hint.empty()) std::printf("  %-8s %-7s hint: %s\n", "", "", c.hint.c_str());
  }
  print_backend_options();
  return kExitOk;
}

}  // namespace

void add_doctor_command(CLI::App& app, Globals& g) {
  static DoctorArgs a;
  auto* cmd = app.add_subcommand("doctor", "what Sluice sees on this machine, with hints");
  cmd->add_option("--gpus", a.gpus, "declare N GPUs instead of detecting them")
      ->check(CLI::Range(0, 4096));
  cmd->add_option("--timeout", a.timeout_s, "seconds each probe (nvidia-smi, sinfo…) may take")
      ->check(CLI::Range(0.1, 60.0));
  cmd->add_flag("--json", g.json, "machine-readable output");
  cmd->callback([&] { g_exit_code = cmd_doctor(g, a); });
}

}  // namespace sluice::cli
