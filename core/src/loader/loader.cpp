// The workflow loader: TOML in, a validated Workflow (or every problem found) out.
//
// Reading happens in passes, so that one mistake never hides the next:
//   1. parse the TOML (a syntax error stops here: nothing else can be trusted);
//   2. read [workflow], [defaults] and every [tasks.NAME] into typed fields, reporting
//      unknown keys, wrong types and out-of-range values;
//   3. merge defaults, expand matrices and substitute {placeholders};
//   4. resolve `after`, then look for cycles, missing workdirs and missing executables.
// Pass 2 (reading and checking fields) lives in loader_validate.cpp; this file holds
// passes 3 and 4 and the entry points.
#include "sluice/engine/loader.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "loader/heap_reserve.hpp"
#include "loader/loader_internal.hpp"
#include "sluice/engine/graph.hpp"

namespace sluice {
namespace {
// The heap a large load reserves, over the file's size: the peak while loading is ~23x for
// a million layered tasks (1,566 bytes a task from 69 bytes of TOML) and ~32x for a
// million independent ones (1,161 from 36), and the graph and scheduler built next come
// on top. What is reserved and never touched costs address space, not memory.
constexpr std::size_t kHeapBytesPerFileByte = 40;
}  // namespace

namespace fs = std::filesystem;

std::string Diagnostic::format() const {
  std::string where = file.empty() ? std::string("<workflow>") : file;
  if (pos.line != 0) {
    where += ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column);
  }
  return where + ": error: " + message;
}

bool is_safe_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!alpha(name[0])) return false;
  return std::all_of(name.begin() + 1, name.end(),
                     [&](char c) { return alpha(c) || digit(c) || c == '-'; });
}

namespace loader_detail {
namespace {

// ---- pass 3: defaults, matrices, placeholders -------------------------------------------

// Replaces {key} for every matrix key; anything else in braces ({inputs.a.b}, ${HOME},
// a typo) is left exactly as written.
std::string substitute(std::string_view text, const Params& params) {
  if (params.empty() || text.find('{') == std::string_view::npos) return std::string(text);
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '{') {
      std::size_t close = text.find('}', i + 1);
      if (close != std::string_view::npos) {
        std::string_view key = text.substr(i + 1, close - i - 1);
        auto it = std::find_if(params.begin(), params.end(),
                               [&](const auto& p) { return p.first == key; });
        if (it != params.end()) {
          out += it->second;
          i = close + 1;
          continue;
        }
      }
    }
    out += text[i++];
  }
  return out;
}

// The cartesian product of the matrix axes, the last axis varying fastest.
std::vector<Params> expand_matrix(const std::vector<MatrixAxis>& axes) {
  std::vector<Params> out;
  if (axes.empty()) return {Params{}};
  std::vector<std::size_t> digit(axes.size(), 0);
  while (true) {
    Params p;
    for (std::size_t a = 0; a < axes.size(); ++a)
      p.emplace_back(axes[a].key, axes[a].values[digit[a]]);
    out.push_back(std::move(p));
    std::size_t a = axes.size();
    while (a > 0) {
      --a;
      if (++digit[a] < axes[a].values.size()) break;
      digit[a] = 0;
      if (a == 0) return out;
    }
  }
}

template <class T>
const Field<T>& pick(const Field<T>& task, const Field<T>& defaults) {
  return task.present ? task : defaults;
}

// The value, or an empty one, without copying either (build_tasks runs once per task).
template <class T>
const T& or_empty(const std::optional<T>& value) {
  static const T kEmpty{};
  return value ? *value : kEmpty;
}

template <class T>
SourcePos key_pos_or(const Field<T>& task, const Field<T>& defaults, SourcePos fallback) {
  if (task.present) return task.key_pos;
  if (defaults.present) return defaults.key_pos;
  return fallback;
}

std::string normal_dir(const fs::path& p) {
  std::string s = p.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

// ---- pass 4: executables --------------------------------------------------------------

bool is_executable_file(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  return ::access(p.c_str(), X_OK) == 0;
}

// Returns a message when the task's executable cannot be found, nullopt when it can.
std::optional<std::string> check_executable(const TaskSpec& t) {
  const std::string& exe = t.command.front();
  // A placeholder that is not a matrix key is only known at run time; and every attempt
  // finds the `sluice` that started it first on its PATH.
  if (exe.find('{') != std::string::npos || exe == "sluice") return std::nullopt;
  if (exe.find('/') != std::string::npos) {
    fs::path p(exe);
    bool relative = p.is_relative();
    if (relative) p = fs::path(t.workdir) / p;
    if (is_executable_file(p)) return std::nullopt;
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) {
      return "executable '" + exe + "' is not executable (chmod +x " +
             p.lexically_normal().string() + ")";
    }
    if (relative) return "executable '" + exe + "' not found in " + t.workdir;
    return "executable '" + exe + "' not found";
  }
  std::string path;
  auto env_path =
      std::find_if(t.env.begin(), t.env.end(), [](const auto& kv) { return kv.first == "PATH"; });
  if (env_path != t.env.end()) {
    path = env_path->second;
  } else if (const char* p = std::getenv("PATH")) {
    path = p;
  } else {
    path = "/usr/bin:/bin";
  }
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    fs::path dir = path.substr(start, end - start);
    if (dir.empty()) dir = ".";  // POSIX: an empty entry is the working directory
    if (dir.is_relative()) dir = fs::path(t.workdir) / dir;
    if (is_executable_file(dir / exe)) return std::nullopt;
    start = end + 1;
  }
  return "executable '" + exe + "' not found on PATH";
}

// The PATH a task's program is looked up on when it sets one in its env, else nullptr.
const std::string* env_path(const TaskSpec& t) {
  for (const auto& [name, value] : t.env)
    if (name == "PATH") return &value;
  return nullptr;
}

// True when `a` and `b` find their program the same way (same name, workdir and PATH).
bool same_lookup(const TaskSpec& a, const TaskSpec& b) {
  if (a.command.front() != b.command.front() || a.workdir != b.workdir) return false;
  const std::string* pa = env_path(a);
  const std::string* pb = env_path(b);
  return pa == pb || (pa && pb && *pa == *pb);
}

// ---- content hash ---------------------------------------------------------------------

class Fnv1a {
 public:
  void bytes(std::string_view s) {
    for (unsigned char c : s) {
      h_ ^= c;
      h_ *= 1099511628211ull;
    }
  }
  // Length-prefixed, so that ("ab","c") and ("a","bc") differ.
  void str(std::string_view s) {
    num(static_cast<std::int64_t>(s.size()));
    bytes(s);
  }
  void num(std::int64_t n) {
    bytes(std::to_string(n));
    bytes(";");
  }
  void pairs(const std::vector<std::pair<std::string, std::string>>& kv) {
    num(static_cast<std::int64_t>(kv.size()));
    for (const auto& [k, v] : kv) {
      str(k);
      str(v);
    }
  }
  std::string hex() const {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h_));
    return buf;
  }

 private:
  std::uint64_t h_ = 14695981039346656037ull;
};

// Hashes what the workflow means, not how it was written: tasks are taken in name order
// (the order of [tasks.*] tables is layout), dependencies by name, workdirs relative to
// the workflow's directory (moving the whole tree does not change the definition).
std::string content_hash(const Workflow& wf) {
  Fnv1a h;
  h.str("sluice-workflow-v1");
  h.str(wf.name);
  h.str(wf.project);
  // Tasks in name order. The first 8 bytes of each name, big-endian, order most pairs
  // without touching the TaskSpecs: at a million tasks, comparing through the pointers
  // was a cache miss per comparison and most of the sort's time.
  struct Keyed {
    std::uint64_t prefix;
    const TaskSpec* task;
  };
  std::vector<Keyed> order;
  order.reserve(wf.tasks.size());
  for (const TaskSpec& t : wf.tasks) {
    std::uint64_t prefix = 0;
    for (std::size_t i = 0; i < 8; ++i)
      prefix = (prefix << 8) | (i < t.name.size() ? static_cast<unsigned char>(t.name[i]) : 0u);
    order.push_back({prefix, &t});
  }
  std::sort(order.begin(), order.end(), [](const Keyed& a, const Keyed& b) {
    return a.prefix != b.prefix ? a.prefix < b.prefix : a.task->name < b.task->name;
  });
  h.num(static_cast<std::int64_t>(order.size()));
  std::unordered_map<std::string, std::string> relative;  // workdir -> as hashed
  // Parent names are hashed per task, as they always were, unless that is more than
  // kExactHashEdges names (a matrix after a big group: instances x parents). Then a list
  // that tasks share is hashed once and each task hashes its digest: the hash of such
  // a workflow is still deterministic, and no workflow that loaded before (every `after`
  // list was held per task then) crosses the line and changes revision.
  constexpr std::size_t kExactHashEdges = 16u << 20;
  std::size_t edges = 0;
  for (const TaskSpec& t : wf.tasks) edges += t.after.size();
  std::unordered_map<const void*, std::string> digests;  // shared list -> its digest
  for (const auto& [prefix, t] : order) {
    h.str(t->name);
    h.str(t->version);
    h.num(static_cast<std::int64_t>(t->command.size()));
    for (const auto& arg : t->command) h.str(arg);
    h.str(t->shell);
    h.num(static_cast<std::int64_t>(t->after.size()));
    if (edges <= kExactHashEdges || t->after.size() < 2) {
      for (TaskId p : t->after) h.str(wf.tasks[p].name);
    } else {
      auto [digest, fresh] = digests.try_emplace(t->after.identity());
      if (fresh) {
        Fnv1a list;
        for (TaskId p : t->after) list.str(wf.tasks[p].name);
        digest->second = "after-digest=" + list.hex();
      }
      h.str(digest->second);
    }
    h.num(t->cpus);
    h.num(t->gpus);
    h.num(t->memory_mib);
    h.str(t->executor);
    h.num(t->retries);
    h.num(t->max_exec_time.count());
    h.num(t->max_wait_time.count());
    h.pairs(t->env);
    // Inside the workflow's tree: relative (moving the tree changes nothing). Elsewhere
    // (/scratch/...): absolute, as the user wrote it.
    // Tasks share a few workdirs (usually the base one): the path arithmetic runs once
    // per distinct workdir, not once per task.
    auto [rel_it, fresh] = relative.try_emplace(t->workdir);
    if (fresh) {
      std::string rel = fs::path(t->workdir).lexically_relative(wf.base_dir).generic_string();
      rel_it->second = rel.empty() || rel.rfind("..", 0) == 0 ? t->workdir : rel;
    }
    h.str(rel_it->second);
    h.pairs(t->params);
    // Added later: hashed only when set, so older definitions keep their hash.
    if (!t->cache) h.str("cache=false");
    for (const auto& out : t->outputs) h.str("output=" + out);
  }
  return h.hex();
}

// A sub-workflow nested in itself (directly or not) would recurse forever.
thread_local int t_sub_depth = 0;
constexpr int kMaxSubDepth = 8;

// The shell script of a sub-workflow task: the whole sub-workflow runs as one `sluice
// run` with a home of its own inside the attempt directory (no second writer on the
// outer store), under `mpirun -n RANKS` for backend "mpi" (inside a Slurm job, mpirun
// finds the allocation's --ntasks). Its run id and final results go into the task's
// artifact (`run`, `results` as JSON). The content hash makes an edit of the sub-workflow
// a new revision and a cache miss. No braces: {…} would be taken for placeholders.
std::string sub_workflow_shell(const std::string& path, const std::string& hash,
                               const std::string& backend, int ranks, int cpus) {
  std::string q = "'";
  for (char c : path) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  q += "'";
  std::string s = "# sub-workflow " + path + " (content " + hash + ")\n";
  s += "set -e\nstatus=0\nsub=\"$SLUICE_ATTEMPT_DIR/sub\"\nmkdir -p \"$sub\"\n";
  if (backend == "mpi") {
    // Whichever MPI is first on PATH (Open MPI or MPICH's Hydra): only Open MPI needs
    // (and knows) the flags for root and for more ranks than cores.
    s += "flags=\nif mpirun --version 2>&1 | grep -qE 'Open MPI|OpenRTE'; then\n";
    s += "  flags=--oversubscribe\n";
    s += "  if [ \"$(id -u)\" = 0 ]; then flags=\"$flags --allow-run-as-root\"; fi\nfi\n";
    s += "mpirun $flags -n " + std::to_string(ranks) +
         " sluice run --backend mpi --quiet --home \"$sub/home\" " + q +
         " </dev/null >\"$sub/out\"";
  } else {
    s += "sluice run --cpus " + std::to_string(cpus) + " --quiet --home \"$sub/home\" " + q +
         " </dev/null >\"$sub/out\"";
  }
  s += " || status=$?\ncat \"$sub/out\"\n";
  s += "run=$(sed -n 's/^run \\([^ ]*\\) .*/\\1/p' \"$sub/out\" | head -n 1)\n";
  s += "if [ -n \"$run\" ]; then\n  sluice put run \"$run\"\n";
  s += "  sluice put results \"$(sluice results --home \"$sub/home\" \"$run\" --json)\"\nfi\n";
  s += "exit $status\n";
  return s;
}

}  // namespace

// ---- the passes, in order --------------------------------------------------------------

// Pass 3: one TaskSpec per (task, matrix instance), defaults applied.
void build_tasks(Document& doc, Workflow& wf, Reporter& r) {
  const OtherFields& d = doc.defaults.other();
  if (wf.tasks.empty()) {
    // A fresh load: size the name index once (growing a million-entry hash index step
    // by step rehashes it twenty times). Not for child requests, which append a few
    // tasks to a big workflow.
    std::size_t expected = 0;
    for (const RawTask& raw : doc.tasks) {
      std::size_t n = 1;
      if (raw.fields.other().matrix.value)
        for (const MatrixAxis& axis : *raw.fields.other().matrix.value) n *= axis.values.size();
      expected += n;
    }
    expected = std::min<std::size_t>(expected, 4u << 20);  // a hint, never a huge allocation
    wf.index.reserve(expected);
  }
  for (RawTask& raw : doc.tasks) {
    const Fields& raw_fields = raw.fields;
    const OtherFields& f = raw_fields.other();
    bool has_command = raw_fields.command.present, has_shell = raw_fields.shell.present;
    const bool has_sub = f.workflow.present;
    if (has_command + has_shell + has_sub > 1) {
      r.error(raw.pos, "task '" + raw.name +
                           "' sets more than one of 'command', 'shell' and 'workflow' (use one)");
    } else if (!has_command && !has_shell && !has_sub) {
      r.error(raw.pos, "task '" + raw.name +
                           "' needs a 'command' (argv), a 'shell' string or a 'workflow' file");
    }
    if (!has_sub && f.backend.present)
      r.error(f.backend.key_pos, "'backend' applies to a sub-workflow task ('workflow = FILE')");
    const std::string sub_backend = f.backend.value.value_or("local");
    if (f.ranks.present && sub_backend != "mpi")
      r.error(f.ranks.key_pos, "'ranks' applies to a sub-workflow with backend = \"mpi\"");
    if (f.nodes.present && sub_backend != "mpi")
      r.error(f.nodes.key_pos, "'nodes' applies to a sub-workflow with backend = \"mpi\"");
    // Rank 0 coordinates; every node needs at least one worker rank besides it.
    const int sub_nodes = f.nodes.value.value_or(1);
    const int sub_ranks = f.ranks.value.value_or(std::max(2, sub_nodes + 1));
    if (f.ranks.value && f.nodes.value && sub_ranks < sub_nodes + 1)
      r.error(f.ranks.value_pos, "'ranks' = " + std::to_string(sub_ranks) +
                                     " leaves a node without a worker: " +
                                     std::to_string(sub_nodes) + " nodes need at least " +
                                     std::to_string(sub_nodes + 1) + " ranks (rank 0 coordinates)");
    std::string sub_shell;
    if (has_sub && f.workflow.value && !has_command && !has_shell) {
      const std::string path = normal_dir(fs::path(wf.base_dir) / *f.workflow.value);
      if (t_sub_depth >= kMaxSubDepth) {
        r.error(f.workflow.value_pos, "sub-workflows nested more than " +
                                          std::to_string(kMaxSubDepth) + " deep (a cycle?)");
      } else {
        ++t_sub_depth;
        auto sub = load_workflow_file(path);
        --t_sub_depth;
        if (!sub) {
          r.error(f.workflow.value_pos, "sub-workflow '" + *f.workflow.value + "' is invalid:");
          for (auto& d : sub.error()) r.add(std::move(d));
        } else {
          sub_shell = sub_workflow_shell(path, sub->content_hash, sub_backend, sub_ranks,
                                         pick(f.cpus, d.cpus).value.value_or(1));
        }
      }
    }

    std::vector<Params> instances =
        expand_matrix(f.matrix.value.value_or(std::vector<MatrixAxis>{}));
    if (f.matrix.present && !f.matrix.value) instances.clear();  // bad matrix: reported

    // Environment: defaults first, then the task's own entries override by name.
    std::vector<std::pair<std::string, std::string>> env = or_empty(d.env.value);
    for (const auto& [k, v] : or_empty(f.env.value)) {
      const std::string& key = k;  // clang < 16 cannot capture a structured binding
      auto it =
          std::find_if(env.begin(), env.end(), [&](const auto& kv) { return kv.first == key; });
      if (it != env.end()) {
        it->second = v;
      } else {
        env.emplace_back(k, v);
      }
    }
    std::sort(env.begin(), env.end());

    const bool is_matrix = f.matrix.present;
    for (std::size_t i = 0; i < instances.size(); ++i) {
      const Params& params = instances[i];
      TaskSpec t;
      t.group = raw.name;
      t.name = is_matrix ? raw.name + "." + std::to_string(i) : raw.name;
      t.version = pick(f.version, d.version).value.value_or("1");
      for (const auto& arg : or_empty(raw_fields.command.value)) {
        t.command.push_back(substitute(arg, params));
      }
      t.shell = has_sub ? sub_shell : substitute(raw_fields.shell.value.value_or(""), params);
      t.cpus = pick(f.cpus, d.cpus).value.value_or(1);
      t.gpus = pick(f.gpus, d.gpus).value.value_or(0);
      t.memory_mib = pick(f.memory, d.memory).value.value_or(0);
      t.executor = pick(f.executor, d.executor).value.value_or("");
      t.retries = pick(f.retries, d.retries).value.value_or(0);
      t.max_exec_time = pick(f.max_exec_time, d.max_exec_time).value.value_or(Millis{0});
      t.max_wait_time = pick(f.max_wait_time, d.max_wait_time).value.value_or(Millis{0});
      for (const auto& [k, v] : env) t.env.emplace_back(k, substitute(v, params));
      t.slurm = pick(f.slurm, d.slurm).value.value_or(Params{});
      t.slurm_extra = f.slurm.present ? f.slurm_extra : d.slurm_extra;
      const auto& workdir = pick(f.workdir, d.workdir);
      if (workdir.value) {
        t.workdir = normal_dir(fs::path(wf.base_dir) / substitute(*workdir.value, params));
      } else {
        t.workdir = wf.base_dir;
      }
      t.cache = pick(f.cache, d.cache).value.value_or(true);
      if (has_sub && sub_backend == "mpi") {
        // One Slurm job of `ranks` tasks (mpirun inside it starts one rank per task);
        // elsewhere (local) the MPI job holds a single slot and oversubscribes.
        t.cpus = 1;
        t.slurm_extra.push_back("--ntasks=" + std::to_string(sub_ranks));
        if (f.nodes.present) t.slurm_extra.push_back("--nodes=" + std::to_string(sub_nodes));
      }
      for (const auto& out : or_empty(f.outputs.value))
        t.outputs.push_back(substitute(out, params));
      t.params = params;
      t.pos = raw.pos;
      t.cpus_pos = key_pos_or(f.cpus, d.cpus, raw.pos);
      t.gpus_pos = key_pos_or(f.gpus, d.gpus, raw.pos);
      t.executor_pos = key_pos_or(f.executor, d.executor, raw.pos);

      TaskId id = static_cast<TaskId>(wf.tasks.size());
      if (!wf.index.emplace(t.name, id).second) {
        r.error(raw.pos, "duplicate task name '" + t.name + "'");
        continue;
      }
      raw.ids.push_back(id);
      wf.tasks.push_back(std::move(t));
    }
  }
}

// Pass 4a: `after` names to TaskIds. A group name stands for all its instances.
// Hash lookups and no per-task containers: a million-task file resolves in linear time.
void resolve_dependencies(const Document& doc, Workflow& wf, Reporter& r) {
  // Only the groups that are not a task of the same name (a matrix); the others resolve
  // through wf.index, so a million plain tasks are hashed once, not twice.
  std::unordered_map<std::string_view, const RawTask*> groups;
  for (const RawTask& raw : doc.tasks)
    if (raw.ids.size() != 1 || wf.tasks[raw.ids[0]].name != raw.name)
      groups.emplace(raw.name, &raw);
  // The names a typo is compared with, built only when there is a typo.
  auto candidates = [&](bool instance) {
    std::vector<std::string> names;
    for (const RawTask& raw : doc.tasks) names.push_back(raw.name);
    if (instance) {
      for (const TaskSpec& t : wf.tasks) {
        if (t.name != t.group) names.push_back(t.name);
      }
    }
    return names;
  };

  // `after` cannot be set in [defaults]: only the task's own list counts.
  std::vector<TaskId> deps;
  std::unordered_set<TaskId> seen;
  for (const RawTask& raw : doc.tasks) {
    if (!raw.fields.after.value) continue;
    deps.clear();
    const auto& names = *raw.fields.after.value;
    for (std::size_t i = 0; i < names.size(); ++i) {
      const std::string& dep = names[i];
      if (auto g = groups.empty() ? groups.end() : groups.find(dep); g != groups.end()) {
        deps.insert(deps.end(), g->second->ids.begin(), g->second->ids.end());
      } else if (auto it = wf.index.find(dep); it != wf.index.end()) {
        deps.push_back(it->second);
      } else {
        bool instance = dep.find('.') != std::string::npos;
        r.error(raw.fields.after_elem_pos[i], "task '" + raw.name + "' depends on unknown task '" +
                                                  dep + "'" +
                                                  did_you_mean(dep, candidates(instance)));
      }
    }
    // Duplicates removed, first mention wins (it fixes the order of inputs). A short
    // list is scanned; a long one (a reduce over a sweep) goes through a set.
    std::vector<TaskId> unique;
    unique.reserve(deps.size());
    if (deps.size() <= 16) {
      for (TaskId p : deps) {
        if (std::find(unique.begin(), unique.end(), p) == unique.end()) unique.push_back(p);
      }
    } else {
      seen.clear();
      for (TaskId p : deps) {
        if (seen.insert(p).second) unique.push_back(p);
      }
    }
    // One list for every instance: a matrix after a group would otherwise hold
    // instances x parents ids.
    const TaskIdList shared(std::move(unique));
    for (TaskId id : raw.ids) wf.tasks[id].after = shared;
  }
}

// Before pass 3: the tasks the file expands to, against its `max_tasks`. False (and
// reported at the task that crosses it) when there are too many to expand.
bool check_task_count(const Document& doc, Reporter& r) {
  const std::uint64_t limit = doc.max_tasks.value_or(kDefaultMaxTasks);
  std::uint64_t total = 0;
  for (const RawTask& raw : doc.tasks) {
    const auto& matrix = raw.fields.other().matrix;
    std::uint64_t instances = 1;
    if (matrix.present) {
      if (!matrix.value) continue;  // reported while reading: it expands to nothing
      for (const MatrixAxis& axis : *matrix.value) instances *= axis.values.size();
    }
    total += instances;  // each matrix is at most 1,000,000: no overflow
    if (total > limit) {
      r.error(matrix.present ? matrix.value_pos : raw.pos,
              "the workflow expands to more than " + std::to_string(limit) +
                  " tasks (max_tasks) with task '" + raw.name + "' (" + std::to_string(instances) +
                  (instances == 1 ? " task" : " instances") +
                  "); if that many are meant, raise the limit with `max_tasks = N` in "
                  "[workflow]");
      return false;
    }
  }
  return true;
}

// Pass 4b: one cycle, reported in the order data would flow, starting from the task
// defined first.
void check_cycles(const Workflow& wf, Reporter& r) {
  auto cycle = Graph(wf).find_cycle();
  if (!cycle || cycle->size() < 2) return;
  std::vector<TaskId> nodes(cycle->begin(), cycle->end() - 1);
  if (nodes.size() > 1) {
    const auto& second_parents = wf.tasks[nodes[1]].after;
    bool parent_to_child =
        std::find(second_parents.begin(), second_parents.end(), nodes[0]) != second_parents.end();
    if (!parent_to_child) std::reverse(nodes.begin(), nodes.end());
  }
  std::rotate(nodes.begin(), std::min_element(nodes.begin(), nodes.end()), nodes.end());
  std::string path;
  for (TaskId id : nodes) path += wf.tasks[id].name + " -> ";
  path += wf.tasks[nodes.front()].name;
  r.error(wf.tasks[nodes.front()].pos, "dependency cycle: " + path);
}

// Pass 4c: things on disk. Reported once per spot, not once per matrix instance.
void check_paths(const Document& doc, const Workflow& wf, const LoadOptions& options, Reporter& r) {
  const OtherFields& d = doc.defaults.other();
  // Matrix instances mostly share a workdir and a program: look each up once.
  std::map<std::string, std::optional<std::string>> dir_problems;  // workdir -> problem
  std::map<std::string, std::optional<std::string>> exe_problems;  // exe, workdir, PATH -> problem
  const TaskSpec* last = nullptr;  // the last task looked up, and what was found
  const std::optional<std::string>* last_problem = nullptr;
  for (const RawTask& raw : doc.tasks) {
    const auto& workdir = pick(raw.fields.other().workdir, d.workdir);
    for (TaskId id : raw.ids) {
      const TaskSpec& t = wf.tasks[id];
      bool dir_ok = true;
      if (workdir.value) {
        auto [it, fresh] = dir_problems.try_emplace(t.workdir);
        if (fresh) {
          std::error_code ec;
          if (!fs::exists(t.workdir, ec)) {
            it->second = "workdir '" + t.workdir + "' does not exist";
          } else if (!fs::is_directory(t.workdir, ec)) {
            it->second = "workdir '" + t.workdir + "' is not a directory";
          }
        }
        if (it->second) {
          r.error(workdir.value_pos, *it->second);
          dir_ok = false;
        }
      }
      if (!options.check_executables || t.command.empty() || t.command.front().empty()) continue;
      if (!dir_ok && t.command.front().find('/') != std::string::npos) continue;
      // Consecutive tasks (a sweep's instances) mostly run the same program from the
      // same place: compare with the previous one before building a key.
      const std::optional<std::string>* problem;
      if (last && same_lookup(*last, t)) {
        problem = last_problem;
      } else {
        std::string key = t.command.front() + '\0' + t.workdir;
        for (const auto& [name, value] : t.env) {
          if (name == "PATH") key += '\0' + value;
        }
        auto [it, fresh] = exe_problems.try_emplace(std::move(key));
        if (fresh) it->second = check_executable(t);
        problem = &it->second;
        last = &t;
        last_problem = problem;
      }
      if (*problem) r.error(raw.fields.command_elem_pos.front(), **problem);
    }
  }
}

tl::expected<Workflow, Diagnostics> load(std::string text, const std::string& display_name,
                                         const std::string& base_dir, const LoadOptions& options) {
  Reporter r(display_name);
  Workflow wf;
  wf.source_path = display_name;
  wf.text = std::move(text);  // kept with the workflow; parsed from there
  std::error_code ec;
  fs::path base = base_dir.empty() ? fs::current_path(ec) : fs::path(base_dir);
  wf.base_dir = normal_dir(fs::absolute(base, ec));

  std::optional<Document> doc = read_document(wf.text, display_name, r);
  if (doc) {
    wf.name = doc->name;
    wf.project = doc->project;
    if (doc->max_children) wf.max_children = *doc->max_children;
    if (doc->max_child_depth) wf.max_child_depth = *doc->max_child_depth;
    // Counted before anything is expanded: ten million-instance matrices are refused
    // in microseconds, not after gigabytes.
    if (check_task_count(*doc, r)) {
      build_tasks(*doc, wf, r);
      resolve_dependencies(*doc, wf, r);
      check_cycles(wf, r);
      check_paths(*doc, wf, options, r);
    }
  }
  if (!r.diagnostics().empty()) return tl::unexpected<Diagnostics>(r.take());
  wf.content_hash = content_hash(wf);
  return wf;
}

}  // namespace loader_detail

tl::expected<Workflow, Diagnostics> load_workflow_text(std::string_view text,
                                                       const std::string& display_name,
                                                       const std::string& base_dir,
                                                       const LoadOptions& options) {
  return loader_detail::load(std::string(text), display_name, base_dir, options);
}

tl::expected<Workflow, Diagnostics> load_workflow_file(const std::string& path,
                                                       const LoadOptions& options) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    return tl::unexpected<Diagnostics>(
        Diagnostics{{path, {}, "cannot read workflow file: it is a directory"}});
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return tl::unexpected<Diagnostics>(
        Diagnostics{{path, {}, std::string("cannot read workflow file: ") + std::strerror(errno)}});
  }
  // Bounded: a huge (or endless, like /dev/zero) file is refused, not parsed into memory.
  // Sized up front: a million-task file is ~70 MB, and growing a string to that by
  // doubling copies it twice over into fresh pages.
  std::string text;
  const auto size = fs::file_size(path, ec);
  const bool sized = !ec && size <= kMaxWorkflowFileBytes;
  // Before anything is allocated: a million-task file's parse tree and tasks then land in
  // huge pages (a third of the load time was page faults in small ones).
  detail::HeapReservation heap(sized ? size * kHeapBytesPerFileByte : 0);
  if (sized) text.reserve(size);
  char chunk[1 << 16];
  while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
    text.append(chunk, static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxWorkflowFileBytes) {
      return tl::unexpected<Diagnostics>(
          Diagnostics{{path,
                       {},
                       "workflow file is too large (more than " +
                           std::to_string(kMaxWorkflowFileBytes / (1024 * 1024)) + " MiB)"}});
    }
  }
  fs::path dir = fs::absolute(fs::path(path), ec).parent_path();
  return loader_detail::load(std::move(text), path, dir.string(), options);
}

}  // namespace sluice
