// Loader passes 1 and 2: TOML text to a Document of typed fields. Every key is checked
// here (known, right type, in range) and every problem reported with its position, so
// that the later passes only ever see values that make sense.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <map>
#include <sstream>
#include <tuple>

#include <toml++/toml.h>

#include "loader/loader_internal.hpp"
#include "sluice/engine/printable.hpp"

namespace sluice::loader_detail {
namespace {

SourcePos at(const toml::source_region& s) {
  return {s.begin.line, s.begin.column};
}
SourcePos pos_of(const toml::node& n) {
  return at(n.source());
}
SourcePos pos_of(const toml::key& k) {
  return at(k.source());
}

const std::vector<std::string> kTopKeys = {"workflow", "defaults", "tasks"};
const std::vector<std::string> kWorkflowKeys = {
    "name", "project", "version", "description", "max_children", "max_child_depth", "max_tasks"};
// clang-format off
const std::vector<std::string> kTaskKeys = {
    "command", "shell",         "after",         "cpus", "gpus",    "memory",  "executor",
    "retries", "max_exec_time", "max_wait_time", "env",  "workdir", "version", "matrix",
    "cache",   "outputs",       "slurm", "workflow", "backend", "ranks", "nodes"};
// clang-format on
const std::vector<std::string> kTaskOnlyKeys = {
    "after", "matrix", "command", "shell", "outputs", "workflow", "backend", "ranks", "nodes"};
// A child request: like a task, but it names its downstream task instead of parents.
const std::vector<std::string> kChildKeys = [] {
  std::vector<std::string> keys;
  for (const auto& k : kTaskKeys)
    if (k != "after" && k != "workflow" && k != "backend" && k != "ranks" && k != "nodes")
      keys.push_back(k);
  keys.push_back("before");
  return keys;
}();

// What other schedulers call the same things.
const std::map<std::string, std::string> kAliases = {
    {"depends_on", "after"},
    {"depends", "after"},
    {"dependencies", "after"},
    {"deps", "after"},
    {"needs", "after"},
    {"requires", "after"},
    {"parents", "after"},
    {"cmd", "command"},
    {"argv", "command"},
    {"args", "command"},
    {"run", "command"},
    {"exec", "command"},
    {"script", "shell"},
    {"sh", "shell"},
    {"bash", "shell"},
    {"cores", "cpus"},
    {"ncpus", "cpus"},
    {"cpus_per_task", "cpus"},
    {"threads", "cpus"},
    {"ngpus", "gpus"},
    {"gres", "gpus"},
    {"mem", "memory"},
    {"ram", "memory"},
    {"timeout", "max_exec_time"},
    {"walltime", "max_exec_time"},
    {"time", "max_exec_time"},
    {"time_limit", "max_exec_time"},
    {"max_time", "max_exec_time"},
    {"max_wait", "max_wait_time"},
    {"retry", "retries"},
    {"max_retries", "retries"},
    {"attempts", "retries"},
    {"cwd", "workdir"},
    {"dir", "workdir"},
    {"chdir", "workdir"},
    {"working_directory", "workdir"},
    {"environment", "env"},
    {"environ", "env"},
    {"label", "executor"},
    {"params", "matrix"},
    {"parameters", "matrix"},
    {"sweep", "matrix"},
    {"grid", "matrix"},
    {"task", "tasks"},
    {"default", "defaults"},
};

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string hint(std::string_view key, const std::vector<std::string>& allowed) {
  std::string h = did_you_mean(key, allowed);
  if (!h.empty()) return h;
  std::string lower(key);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto it = kAliases.find(lower);
  if (it != kAliases.end() && contains(allowed, it->second)) {
    return " (did you mean '" + it->second + "'?)";
  }
  return "";
}

// A scalar as TOML prints it (0.01, 2, true); strings as they are.
std::optional<std::string> scalar_text(const toml::node& n) {
  if (auto s = n.as_string()) return s->get();
  if (auto i = n.as_integer()) return std::to_string(i->get());
  if (auto f = n.as_floating_point()) {
    // Shortest text that reads back as the same double: 0.1 stays "0.1".
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), f->get());
    std::string text(buf, ec == std::errc() ? end : buf);
    if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
    return text;
  }
  if (auto b = n.as_boolean()) return b->get() ? "true" : "false";
  return std::nullopt;
}

// A value as the user wrote it, for "got ..." in messages.
std::string shown(const toml::node& n) {
  if (auto s = n.as_string()) return "\"" + s->get() + "\"";
  return scalar_text(n).value_or("?");
}

bool is_safe_dotted_name(std::string_view name) {
  if (name.size() > 128) return false;
  bool first = true;
  for (std::size_t begin = 0; begin <= name.size();) {
    std::size_t end = std::min(name.find('.', begin), name.size());
    std::string_view part = name.substr(begin, end - begin);
    if (first ? !is_safe_name(part)
              : part.empty() || !std::all_of(part.begin(), part.end(), [](char c) {
                  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
                }))
      return false;
    first = false;
    begin = end + 1;
  }
  return true;
}

// A name as it may be printed: control characters escaped (a newline or an escape
// sequence in a hostile name must not reach the terminal raw), at most 64 characters.
std::string printable_name(std::string_view name) {
  if (name.size() <= 64) return printable(name);
  return printable(name.substr(0, 64)) + "...";
}

std::string unsafe_name_message(std::string_view what, std::string_view name) {
  if (name.size() > 64) {
    return std::string(what) + " '" + printable_name(name) +
           "' is too long (at most 64 characters)";
  }
  return std::string(what) + " '" + printable_name(name) +
         "' is not a safe identifier (use letters, digits, '_' and '-')";
}

constexpr std::int64_t kMaxMemoryMib = 64LL * 1024 * 1024;  // 64 TiB
constexpr std::int64_t kMaxSeconds = 365LL * 86400;
constexpr std::int64_t kMaxInstances = 1'000'000;

// Reads the keys of one [tasks.NAME] or [defaults] table.
class FieldReader {
 public:
  // `task`: the task's name (unused for [defaults]); it must outlive the reader.
  FieldReader(Reporter& r, bool defaults, std::string_view task, bool child = false)
      : r_(r), defaults_(defaults), child_(child), task_(task) {}

  void read(const toml::table& t, Fields& f) {
    static const std::vector<std::string> kDefaultsKeys = [] {
      std::vector<std::string> keys;
      for (const auto& k : kTaskKeys) {
        if (!contains(kTaskOnlyKeys, k)) keys.push_back(k);
      }
      return keys;
    }();
    for (auto&& [k, v] : t) {
      std::string key(k.str());
      if (defaults_ && contains(kTaskOnlyKeys, key)) {
        r_.error(pos_of(k), "'" + key + "' cannot be set in [defaults], only in a task");
        continue;
      }
      const auto& allowed = defaults_ ? kDefaultsKeys : child_ ? kChildKeys : kTaskKeys;
      if (child_ && key == "after") {
        r_.error(pos_of(k),
                 "a child task depends on the task that adds it: 'after' cannot be set (use "
                 "'before' to name the task it must finish before)");
        continue;
      }
      if (!contains(allowed, key)) {
        r_.error(pos_of(k), "unknown key '" + key + "' " + where() + hint(key, allowed));
        continue;
      }
      if (key == "command") {
        read_command(f, k, v);
      } else if (key == "shell") {
        read_string(f.shell, k, v, "shell", /*allow_empty=*/false);
      } else if (key == "after") {
        read_after(f, k, v);
      } else {
        read_other(f.other_mut(), key, k, v);
      }
    }
  }

 private:
  // The keys of OtherFields.
  void read_other(OtherFields& f, const std::string& key, const toml::key& k, const toml::node& v) {
    if (key == "cpus") {
      read_int(f.cpus, k, v, "cpus", 1, 4096);
    } else if (key == "gpus") {
      read_int(f.gpus, k, v, "gpus", 0, 256);
    } else if (key == "retries") {
      read_int(f.retries, k, v, "retries", 0, 100);
    } else if (key == "memory") {
      read_memory(f.memory, k, v);
    } else if (key == "executor") {
      read_string(f.executor, k, v, "executor", /*allow_empty=*/true);
    } else if (key == "workdir") {
      read_string(f.workdir, k, v, "workdir", /*allow_empty=*/false);
    } else if (key == "version") {
      read_version(f.version, k, v);
    } else if (key == "max_exec_time") {
      read_duration(f.max_exec_time, k, v, "max_exec_time");
    } else if (key == "max_wait_time") {
      read_duration(f.max_wait_time, k, v, "max_wait_time");
    } else if (key == "env") {
      read_env(f.env, k, v);
    } else if (key == "matrix") {
      read_matrix(f.matrix, k, v);
    } else if (key == "workflow") {
      read_string(f.workflow, k, v, "workflow", /*allow_empty=*/false);
    } else if (key == "backend") {
      read_string(f.backend, k, v, "backend", /*allow_empty=*/false);
      if (f.backend.value && *f.backend.value != "mpi" && *f.backend.value != "local") {
        f.backend.value.reset();
        error(v, "a sub-workflow's 'backend' is \"mpi\" (one MPI job) or \"local\"");
      }
    } else if (key == "ranks") {
      read_int(f.ranks, k, v, "ranks", 2, 1 << 16);
    } else if (key == "nodes") {
      read_int(f.nodes, k, v, "nodes", 1, 1 << 14);
    } else if (key == "before") {
      read_string(f.before, k, v, "before", /*allow_empty=*/false);
    } else if (key == "cache") {
      mark(f.cache, k, v);
      if (auto b = v.as_boolean()) {
        f.cache.value = b->get();
      } else {
        error(v, "'cache' must be true or false");
      }
    } else if (key == "outputs") {
      read_outputs(f, k, v);
    } else if (key == "slurm") {
      read_slurm(f, k, v);
    }
  }

  template <class T>
  void mark(Field<T>& f, const toml::key& k, const toml::node& v) {
    f.present = true;
    f.key_pos = pos_of(k);
    f.value_pos = pos_of(v);
  }

  void error(const toml::node& at, std::string message) {
    r_.error(pos_of(at), std::move(message));
  }

  void read_int(Field<int>& f, const toml::key& k, const toml::node& v, const std::string& name,
                std::int64_t lo, std::int64_t hi) {
    mark(f, k, v);
    auto i = v.as_integer();
    if (!i) return error(v, "'" + name + "' must be an integer");
    if (i->get() < lo || i->get() > hi) {
      return error(v, "'" + name + "' must be between " + std::to_string(lo) + " and " +
                          std::to_string(hi) + ", got " + std::to_string(i->get()));
    }
    f.value = static_cast<int>(i->get());
  }

  void read_string(Field<std::string>& f, const toml::key& k, const toml::node& v,
                   const std::string& name, bool allow_empty) {
    mark(f, k, v);
    auto s = v.as_string();
    if (!s) return error(v, "'" + name + "' must be a string");
    if (!allow_empty && s->get().empty()) return error(v, "'" + name + "' must not be empty");
    // Every string the loader keeps reaches a C API (exec, a path, an environment
    // variable), which would silently cut it at a NUL.
    if (s->get().find('\0') != std::string::npos)
      return error(v, "'" + name + "' must not contain a NUL character (\\u0000)");
    f.value = s->get();
  }

  void read_version(Field<std::string>& f, const toml::key& k, const toml::node& v) {
    mark(f, k, v);
    if (!v.is_string() && !v.is_number()) return error(v, "'version' must be a string or number");
    std::string text = *scalar_text(v);
    if (text.empty()) return error(v, "'version' must not be empty");
    f.value = text;
  }

  void read_command(Fields& f, const toml::key& k, const toml::node& v) {
    mark(f.command, k, v);
    auto arr = v.as_array();
    if (!arr) {
      return error(v, "'command' must be an array of strings (use 'shell' for a command line)");
    }
    if (arr->empty()) return error(v, "'command' must not be empty");
    std::vector<std::string> argv;
    for (const toml::node& e : *arr) {
      auto s = e.as_string();
      if (!s) return error(e, "'command' must be an array of strings");
      // An argument is a C string: exec would silently cut it at the NUL.
      if (s->get().find('\0') != std::string::npos)
        return error(e, "'command' arguments must not contain a NUL character (\\u0000)");
      argv.push_back(s->get());
      f.command_elem_pos.push_back(pos_of(e));
    }
    if (argv.front().empty()) return error(arr->front(), "'command' must not be empty");
    f.command.value = std::move(argv);
  }

  // Files a task writes besides its artifact, relative to its workdir: kept with the
  // attempt so a cache hit can restore them. They must stay inside the workdir.
  void read_outputs(OtherFields& f, const toml::key& k, const toml::node& v) {
    mark(f.outputs, k, v);
    auto arr = v.as_array();
    if (!arr) return error(v, "'outputs' must be an array of file paths");
    std::vector<std::string> paths;
    for (const toml::node& e : *arr) {
      auto s = e.as_string();
      if (!s || s->get().empty()) return error(e, "'outputs' must be an array of file paths");
      const std::string& p = s->get();
      bool escapes = p.front() == '/';
      for (std::size_t b = 0; b <= p.size() && !escapes;) {
        std::size_t end = std::min(p.find('/', b), p.size());
        escapes = p.compare(b, end - b, "..") == 0 && end - b == 2;
        b = end + 1;
      }
      if (escapes || p.find('\0') != std::string::npos)
        return error(e, "output '" + p + "' must be a relative path inside the task's workdir");
      paths.push_back(p);
    }
    f.outputs.value = std::move(paths);
  }

  void read_after(Fields& f, const toml::key& k, const toml::node& v) {
    mark(f.after, k, v);
    auto arr = v.as_array();
    if (!arr) return error(v, "'after' must be an array of task names");
    std::vector<std::string> names;
    for (const toml::node& e : *arr) {
      if (auto s = e.as_string()) {
        names.push_back(s->get());
        f.after_elem_pos.push_back(pos_of(e));
      } else {
        error(e, "'after' must be an array of task names");
      }
    }
    f.after.value = std::move(names);
  }

  void read_memory(Field<std::int64_t>& f, const toml::key& k, const toml::node& v) {
    mark(f, k, v);
    std::int64_t mib = 0;
    if (auto s = v.as_string()) {
      auto parsed = parse_memory_mib(s->get());
      if (!parsed) {
        return error(v, "'memory' is not a memory size: \"" + s->get() + "\" (use 512M, 4G, 1T)");
      }
      mib = *parsed;
    } else if (auto i = v.as_integer()) {
      mib = i->get();
    } else {
      return error(v, "'memory' must be a string like \"4G\" or an integer number of MiB");
    }
    if (mib <= 0 || mib > kMaxMemoryMib) {
      return error(v, "'memory' must be between 1M and 64T, got " + shown(v));
    }
    f.value = mib;
  }

  void read_duration(Field<Millis>& f, const toml::key& k, const toml::node& v,
                     const std::string& name) {
    mark(f, k, v);
    Millis d{0};
    if (auto s = v.as_string()) {
      auto parsed = parse_duration(s->get());
      if (!parsed) {
        return error(v,
                     "'" + name + "' is not a duration: \"" + s->get() + "\" (use 90s, 10m, 2h)");
      }
      d = *parsed;
    } else if (auto i = v.as_integer()) {
      // Range-check in seconds first: a huge integer must not overflow the conversion.
      std::int64_t sec = std::clamp<std::int64_t>(i->get(), -1, kMaxSeconds + 1);
      d = Millis(sec * 1000);
    } else {
      return error(v, "'" + name + "' must be a duration string or an integer number of seconds");
    }
    if (d.count() <= 0 || d.count() > kMaxSeconds * 1000) {
      return error(v, "'" + name + "' must be between 1ms and 365d, got " + shown(v));
    }
    f.value = d;
  }

  void read_env(Field<Params>& f, const toml::key& k, const toml::node& v) {
    mark(f, k, v);
    auto t = v.as_table();
    if (!t) return error(v, "'env' must be a table of NAME = value");
    Params env;
    bool ok = true;
    for (auto&& [ek, ev] : *t) {
      std::string name(ek.str());
      bool valid_name = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
                        std::all_of(name.begin(), name.end(), [](char c) {
                          return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                        });
      if (!valid_name) {
        r_.error(pos_of(ek), "env name '" + name + "' is not a valid variable name");
        ok = false;
        continue;
      }
      auto text = scalar_text(ev);
      if (!text) {
        error(ev, "env '" + name + "' must be a string, number or boolean");
        ok = false;
        continue;
      }
      env.emplace_back(name, *text);
    }
    if (ok) f.value = std::move(env);
  }

  // [tasks.NAME.slurm]: sbatch placement for the Slurm backend.
  void read_slurm(OtherFields& f, const toml::key& k, const toml::node& v) {
    static const std::vector<std::string> kSlurmKeys = {"partition",  "account",     "qos",
                                                        "constraint", "reservation", "extra"};
    mark(f.slurm, k, v);
    auto t = v.as_table();
    if (!t) return error(v, "'slurm' must be a table, e.g. { partition = \"gpu\" }");
    Params placement;
    for (auto&& [sk, sv] : *t) {
      std::string name(sk.str());
      if (!contains(kSlurmKeys, name)) {
        r_.error(pos_of(sk),
                 "unknown key '" + name + "' in 'slurm' " + where() + hint(name, kSlurmKeys));
        continue;
      }
      if (name == "extra") {
        auto arr = sv.as_array();
        if (!arr) {
          error(sv, "'slurm.extra' must be an array of sbatch options");
          continue;
        }
        for (const toml::node& e : *arr) {
          auto s = e.as_string();
          if (!s || s->get().rfind("--", 0) != 0)
            error(e, "'slurm.extra' entries must be sbatch options such as \"--exclusive\"");
          else
            f.slurm_extra.push_back(s->get());
        }
        continue;
      }
      auto s = sv.as_string();
      if (!s || s->get().empty()) {
        error(sv, "'slurm." + name + "' must be a non-empty string");
        continue;
      }
      placement.emplace_back(name, s->get());
    }
    f.slurm.value = std::move(placement);
  }

  void read_matrix(Field<std::vector<MatrixAxis>>& f, const toml::key& k, const toml::node& v) {
    mark(f, k, v);
    auto t = v.as_table();
    if (!t) return error(v, "'matrix' must be a table of arrays, e.g. { lr = [0.1, 0.01] }");
    if (t->empty()) return error(v, "'matrix' is empty: the task would expand to no instances");
    std::vector<MatrixAxis> axes;
    bool ok = true;
    std::int64_t instances = 1;
    for (auto&& [mk, mv] : *t) {  // toml::table iterates its keys sorted
      std::string key(mk.str());
      auto arr = mv.as_array();
      if (!arr) {
        error(mv, "matrix '" + key + "' must be an array of values");
        ok = false;
        continue;
      }
      if (arr->empty()) {
        error(mv, "matrix '" + key + "' is empty: the task would expand to no instances");
        ok = false;
        continue;
      }
      MatrixAxis axis{key, {}};
      for (const toml::node& e : *arr) {
        auto text = scalar_text(e);
        if (!text) {
          error(e, "matrix '" + key + "' values must be strings, numbers or booleans");
          ok = false;
          break;
        }
        axis.values.push_back(*text);
      }
      instances = std::min(instances * static_cast<std::int64_t>(arr->size()), kMaxInstances + 1);
      axes.push_back(std::move(axis));
    }
    if (!ok) return;
    if (instances > kMaxInstances) {
      return error(v,
                   "matrix expands to more than " + std::to_string(kMaxInstances) + " instances");
    }
    f.value = std::move(axes);
  }

  // "in task 'NAME'" for messages: built only when there is one to write.
  std::string where() const {
    return defaults_ ? std::string("in [defaults]") : "in task '" + std::string(task_) + "'";
  }

  Reporter& r_;
  bool defaults_;
  bool child_;
  std::string_view task_;
};

void read_workflow_table(const toml::table& t, Document& doc, Reporter& r) {
  bool has_name = false;
  for (auto&& [k, v] : t) {
    std::string key(k.str());
    if (key == "name" || key == "project") {
      auto s = v.as_string();
      if (!s) {
        r.error(pos_of(v), "'" + key + "' must be a string");
        if (key == "name") has_name = true;
        continue;
      }
      if (key == "name" && s->get().empty()) continue;  // reported as missing
      if (key == "name") has_name = true;
      if (!is_safe_name(s->get())) {
        r.error(pos_of(v),
                unsafe_name_message(key == "name" ? "workflow name" : "project name", s->get()));
      }
      (key == "name" ? doc.name : doc.project) = s->get();
    } else if (key == "max_children" || key == "max_child_depth") {
      auto i = v.as_integer();
      const std::int64_t hi = key == "max_children" ? 10'000'000 : 10'000;
      if (!i || i->get() < 0 || i->get() > hi) {
        r.error(pos_of(v), "'" + key + "' must be an integer between 0 and " + std::to_string(hi));
        continue;
      }
      (key == "max_children" ? doc.max_children : doc.max_child_depth) =
          static_cast<std::uint32_t>(i->get());
    } else if (key == "max_tasks") {
      auto i = v.as_integer();
      if (!i || i->get() < 1 || i->get() > static_cast<std::int64_t>(kMaxTasksLimit)) {
        r.error(pos_of(v),
                "'max_tasks' must be an integer between 1 and " + std::to_string(kMaxTasksLimit));
        continue;
      }
      doc.max_tasks = static_cast<std::uint64_t>(i->get());
    } else if (key == "version") {
      if (!v.is_string() && !v.is_number()) {
        r.error(pos_of(v), "'version' must be a string or number");
      }
    } else if (key == "description") {
      if (!v.is_string()) r.error(pos_of(v), "'description' must be a string");
    } else {
      r.error(pos_of(k), "unknown key '" + key + "' in [workflow]" + hint(key, kWorkflowKeys));
    }
  }
  if (!has_name) r.error(pos_of(t), "missing workflow name");
}

void read_tasks_table(const toml::table& tasks, Document& doc, Reporter& r, bool child) {
  // toml::table is a sorted map; the file's order is the order of the source positions.
  // Each position is read once, into the entry: comparing through the node pointers was
  // a cache miss per comparison at a million tasks.
  struct Entry {
    SourcePos pos;
    const toml::key* k;
    const toml::node* v;
  };
  std::vector<Entry> entries;
  entries.reserve(tasks.size());
  for (auto&& [k, v] : tasks) entries.push_back({pos_of(v), &k, &v});
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.pos.line, a.pos.column) < std::tie(b.pos.line, b.pos.column);
  });
  doc.tasks.reserve(doc.tasks.size() + entries.size());
  for (const auto& [pos, k, v] : entries) {
    std::string name(k->str());
    // Children may carry dotted names ("square.3": a matrix instance kept for resume).
    if (child ? !is_safe_dotted_name(name) : !is_safe_name(name))
      r.error(pos_of(*k), unsafe_name_message("task name", name));
    auto t = v->as_table();
    if (!t) {
      r.error(pos_of(*v), "task '" + name + "' must be a table, e.g. [tasks." + name + "]");
      continue;
    }
    RawTask& raw = doc.tasks.emplace_back();  // in place: a RawTask is not cheap to move
    raw.name = std::move(name);
    raw.pos = pos;
    FieldReader(r, /*defaults=*/false, raw.name, child).read(*t, raw.fields);
  }
}

}  // namespace

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  const std::string* best = nullptr;
  std::size_t best_distance = 3;  // suggest only within distance 2
  for (const auto& c : candidates) {
    std::size_t d = edit_distance(word, c);
    if (d == 0 || d >= word.size()) continue;
    if (d < best_distance) {
      best = &c;
      best_distance = d;
    }
  }
  return best ? " (did you mean '" + *best + "'?)" : "";
}

Diagnostics Reporter::take() {
  Diagnostics out = std::move(diags_);
  diags_.clear();
  seen_.clear();
  std::stable_sort(out.begin(), out.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.pos.line, a.pos.column) < std::tie(b.pos.line, b.pos.column);
  });
  return out;
}

std::optional<Document> read_document(std::string_view text, const std::string& display_name,
                                      Reporter& r, DocumentKind kind) {
  const bool child = kind == DocumentKind::kChildRequest;
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(display_name));
  } catch (const toml::parse_error& e) {
    std::string what(e.description());
    if (!what.empty())
      what[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(what[0])));
    while (!what.empty() && (what.back() == '.' || what.back() == '\n')) what.pop_back();
    r.error(at(e.source()), "syntax: " + what);
    return std::nullopt;
  }

  Document doc;
  doc.project = "default";
  const toml::table* workflow = nullptr;
  const toml::table* tasks = nullptr;
  static const std::vector<std::string> kChildTopKeys = {"tasks"};
  const auto& top_keys = child ? kChildTopKeys : kTopKeys;
  for (auto&& [k, v] : root) {
    std::string key(k.str());
    if (!contains(top_keys, key)) {
      r.error(pos_of(k), "unknown top-level key '" + key + "'" + hint(key, top_keys));
      continue;
    }
    auto t = v.as_table();
    if (!t) {
      r.error(pos_of(v), "'" + key + "' must be a table, e.g. [" + key + "]");
      continue;
    }
    if (key == "workflow") {
      workflow = t;
    } else if (key == "defaults") {
      FieldReader(r, /*defaults=*/true, {}).read(*t, doc.defaults);
    } else {
      tasks = t;
    }
  }
  if (workflow) {
    read_workflow_table(*workflow, doc, r);
  } else if (!root.contains("workflow") && !child) {
    r.error({1, 1}, "missing workflow name");
  }
  if (tasks) read_tasks_table(*tasks, doc, r, child);
  if (doc.tasks.empty() && (!tasks || tasks->empty())) {
    r.error(tasks ? pos_of(*tasks) : SourcePos{1, 1},
            child ? "child request has no [tasks.NAME] table" : "workflow has no tasks");
  }
  return doc;
}

}  // namespace sluice::loader_detail
