// Content-addressed caching: a task instance whose cache key matches an earlier
// successful attempt (same project, same Sluice home) reuses that attempt's artifact and
// declared outputs instead of running.
//
// The key covers what a task's result really depends on: its name (group) and version,
// matrix parameters, the resolved command or shell string, the `env` it declares, its
// workdir (relative to the workflow's directory when inside it), its declared outputs,
// and the result hashes of its inputs in order. The result hash of an attempt is the
// content hash of its artifact's values plus the checksums of its declared outputs, so
// a parent that reruns and produces the same values keeps its dependents cached.
// Resources (cpus, gpus, memory, executor, partition), retries, time limits and the
// backend are not part of the key: a run moved from a laptop to the cluster stays cached.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/engine/store.hpp"
#include "sluice/error.hpp"
#include "sluice/task_spec.hpp"

namespace sluice {

// The parts of a cache key, each a hash, kept apart so a miss can say what changed.
struct CacheKeyParts {
  std::string identity;  // group@version and matrix parameters
  std::string command;   // resolved argv or shell string
  std::string env;       // the task's declared env
  std::string workdir;
  std::string outputs;  // declared output paths
  std::string inputs;   // the inputs' result hashes, in order

  std::string key() const;        // the combined key, "xxh3:<16 hex>"
  std::string serialize() const;  // "identity=…;command=…;…"
  static CacheKeyParts parse(const std::string& text);
  // Human names of the parts that differ from `earlier` ("version or name", "command",
  // "env", "workdir", "outputs", "inputs").
  std::vector<std::string> changed_since(const CacheKeyParts& earlier) const;
};

// The key parts of one task instance. `command`/`shell` are the resolved ones (input
// placeholders substituted); `input_results` the result hashes of its parents in order.
CacheKeyParts cache_key_parts(const TaskSpec& spec, const std::string& base_dir,
                              const std::vector<std::string>& command, const std::string& shell,
                              std::span<const std::string> input_results);

// The result hash of an attempt from what its directory holds: the content hash of
// output.h5 (or "none") and the checksums of outputs/0, outputs/1, … .
Expected<std::string> attempt_result_hash(const std::string& attempt_dir);
// The same when the artifact's content hash is already known (from the values its
// writer held, see values_content_hash; "none" for no artifact): output.h5 is not read,
// only the kept outputs' checksums are.
Expected<std::string> attempt_result_hash(const std::string& attempt_dir,
                                          const std::string& content_hash);

// What the cache holds for a key, checked: an entry is never trusted blindly, its
// attempt directory must still hold exactly what was filed (the artifact's content
// hash, the kept outputs' checksums). The run and the dry run decide with this.
struct CacheLookup {
  enum class Status { kMiss, kHit, kStale } status = Status::kMiss;
  CacheEntry entry;  // kHit and kStale: the entry found
  // kHit: the values the entry's attempt packed (in the store, no file of its own).
  std::shared_ptr<const Map> values;
};
Expected<CacheLookup> lookup_cache(RunStore& store, const std::string& project,
                                   const std::string& key);

// Whether the run directory the entry's attempt ran in is still there. An attempt that
// wrote no file has no directory of its own (it borrowed a scratch folder), so a cleaned
// scratch disk shows only in its run's directory: lookup_cache() calls such an entry
// stale, and `cache list` unusable.
bool cache_source_present(const CacheEntry& e);

// The keys a project's cache held when it was read, to skip the store for keys it does
// not hold (a new sweep looks up every one of its tasks, and finds none). A key that
// another process files later is not seen: that task runs instead of being served from
// the cache, which costs time, never correctness.
class CacheKeyFilter {
 public:
  // Beyond `max_keys` keys the filter is not worth its memory (8 bytes a key): nullopt.
  static Expected<std::optional<CacheKeyFilter>> load(RunStore& store, const std::string& project,
                                                      std::size_t max_keys = 4u << 20);
  // False: the store certainly held no entry for `key`.
  bool may_hold(std::string_view key) const;

 private:
  std::vector<std::uint64_t> digests_;  // sorted
};

// Declared outputs are kept in ATTEMPT_DIR/outputs/<index>, in declaration order.
std::string kept_output_path(const std::string& attempt_dir, std::size_t index);

}  // namespace sluice
