// RunStore: the persistent record of workflows, runs, tasks, attempts and events, in one
// SQLite database (WAL mode) under the Sluice home directory. It is the truth: the
// coordinator writes every state change here, in batched transactions, before acting on
// it, and `sluice resume` rebuilds a run from it.
//
// Exactly one process writes a given run (its coordinator); any number of other
// processes read concurrently through their own RunStore opened read-only. A RunStore
// object is not thread-safe: use one per thread.
//
// Layout of the home directory:
//   HOME/store.db                          this database
//   HOME/runs/RUN/                         one directory per run
//   HOME/runs/RUN/spools/                  attempts' logs, one spool per lane (log_spool.hpp)
//   HOME/runs/RUN/tasks/TASK/ATTEMPT/      an attempt's files, only when it left some
//                                          (older homes: stdout and stderr of every attempt)
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "sluice/engine/log_spool.hpp"
#include "sluice/error.hpp"
#include "sluice/records.hpp"
#include "sluice/state.hpp"
#include "sluice/value.hpp"
#include "sluice/workflow.hpp"

namespace sluice {

// A task added while the run went on (a dynamic child), as the store keeps it.
struct DynamicTaskRecord {
  TaskId index = 0;
  std::string name;
  std::string group;
  TaskId parent = 0;
  std::int64_t before = -1;  // the task it runs before, or -1
  std::string spec;          // its definition as a child request document (TOML)
};

struct EventRecord {
  std::int64_t seq = 0;
  std::int64_t time_us = 0;
  std::optional<TaskId> task;
  std::string kind;  // "run:running", "task:failed", …
  std::string detail;
};

// A successful attempt filed under its cache key (see cache.hpp).
struct CacheEntry {
  std::string project;
  std::string key;
  std::string workflow;  // the workflow's name
  std::string task;      // the task's name in it
  std::string run_id;
  std::uint32_t attempt = 0;
  std::string attempt_dir;
  std::string result_hash;
  std::string parts;  // CacheKeyParts::serialize()
  std::int64_t created_us = 0;
};

// Where one attempt's spooled logs are (table attempt_logs; only attempts that printed).
struct AttemptLog {
  TaskId task = 0;
  std::uint32_t attempt = 0;
  LogSpan span;
};

// The values an attempt packed (no file of its own): table task_values, one row per key.
struct AttemptValues {
  TaskId task = 0;
  std::uint32_t attempt = 0;
  std::shared_ptr<const Map> values;
};

// One batch of changes for one run, written in a single transaction.
struct RunUpdate {
  std::vector<DynamicTaskRecord> new_tasks;  // inserted first, as waiting tasks
  std::vector<StateChange> changes;
  std::vector<AttemptRecord> attempt_starts;  // inserted
  std::vector<AttemptRecord> attempt_ends;    // update state/exit/reason/ended_us
  std::optional<RunState> run_state;
  std::vector<CacheEntry> cache_entries;  // filed (replacing any with the same key)
  std::vector<AttemptLog> logs;           // where attempts' spooled logs are
  std::vector<AttemptValues> values;      // packed with the attempt's success
  std::int64_t now_us = 0;

  bool empty() const {
    return new_tasks.empty() && changes.empty() && attempt_starts.empty() && attempt_ends.empty() &&
           !run_state && cache_entries.empty() && logs.empty() && values.empty();
  }
  // Empties it for the next batch, keeping the vectors' capacity.
  void clear() {
    new_tasks.clear();
    changes.clear();
    attempt_starts.clear();
    attempt_ends.clear();
    run_state.reset();
    cache_entries.clear();
    logs.clear();
    values.clear();
    now_us = 0;
  }
};

class RunStore {
 public:
  enum class Mode { kReadWrite, kReadOnly };

  // Opens (creating if needed and mode is kReadWrite) HOME/store.db. kReadOnly on a home
  // with no store returns kNotFound.
  static Expected<std::unique_ptr<RunStore>> open(const std::string& home, Mode mode);
  // The schema version this build reads and writes (SQLite's user_version).
  static int schema_version();
  ~RunStore();
  RunStore(const RunStore&) = delete;
  RunStore& operator=(const RunStore&) = delete;

  const std::string& home() const { return home_; }
  std::string run_dir(const std::string& run_id) const;
  std::string attempt_dir(const std::string& run_id, const std::string& task,
                          std::uint32_t attempt) const;

  // Records the definition; returns its revision: the existing one when the content
  // hash is already known for project:name, otherwise the next number.
  Expected<int> register_workflow(const Workflow& workflow);

  // Creates the run and one row per task (waiting), in one transaction.
  Expected<RunRecord> create_run(const Workflow& workflow, int revision, const std::string& run_id,
                                 const std::string& backend);

  Expected<void> apply(const std::string& run_id, const RunUpdate& update);

  // Resolves a full id or a unique prefix. kNotFound / kInvalidInput (ambiguous).
  Expected<std::string> resolve_run_id(const std::string& id_or_prefix);
  Expected<RunRecord> get_run(const std::string& run_id);
  // Newest first. Empty `states` lists every run.
  Expected<std::vector<RunRecord>> list_runs(std::span<const RunState> states);
  Expected<std::vector<TaskRecord>> list_tasks(const std::string& run_id);
  // The dynamic children of a run, in insertion (index) order.
  Expected<std::vector<DynamicTaskRecord>> list_dynamic_tasks(const std::string& run_id);
  Expected<std::vector<AttemptRecord>> list_attempts(const std::string& run_id,
                                                     std::optional<TaskId> task = std::nullopt);
  Expected<std::vector<EventRecord>> list_events(const std::string& run_id);
  // The values an attempt packed (table task_values); nullopt when it packed none (it
  // wrote its own artifact, nothing, or ran in a home older than schema 6).
  Expected<std::optional<Map>> attempt_values(const std::string& run_id, TaskId task,
                                              std::uint32_t attempt);
  // The same, the task named by its name (the cache's entries name tasks so).
  Expected<std::optional<Map>> attempt_values(const std::string& run_id, const std::string& task,
                                              std::uint32_t attempt);
  // Every attempt's packed values in the run, in (task, attempt) order.
  Expected<std::vector<AttemptValues>> run_values(const std::string& run_id);
  // Where the attempt's spooled logs are; nullopt when it has none recorded (it printed
  // nothing, it still runs, or an older home kept them in its attempt directory).
  Expected<std::optional<LogSpan>> attempt_log(const std::string& run_id, TaskId task,
                                               std::uint32_t attempt);
  // How many attempts recorded spooled logs, and in how many distinct spools.
  Expected<std::pair<std::int64_t, std::int64_t>> log_counts(const std::string& run_id);
  // The workflow text the run was created from.
  Expected<std::string> run_definition(const std::string& run_id);
  // Workflow revisions known for project:name (ascending).
  Expected<std::vector<int>> revisions(const std::string& project, const std::string& name);

  // The cache entry of `key` in `project`, or nullopt.
  Expected<std::optional<CacheEntry>> find_cache(const std::string& project,
                                                 const std::string& key);
  // Calls `visit` with each cache key of `project`, in no particular order; stops early
  // (returning false) when `visit` returns false.
  Expected<bool> visit_cache_keys(const std::string& project,
                                  const std::function<bool(std::string_view)>& visit);
  // The newest entry of one task of a workflow (whatever its key), or nullopt.
  Expected<std::optional<CacheEntry>> latest_cache(const std::string& project,
                                                   const std::string& workflow,
                                                   const std::string& task);
  // Entries, newest first; empty `project` lists every project.
  Expected<std::vector<CacheEntry>> list_cache(const std::string& project);
  // Forgets entries created before `before_us` (0: any age) of `project` ("" : all).
  // Returns how many. Artifacts belong to their runs and are not deleted.
  Expected<std::size_t> prune_cache(std::int64_t before_us, const std::string& project);
  // Forgets these entries (by project and key), in one transaction; returns how many.
  Expected<std::size_t> forget_cache(const std::vector<CacheEntry>& entries);
  // Every workflow revision, by project, name and revision.
  Expected<std::vector<WorkflowRecord>> list_workflows();

  // Records the backend a run now executes on (`APP start RUN --backend local` on a run
  // prepared for another).
  Expected<void> set_run_backend(const std::string& run_id, const std::string& backend);

  // Deletes the run's rows, its cache entries and its directory.
  Expected<void> remove_run(const std::string& run_id);

 private:
  RunStore() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string home_;
};

}  // namespace sluice
