// The coordinator's side of artifacts: the environment and placeholders that pass a
// task its parents' artifacts, sealing an attempt's artifact with its provenance, and
// the run's view file linking each task's final artifact.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/coordinator_impl.hpp"
#include "sluice/engine/artifacts.hpp"
#include "sluice/engine/file_modes.hpp"
#include "sluice/engine/results_file.hpp"

namespace sluice {
namespace {

// "/" + the artifact's file name, appended to an attempt directory's relative path.
const std::string kArtifactLeaf = "/" + std::string(kArtifactFile);
const std::string kResultsLeaf = "/" + std::string(kResultsFile);

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
  for (TaskId p : spec.after) {
    if (!has_artifact_[p]) continue;
    std::string path = final_artifact(p);
    if (!inputs.empty()) inputs += ':';
    inputs += path;
    req.env.emplace_back(input_env_name(workflow_.tasks[p].name), std::move(path));
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
    parents.push_back({workflow_.tasks[p].name, has_artifact_[p] ? final_artifact(p) : ""});
  std::string tmp;
  if (!spec.shell.empty() && !substitute_input_values(spec.shell, parents, shell, why))
    return false;
  for (const auto& a : spec.command) {
    if (!substitute_input_values(a, parents, tmp, why)) return false;
    command.push_back(tmp);
  }
  return true;
}

void Coordinator::Impl::seal_artifact(Completion& c) {
  const TaskSpec& spec = workflow_.tasks[c.task];
  const std::string dir = store_.attempt_dir(run_id_, spec.name, c.attempt);
  const std::string path = artifact_path(dir);
  has_artifact_[c.task] = 0;
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
  // Most attempts leave neither file: two lookups decide it.
  const std::string results_path = dir + kResultsLeaf;
  struct stat results_st, st;
  const int results_err = lstat_in(&kResultsLeaf, results_path, results_st);
  const int artifact_err = lstat_in(&kArtifactLeaf, path, st);
  if (results_err == ENOENT && artifact_err == ENOENT) return;  // also: no directory made
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
  if (artifact_err != 0) {
    if (results.empty()) return;  // no artifact: nothing to pass on
    // Only results: the artifact is written and sealed in one pass.
    auto sealed = write_sealed_artifact(path, results, provenance_of(c),
                                        c.content_hash.empty() && cache_parts_.count(c.task));
    if (!sealed) {
      c.failure = "bad results: " + sealed.error().message;
      return;
    }
    record_sealed(c, path, std::move(*sealed));
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
  if (!spec.shell.empty()) {
    p.command = spec.shell;
  } else {
    for (const auto& a : spec.command) p.command += (p.command.empty() ? "" : " ") + a;
  }
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
  std::vector<std::pair<std::string, std::string>> links;
  const std::string prefix = run_dir_ + "/";
  for (TaskId t = 0; t < workflow_.tasks.size(); ++t) {
    if (!has_artifact_[t] || scheduler_.state(t) != TaskState::kSucceeded) continue;
    std::string path = final_artifact(t);
    if (path.compare(0, prefix.size(), prefix) == 0) path.erase(0, prefix.size());
    links.emplace_back(workflow_.tasks[t].name, std::move(path));
  }
  if (links.empty()) return;
  (void)sluice::write_run_view(run_dir_ + "/run.h5", links);
}

}  // namespace sluice
