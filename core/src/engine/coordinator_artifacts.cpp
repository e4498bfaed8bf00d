// The coordinator's side of artifacts: the environment and placeholders that pass a
// task its parents' artifacts, sealing an attempt's artifact with its provenance, and
// the run's view file linking each task's final artifact.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "engine/coordinator_impl.hpp"
#include "sluice/engine/artifacts.hpp"
#include "sluice/engine/file_modes.hpp"
#include "sluice/engine/packed_file.hpp"
#include "sluice/engine/results_file.hpp"

namespace sluice {
namespace {

// "/" + the artifact's file name, appended to an attempt directory's relative path.
const std::string kArtifactLeaf = "/" + std::string(kArtifactFile);
const std::string kResultsLeaf = "/" + std::string(kResultsFile);

// Why HDF5 could not hold `values` as /TASK/KEY datasets ("" when it can): the checks an
// artifact writer makes, made before the values are packed.
std::string unpackable(const Map& values, const std::string& where) {
  for (const auto& [key, v] : values) {
    const std::string path = where + "/" + key;
    if (key.empty() || key == "." || key.find('/') != std::string::npos)
      return "invalid key '" + path + "': keys must be non-empty, contain no '/' and not be \".\"";
    if (v.type() == Value::Type::kString && v.get<std::string>().find('\0') != std::string::npos)
      return "string '" + path + "' contains a NUL byte (HDF5 cannot store it)";
    if (const Map* m = v.get_if<Map>()) {
      if (std::string why = unpackable(*m, path); !why.empty()) return why;
    } else if (const List* l = v.get_if<List>()) {
      Map indexed;
      for (std::size_t i = 0; i < l->size(); ++i)
        indexed.insert_or_assign(std::to_string(i), (*l)[i]);
      if (std::string why = unpackable(indexed, path); !why.empty()) return why;
    }
  }
  return "";
}

// What an attempt ran, as provenance records it: the shell text, the SDK function's name,
// or the command's words joined by spaces.
std::string command_text(const TaskSpec& spec) {
  if (!spec.shell.empty()) return spec.shell;
  if (!spec.function.empty()) return spec.function;
  std::string text;
  for (const auto& a : spec.command) text += (text.empty() ? "" : " ") + a;
  return text;
}

}  // namespace

std::string Coordinator::Impl::final_artifact(TaskId t) const {
  return artifact_path(
      store_.attempt_dir(run_id_, workflow_.tasks[t].name, scheduler_.attempts(t)));
}

bool Coordinator::Impl::add_artifact_env(const TaskSpec& spec, const std::string& dir,
                                         LaunchRequest& req) {
  req.env.emplace_back("SLUICE_OUTPUT", artifact_path(dir));
  req.env.emplace_back("SLUICE_RESULTS", dir + kResultsLeaf);
  std::string inputs;
  const bool files = backend_.needs_input_files();
  for (std::size_t i = 0; i < spec.after.size(); ++i) {
    const TaskId p = spec.after[i];
    const std::string& name = workflow_.tasks[p].name;
    std::string path, group = "/";
    if (packed_[p]) {
      if (!files) {  // read from memory: no segment, no variable
        req.parent_values.resize(spec.after.size());
        req.parent_values[i] = packed_[p];
        continue;
      }
      const std::string* segment = segment_for(p);
      if (!segment) return false;
      path = *segment;
      group += name;
    } else if (has_artifact_[p]) {
      path = final_artifact(p);
    } else {
      continue;
    }
    if (!inputs.empty()) inputs += ':';
    inputs += path;
    if (group.size() > 1) inputs += "#" + group;
    std::string var = input_env_name(name);
    req.env.emplace_back(var + "_GROUP", std::move(group));
    req.env.emplace_back(std::move(var), std::move(path));
  }
  // One environment string may hold at most 128 KiB (MAX_ARG_STRLEN): a reduce over
  // thousands of parents gets the list in a file instead.
  // Backends whose workers make the attempt directory (mpi, pilot) have not made it yet:
  // without it the list was lost and a reduce saw no inputs at all.
  if (inputs.size() > 100'000) {
    const std::string file = dir + "/inputs";
    bool written = false;
    if (make_attempt_dir(dir)) {
      if (std::FILE* f = std::fopen(file.c_str(), "w")) {
        written = std::fputs(inputs.c_str(), f) >= 0;
        written = std::fclose(f) == 0 && written;
      }
    }
    if (!written) {
      why_ = "cannot write the list of inputs to " + file + ": " + std::strerror(errno);
      return false;
    }
    req.env.emplace_back("SLUICE_INPUTS_FILE", file);
    inputs = "@" + file;
  }
  req.env.emplace_back("SLUICE_INPUTS", std::move(inputs));
  return true;
}

bool Coordinator::Impl::resolve_input_placeholders(const TaskSpec& spec,
                                                   std::vector<std::string>& command,
                                                   std::string& shell, std::string& why) {
  command.clear();
  shell.clear();
  if (!uses_input_placeholders(spec)) return true;
  std::vector<InputArtifact> parents;
  for (TaskId p : spec.after)
    parents.push_back(
        {workflow_.tasks[p].name, has_artifact_[p] ? final_artifact(p) : "", packed_[p].get()});
  std::string tmp;
  if (!spec.shell.empty() && !substitute_input_values(spec.shell, parents, shell, why))
    return false;
  for (const auto& a : spec.command) {
    if (!substitute_input_values(a, parents, tmp, why)) return false;
    command.push_back(tmp);
  }
  return true;
}

// Values an attempt passed without an artifact of its own: packed, no file (what an own
// artifact would refuse is refused here).
void Coordinator::Impl::pack_results(Completion& c, Map results, const std::string& results_path) {
  if (results.empty()) return;  // nothing to pass on
  if (std::string why = unpackable(results, ""); !why.empty()) {
    c.failure = "bad results: " + results_path + ": " + why;
    return;
  }
  c.values.reset();
  pack_values(c, std::make_shared<const Map>(std::move(results)));
}

void Coordinator::Impl::seal_artifact(Completion& c) {
  const TaskSpec& spec = workflow_.tasks[c.task];
  const std::string dir = store_.attempt_dir(run_id_, spec.name, c.attempt);
  const std::string path = artifact_path(dir);
  has_artifact_[c.task] = 0;
  packed_[c.task].reset();
  // A scratch folder that held only the results file was read and given back when the
  // attempt ended (settle_scratch()): its values are all there is.
  if (!scratch_results_.empty()) {
    if (auto it = scratch_results_.find(attempt_key(c.task, c.attempt));
        it != scratch_results_.end()) {
      Map values = std::move(it->second);
      scratch_results_.erase(it);
      if (c.values)
        for (const auto& [key, value] : *c.values) values.insert_or_assign(key, value);
      pack_results(c, std::move(values), dir + kResultsLeaf);
      return;
    }
  }
  // Relative to the run's tasks directory when it is open (a shorter path walk).
  // 0 found, ENOENT or another errno.
  auto lstat_in = [&](const std::string* leaf, const std::string& full, struct stat& st) {
    int rc;
    if (tasks_fd_ < 0) {
      rc = ::lstat(full.c_str(), &st);
    } else {
      std::string& rel = relative_attempt_dir(spec.name, c.attempt);
      if (leaf) rel.append(*leaf);
      rc = ::fstatat(tasks_fd_, rel.c_str(), &st, AT_SYMLINK_NOFOLLOW);
    }
    return rc == 0 ? 0 : errno;
  };
  // Most attempts leave neither file: two lookups decide it. Where the directory is made
  // only by an attempt that writes (in-process attempts, scratch folders), most have none,
  // and one lookup of the directory decides it (these two fstatat calls were 6% of the
  // process's time with 20,000 no-op inproc tasks).
  struct stat results_st, st;
  int results_err = ENOENT, artifact_err = ENOENT;
  const bool lazy_dir = !backend_.wants_attempt_dir() || use_scratch_;
  const std::string results_path = dir + kResultsLeaf;
  if (!lazy_dir || lstat_in(nullptr, dir, st) != ENOENT) {
    results_err = lstat_in(&kResultsLeaf, results_path, results_st);
    artifact_err = lstat_in(&kArtifactLeaf, path, st);
  }
  if (results_err == ENOENT && artifact_err == ENOENT) {  // also: no directory made
    if (!c.values || c.values->empty()) return;
    if (std::string why = unpackable(*c.values, ""); !why.empty()) {
      c.failure = "cannot write the result: " + why;
      return;
    }
    pack_values(c, std::move(c.values));
    return;
  }
  // The attempt owns its directory: a link there (to /etc/passwd, to another run) must
  // not make the coordinator open, seal or chmod a file outside it.
  struct stat dir_st;
  if (const int err = lstat_in(nullptr, dir, dir_st); err != 0) {
    if (err == ENOENT) return;  // removed meanwhile: nothing to pass on
    c.failure =
        "bad artifact: cannot inspect the attempt directory " + dir + ": " + std::strerror(err);
    return;
  }
  if (!S_ISDIR(dir_st.st_mode)) {
    c.failure = "bad artifact: the attempt directory " + dir + " was replaced (not a directory)";
    return;
  }
  for (const auto& [err, file] : {std::pair{results_err, &results_path}, {artifact_err, &path}}) {
    if (err != 0 && err != ENOENT) {
      c.failure = "bad artifact: cannot inspect " + *file + ": " + std::strerror(err);
      return;
    }
  }
  // Values the task appended to SLUICE_RESULTS go into its artifact.
  Map results;
  if (results_err == 0 && !S_ISREG(results_st.st_mode)) {
    c.failure = "bad results: " + results_path +
                " is not a regular file (refused: a link could point outside the attempt)";
    return;
  }
  if (results_err == 0 && results_st.st_size > 0) {
    auto read = read_results(results_path);
    if (!read) {
      c.failure = "bad results: " + read.error().message;
      return;
    }
    results = std::move(*read);
  }
  if (c.values)
    for (const auto& [key, value] : *c.values) results.insert_or_assign(key, value);
  if (artifact_err != 0) {
    pack_results(c, std::move(results), results_path);
    // Its values are in the store's next commit: the file would only cost an inode (and
    // keep the attempt's directory).
    ::unlink(results_path.c_str());
    return;
  }
  if (S_ISLNK(st.st_mode)) {
    c.failure = "bad artifact: " + path +
                " is a symbolic link (refused: an artifact must be a "
                "regular file inside the attempt directory)";
    return;
  }
  if (!S_ISREG(st.st_mode)) {
    c.failure = "bad artifact: " + path + " is not a regular file";
    return;
  }
  if (!results.empty()) {
    if (auto merged = merge_into_artifact(results, path); !merged) {
      c.failure = "bad results: " + results_path + ": " + merged.error().message;
      return;
    }
  }
  // The cache keys dependents on the content hash: read it in the same open.
  const bool hash_content = c.content_hash.empty() && cache_parts_.count(c.task) != 0;
  auto sealed = finalize_artifact(path, provenance_of(c), hash_content);
  if (!sealed) {
    c.failure = sealed.error().message;
    return;
  }
  record_sealed(c, path, std::move(*sealed));
}

void Coordinator::Impl::record_sealed(Completion& c, const std::string& path,
                                      SealedArtifact sealed) {
  ::chmod(path.c_str(), file_modes().file);
  has_artifact_[c.task] = 1;
  checksums_[c.task] = std::move(sealed.checksum);
  if (!sealed.content_hash.empty()) c.content_hash = std::move(sealed.content_hash);
}

void Coordinator::Impl::pack_values(Completion& c, std::shared_ptr<const Map> values) {
  if (c.content_hash.empty() && cache_parts_.count(c.task)) {
    c.content_hash = values_content_hash(*values);
  }
  packed_[c.task] = values;
  if (!view_) view_ = std::make_unique<RunViewWriter>(run_dir_ + "/run.h5");
  view_->add(workflow_.tasks[c.task].name, values);
  segment_of_[c.task] = 0;
  unsegmented_.push_back(c.task);
  pending_.values.push_back({c.task, c.attempt, std::move(values)});
}

const std::string* Coordinator::Impl::segment_for(TaskId t) {
  if (segment_of_[t] != 0) return &segments_[segment_of_[t] - 1];
  const std::string dir = run_dir_ + "/values";
  if (next_segment_ < 0) {
    // A run resumed after a crash keeps the segments its running attempts may read.
    next_segment_ = 0;
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      int n = 0;
      if (std::sscanf(e.path().filename().c_str(), "%d.h5", &n) == 1 && n >= next_segment_)
        next_segment_ = n + 1;
    }
  }
  char name[32];
  std::snprintf(name, sizeof name, "/%04d.h5", next_segment_++);
  const std::string path = dir + name;
  PackedFileContents contents;
  std::vector<TaskId> members;
  for (TaskId u : unsegmented_) {
    if (!packed_[u] || segment_of_[u] != 0 || scheduler_.state(u) != TaskState::kSucceeded)
      continue;
    segment_of_[u] = UINT32_MAX;  // listed once
    members.push_back(u);
    contents.tasks.emplace_back(workflow_.tasks[u].name, packed_[u].get());
  }
  unsegmented_.clear();
  if (segment_of_[t] == 0) {  // not yet marked succeeded: it still needs its values there
    members.push_back(t);
    contents.tasks.emplace_back(workflow_.tasks[t].name, packed_[t].get());
  }
  if (auto ok = write_packed_file(path, contents); !ok) {
    for (TaskId u : members) segment_of_[u] = 0;
    unsegmented_ = members;
    why_ = "cannot write the values segment " + path + ": " + ok.error().message;
    return nullptr;
  }
  segments_.push_back(path);
  for (TaskId u : members) segment_of_[u] = static_cast<std::uint32_t>(segments_.size());
  return &segments_.back();
}

Provenance Coordinator::Impl::provenance_of(const Completion& c) {
  const TaskSpec& spec = workflow_.tasks[c.task];
  Provenance p;
  p.run_id = run_id_;
  p.workflow = workflow_id_;
  p.task = spec.name + "@" + spec.version;
  p.attempt = c.attempt;
  p.host = c.host.empty() ? host_ : c.host;
  p.started_us = c.started_us;
  p.ended_us = c.ended_us;
  p.exit_status = c.code;
  p.command = command_text(spec);
  for (TaskId parent : spec.after) {
    if (!has_artifact_[parent]) continue;
    std::string in = final_artifact(parent);
    auto sum = checksums_.find(parent);
    if (sum == checksums_.end()) {  // restored from the store: checksum it once now
      auto computed = file_checksum(in);
      sum = checksums_.emplace(parent, computed ? *computed : std::string("unknown")).first;
    }
    p.inputs.emplace_back(std::move(in), sum->second);
  }
  return p;
}

void Coordinator::Impl::write_run_view() {
  PackedFileContents contents;
  const std::string prefix = run_dir_ + "/";
  for (TaskId t = 0; t < workflow_.tasks.size(); ++t) {
    if (scheduler_.state(t) != TaskState::kSucceeded) continue;
    if (packed_[t]) {
      contents.tasks.emplace_back(workflow_.tasks[t].name, packed_[t].get());
      continue;
    }
    if (!has_artifact_[t]) continue;
    std::string path = final_artifact(t);
    if (path.compare(0, prefix.size(), prefix) == 0) path.erase(0, prefix.size());
    contents.links.emplace_back(workflow_.tasks[t].name, std::move(path));
  }
  if (contents.tasks.empty() && contents.links.empty()) {
    view_.reset();  // removes what it wrote of a view of tasks that did not succeed
    return;
  }
  // Provenance of every attempt this coordinator saw end, one table.
  std::vector<ProvenanceRow> rows;
  rows.reserve(traces_.size());
  for (const AttemptTrace& a : traces_) {
    const TaskSpec& spec = workflow_.tasks[a.task];
    ProvenanceRow r;
    r.task = spec.name + "@" + spec.version;
    r.attempt = a.attempt;
    r.host = a.host.empty() ? host_ : a.host;
    r.started_us = a.started_us;
    r.ended_us = a.ended_us;
    r.exit_status = a.exit_status;
    r.command = command_text(spec);
    for (TaskId p : spec.after) r.inputs += (r.inputs.empty() ? "" : " ") + workflow_.tasks[p].name;
    rows.push_back(std::move(r));
  }
  contents.provenance = &rows;
  auto ok = view_ ? view_->finish(contents) : write_packed_file(run_dir_ + "/run.h5", contents);
  view_.reset();
  if (!ok) std::fprintf(stderr, "sluice: warning: %s\n", ok.error().message.c_str());
}

}  // namespace sluice
