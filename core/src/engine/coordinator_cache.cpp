// The coordinator's side of caching: looking a task up before it launches, completing
// it from an earlier attempt on a valid hit, and filing successful attempts.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "engine/coordinator_impl.hpp"
#include "sluice/engine/artifacts.hpp"
#include "sluice/engine/cache_key.hpp"

namespace sluice {
namespace {

namespace fs = std::filesystem;

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// A hard link shares the immutable cached file; across filesystems, a copy.
bool link_or_copy(const std::string& from, const std::string& to) {
  if (::link(from.c_str(), to.c_str()) == 0) return true;
  std::error_code ec;
  return fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
}

}  // namespace

const std::string& Coordinator::Impl::result_hash(TaskId t) {
  std::string& h = result_hash_[t];
  if (h.empty() && packed_[t]) {
    auto computed = attempt_result_hash(
        store_.attempt_dir(run_id_, workflow_.tasks[t].name, scheduler_.attempts(t)),
        values_content_hash(*packed_[t]));
    h = computed ? *computed : "unreadable:" + computed.error().message;
  }
  if (h.empty() && !has_artifact_[t] && workflow_.tasks[t].outputs.empty() &&
      scheduler_.state(t) == TaskState::kSucceeded) {
    // Nothing to hash (the common case of a sweep): the hash of an empty attempt
    // directory, computed once, instead of two stat calls per task.
    static const std::string kNothing = [] {
      auto none = attempt_result_hash("/nonexistent/sluice/attempt");
      return none ? *none : std::string();
    }();
    if (!kNothing.empty()) h = kNothing;
  }
  if (h.empty()) {
    auto computed = attempt_result_hash(
        store_.attempt_dir(run_id_, workflow_.tasks[t].name, scheduler_.attempts(t)));
    h = computed ? *computed : "unreadable:" + computed.error().message;
  }
  return h;
}

bool Coordinator::Impl::try_cache(const Launch& l, const std::string& dir,
                                  const std::vector<std::string>& command, const std::string& shell,
                                  TimePoint now) {
  const TaskSpec& spec = workflow_.tasks[l.task];
  std::vector<std::string> inputs;
  inputs.reserve(spec.after.size());
  for (TaskId p : spec.after) inputs.push_back(result_hash(p));
  const CacheKeyParts parts =
      cache_key_parts(spec, workflow_.base_dir, command.empty() ? spec.command : command,
                      shell.empty() ? spec.shell : shell, inputs);
  const std::string key = parts.key();
  cache_parts_[l.task] = {key, parts.serialize()};

  if (cache_filter_ && !cache_filter_->may_hold(key)) return false;
  auto found = lookup_cache(store_, workflow_.project, key);
  if (!found || found->status == CacheLookup::Status::kMiss) return false;
  const CacheEntry& e = found->entry;
  if (found->status == CacheLookup::Status::kStale) {
    std::fprintf(stderr,
                 "sluice: warning: cache entry for task '%s' (run %s) ignored: its artifact or "
                 "outputs are missing or changed; running the task\n",
                 spec.name.c_str(), e.run_id.c_str());
    return false;
  }
  const std::string src_artifact = artifact_path(e.attempt_dir);
  const bool has_artifact = exists(src_artifact);
  if (has_artifact || !spec.outputs.empty()) {
    // In-process backends make attempt directories lazily: a hit must make its own.
    std::error_code dir_ec;
    fs::create_directories(dir, dir_ec);
  }
  if (has_artifact && !link_or_copy(src_artifact, artifact_path(dir))) {
    std::fprintf(stderr,
                 "sluice: warning: cache entry for task '%s' (run %s) not used: cannot link "
                 "%s into %s; running the task\n",
                 spec.name.c_str(), e.run_id.c_str(), src_artifact.c_str(), dir.c_str());
    return false;
  }
  for (std::size_t i = 0; i < spec.outputs.size(); ++i) {
    const std::string kept = kept_output_path(e.attempt_dir, i);
    if (!exists(kept)) return false;
    std::error_code ec;
    fs::create_directories(dir + "/outputs", ec);
    if (!link_or_copy(kept, kept_output_path(dir, i))) return false;
    // Put the file back where the task would have written it (a copy: the user may
    // edit it in place, the kept one must not change).
    const fs::path target = fs::path(spec.workdir) / spec.outputs[i];
    fs::create_directories(target.parent_path(), ec);
    fs::copy_file(kept, target, fs::copy_options::overwrite_existing, ec);
    if (ec) return false;
  }

  scheduler_.on_attempt_started(l.task, l.attempt, now);
  const std::int64_t t = now_us();
  AttemptRecord a;
  a.task = l.task;
  a.attempt = l.attempt;
  a.state = TaskState::kRunning;
  a.started_us = t;
  a.host = "cache";
  pending_.attempt_starts.push_back(std::move(a));
  CachedCompletion cc;
  cc.completion.task = l.task;
  cc.completion.attempt = l.attempt;
  cc.completion.kind = ExitKind::kExited;
  cc.completion.started_us = cc.completion.ended_us = t;
  cc.completion.host = "cache";
  cc.source_dir = e.attempt_dir;
  cc.note =
      "cached from run " + e.run_id + " (" + e.task + " attempt " + std::to_string(e.attempt) + ")";
  cc.result_hash = e.result_hash;
  cc.completion.values = std::move(found->values);
  cached_.push_back(std::move(cc));
  return true;
}

void Coordinator::Impl::finish_cached(TimePoint now) {
  std::vector<CachedCompletion> done;
  done.swap(cached_);
  for (CachedCompletion& cc : done) {
    Completion& c = cc.completion;
    has_artifact_[c.task] =
        exists(artifact_path(store_.attempt_dir(run_id_, workflow_.tasks[c.task].name, c.attempt)));
    cache_parts_.erase(c.task);  // already filed: the source's entry stands
    packed_[c.task].reset();
    if (c.values) pack_values(c, std::move(c.values));
    ingest_children(c, &cc.source_dir);  // a cached map still gets its children
    auto outcome = scheduler_.on_attempt_finished(c, now);
    if (!outcome) continue;
    if (outcome->state == TaskState::kSucceeded) result_hash_[c.task] = cc.result_hash;
    AttemptRecord a;
    a.task = c.task;
    a.attempt = c.attempt;
    a.state = outcome->state;
    a.reason = outcome->state == TaskState::kSucceeded ? cc.note : outcome->reason;
    a.ended_us = c.ended_us;
    traces_.push_back({c.task, c.attempt, 0, c.started_us, c.ended_us, c.host});
    pending_.attempt_ends.push_back(std::move(a));
    drop_empty_attempt_dir(c.task, c.attempt);
  }
}

void Coordinator::Impl::keep_outputs(Completion& c) {
  const TaskSpec& spec = workflow_.tasks[c.task];
  if (spec.outputs.empty()) return;
  const std::string dir = store_.attempt_dir(run_id_, spec.name, c.attempt);
  std::error_code ec;
  fs::create_directories(dir + "/outputs", ec);
  for (std::size_t i = 0; i < spec.outputs.size(); ++i) {
    const fs::path written = fs::path(spec.workdir) / spec.outputs[i];
    if (!fs::is_regular_file(written, ec)) {
      c.failure = "declared output '" + spec.outputs[i] + "' was not written (looked for " +
                  written.string() + ")";
      return;
    }
    fs::copy_file(written, kept_output_path(dir, i), fs::copy_options::overwrite_existing, ec);
    if (ec) {
      c.failure = "cannot keep output '" + spec.outputs[i] + "': " + ec.message();
      return;
    }
  }
}

void Coordinator::Impl::file_in_cache(TaskId t, std::uint32_t attempt,
                                      const std::string& content_hash) {
  auto parts = cache_parts_.find(t);
  if (parts == cache_parts_.end()) return;
  const TaskSpec& spec = workflow_.tasks[t];
  result_hash_[t].clear();  // the new attempt's, computed now
  if (!content_hash.empty() && (has_artifact_[t] || packed_[t])) {
    // The writer hashed the values it wrote: no need to read the artifact back. (A
    // later lookup still rehashes the file, so a change on disk is detected then.)
    auto known = attempt_result_hash(store_.attempt_dir(run_id_, spec.name, attempt), content_hash);
    result_hash_[t] = known ? *known : "unreadable:" + known.error().message;
  }
  const std::string& hash = result_hash(t);
  if (hash.rfind("unreadable:", 0) == 0) {
    cache_parts_.erase(parts);
    return;
  }
  CacheEntry e;
  e.project = workflow_.project;
  e.key = std::move(parts->second.key);
  e.workflow = workflow_.name;
  e.task = spec.name;
  e.run_id = run_id_;
  e.attempt = attempt;
  e.attempt_dir = store_.attempt_dir(run_id_, spec.name, attempt);
  e.result_hash = hash;
  e.parts = std::move(parts->second.parts);
  cache_parts_.erase(parts);
  if (cache_backlog_.empty()) cache_backlog_since_ = std::chrono::steady_clock::now();
  cache_backlog_.push_back(std::move(e));
}

}  // namespace sluice
