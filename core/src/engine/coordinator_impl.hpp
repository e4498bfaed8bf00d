// The coordinator's state and the steps of its loop (coordinator.cpp and its
// coordinator_*.cpp companions). Private to sluice_core: the public Coordinator
// (sluice/engine/coordinator.hpp) holds one behind a pointer, so its users compile none
// of this and a change here recompiles only the engine.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/run_view_writer.hpp"
#include "sluice/engine/backend.hpp"
#include "sluice/engine/cache_key.hpp"
#include "sluice/engine/coordinator.hpp"
#include "sluice/engine/graph.hpp"
#include "sluice/engine/scheduler.hpp"
#include "sluice/engine/scratch_folders.hpp"
#include "sluice/engine/store.hpp"
#include "sluice/workflow.hpp"

namespace sluice {

class StoreWriter;      // store/store_writer.hpp
struct Provenance;      // engine/artifacts.hpp
struct SealedArtifact;  // engine/artifacts.hpp

// Removes an attempt directory's empty logs and then the directory, if nothing else is
// there (coordinator.cpp; resume uses it too). `dir` is relative to `base` (or AT_FDCWD).
void remove_attempt_dir(int base, const std::string& dir);

class Coordinator::Impl : private RunDriverHost {
 public:
  // REQUIRES: the run exists in `store` and was created from `workflow`; the caller
  // holds the run's RunLock. All references must outlive the coordinator. Dynamic
  // children that attempts add are appended to `workflow` as the run goes on.
  Impl(RunStore& store, Backend& backend, Workflow& workflow, std::string run_id);
  ~Impl();

  // Before run(): rebuilds task states from the store, dynamic children included
  // (their parents are not asked again). Succeeded tasks stay done; attempts that were
  // in flight stay running when Backend::reattach() takes them back, else they are
  // killed through Backend::abandon() and recorded as lost; failed, cancelled and
  // skipped tasks are queued again with a fresh retry budget.
  Expected<void> restore_from_store();

  // Runs until every task is finished, cancelled (interrupt or `sluice cancel`) or
  // skipped. Returns the final run state, or an error if the store failed.
  Expected<RunState> run(const CoordinatorOptions& options);

  const Scheduler& scheduler() const { return scheduler_; }

 private:
  // RunDriverHost (coordinator_driver.cpp): what a RunDriver may do between steps.
  TaskId add_task(TaskSpec spec, TaskId parent) override;
  Workflow& workflow() override { return workflow_; }
  TaskState state(TaskId t) const override { return scheduler_.state(t); }
  std::string artifact(TaskId t) const override { return final_artifact(t); }
  std::shared_ptr<const Value> result_in_memory(TaskId t) const override {
    return backend_.result_in_memory(t);
  }
  std::shared_ptr<const Map> packed_values(TaskId t) const override { return packed_[t]; }
  const std::string& run_dir() const override { return run_dir_; }
  // Lets the driver step when it has work, after committing what it will read. False
  // (with the error) when the commit failed.
  Expected<void> drive(RunDriver& driver);

  // Commits every pending change (and `run_state`) before returning. The cache backlog
  // goes too unless `file_cache` is false: a commit that only has to precede a dependent's
  // launch (once per link of a chain) leaves it for a later batch, since each entry dirties
  // a page of its own and losing the backlog in a crash costs only a later cache miss.
  Expected<void> flush(std::optional<RunState> run_state, bool file_cache = true);
  // Commits `update` before returning, after any batch the writer thread still commits.
  Expected<void> commit_now(const RunUpdate& update);
  // Hands the pending changes to the writer thread when it is idle; false (they stay
  // pending) while it still commits the previous batch.
  Expected<bool> flush_in_background();
  // Moves out of pending_, into held_, the attempts it starts that have not ended, with
  // their tasks' changes, once: the next batch then writes each such attempt and task
  // row once, with its end, instead of an insert and an update each.
  void hold_back_fresh_starts();
  // Moves the scheduler's new changes into pending_, and the cache backlog with them when
  // `all_cache` or when it is due; false when nothing is pending.
  bool gather_changes(bool all_cache);
  // An attempt's request, with the storage its resolved command points into.
  struct PreparedAttempt;
  struct LaunchPlan;
  void launch_all(const std::vector<Launch>& launches, TimePoint now);
  // True when the success of a parent of one of `launches` is not yet in the store: the
  // commit must come first (see run()).
  bool success_pending_for(std::span<const Launch> launches) const;
  // "TASK/ATTEMPT", the attempt's directory relative to tasks_fd_, in the scratch
  // string rel_ (valid until the next call).
  std::string& relative_attempt_dir(const std::string& task, std::uint32_t attempt);
  // Makes the attempt directory and the request; false (refusal recorded) on failure.
  bool prepare_launch(const Launch& l, TimePoint now, LaunchPlan& plan);
  void record_launch(const Launch& l, Expected<std::string> handle, TimePoint now);
  // `why` is cut to kMaxReasonBytes (reason_limit.hpp) before it is recorded.
  void refuse_launch(const Launch& l, std::string why, TimePoint now);
  // For a backend that spools logs: removes the attempt's directory, and its task's,
  // when the attempt left nothing there (a task that leaves no file costs no inode).
  void drop_empty_attempt_dir(TaskId task, std::uint32_t attempt);
  // Scratch folders (scratch_folders.hpp): SLUICE_ATTEMPT_DIR of a spooling backend's
  // attempts, lent per concurrent attempt instead of one directory made per attempt.
  // Makes RUN/scratch and removes the empty folders a crashed run left; false when it
  // cannot (attempts then get their directories as before). Called for every spooling
  // backend, also one whose workers lend the folders (mpi): this sweep comes before any
  // lender lends.
  bool open_scratch();
  // Removes the free folders (and RUN/scratch when it is empty) and closes them.
  void close_scratch();
  // Lends a folder to the attempt; `path` is set to it. False (errno set) on failure.
  bool take_scratch(TaskId task, std::uint32_t attempt, std::string& path);
  // After the attempt ended or was refused: ScratchFolders::settle() into its canonical
  // directory. Does nothing for an attempt that borrowed none.
  // `succeeded`: the attempt exited 0, so a folder holding only its results file is read
  // into scratch_results_ and given back instead of becoming its directory.
  void settle_scratch(TaskId task, std::uint32_t attempt, bool succeeded = false);
  // The folder lent to the attempt, or "" when it borrowed none.
  std::string scratch_path_of(TaskId task, std::uint32_t attempt) const;
  // The attempt's directory when the backend uses one, else "".
  std::string attempt_dir_if_any(TaskId task, std::uint32_t attempt) const;
  // An attempt's directory, made and with its stdout/stderr open, ready to launch.
  struct PreparedAttempt {
    std::uint32_t attempt = 0;
    int out_fd = -1;
    int err_fd = -1;
    // Made ahead of its launch: its stdout has mode 0 until launch_mode_ is set on it, so
    // a restarted coordinator tells a never-launched directory from a lost attempt.
    bool ahead = false;
  };
  struct LaunchPlan {
    PreparedAttempt prepared;
    LaunchRequest request;
    std::vector<std::string> command;
    std::string shell;
  };
  // Makes the attempt directory and opens its logs; false (errno set) on failure.
  bool prepare_attempt(const Launch& l, const std::string& dir, PreparedAttempt& out,
                       bool ahead = false);
  bool prepare_next_upcoming();
  static void close_fds(PreparedAttempt& p);
  // Removes what prepare_attempt() made for an attempt that was never launched (its
  // task was skipped or cancelled, or the run stopped first).
  void discard_prepared(TaskId task, PreparedAttempt& p);
  // Adds SLUICE_OUTPUT, SLUICE_RESULTS, SLUICE_INPUTS and SLUICE_INPUT_<PARENT> to `req`.
  // False (why_ says why) when a list too long for the environment cannot be written to
  // the attempt's `inputs` file.
  bool add_artifact_env(const TaskSpec& spec, const std::string& dir, LaunchRequest& req);
  // Resolves {inputs.PARENT.KEY} in the command; false with `why` when it cannot.
  bool resolve_input_placeholders(const TaskSpec& spec, std::vector<std::string>& command,
                                  std::string& shell, std::string& why);
  // After an attempt exited 0: merges its results file (SLUICE_RESULTS) into its artifact
  // and seals the artifact, or sets c.failure.
  void seal_artifact(Completion& c);
  Provenance provenance_of(const Completion& c);
  void record_sealed(Completion& c, const std::string& path, SealedArtifact sealed);
  // Takes `values` as the attempt's packed values (stored with its success).
  void pack_values(Completion& c, std::shared_ptr<const Map> values);
  void pack_results(Completion& c, Map results, const std::string& results_path);
  // The segment file holding packed task `t`'s values, written now (with every other
  // packed value in no segment yet) when there is none; null (why_ says why) on failure.
  const std::string* segment_for(TaskId t);
  std::string final_artifact(TaskId t) const;
  void write_run_view();
  // After SIGTERM: kills running attempts, leaves the run resumable. Returns kRunning.
  Expected<RunState> stop_attempts();
  // After an attempt exited 0: adds the children it requested (children/*.toml in its
  // attempt directory) to the workflow, graph, scheduler and the pending store update,
  // all or nothing; a bad request fails the attempt (c.failure says why).
  // `from_dir`: read the requests there instead (a cache hit replays its source's).
  void ingest_children(Completion& c, const std::string* from_dir = nullptr);
  // Appends one task whose parent is `parent` and, when `before` is set, makes that task
  // wait for it. Shared by ingest_children() and restore_from_store().
  TaskId add_dynamic_task(TaskSpec spec, TaskId parent, std::optional<TaskId> before);
  // True when `target` can be reached from `from` along child edges.
  bool is_descendant(TaskId from, TaskId target) const;

  // Caching (coordinator_cache.cpp). Before a launch: computes the task's key and, on a
  // valid hit, completes the attempt from the cache instead (returns true).
  // `command`/`shell`: the resolved ones (empty: the spec's).
  bool try_cache(const Launch& l, const std::string& dir, const std::vector<std::string>& command,
                 const std::string& shell, TimePoint now);
  // After an attempt exited 0: keeps its declared outputs (or fails it), computes its
  // result hash and files it in the cache.
  void keep_outputs(Completion& c);
  // `content_hash`: the artifact's, when the backend knew it (Completion::content_hash).
  void file_in_cache(TaskId t, std::uint32_t attempt, const std::string& content_hash);
  // The result hash of a succeeded task's final attempt (computed once, lazily).
  const std::string& result_hash(TaskId t);
  // Completions made from the cache this step, handled like the backend's.
  struct CachedCompletion {
    Completion completion;
    std::string source_dir;  // the reused attempt's directory
    std::string note;        // "cached from RUN (TASK attempt N)"
    std::string result_hash;
  };
  void finish_cached(TimePoint now);

  RunStore& store_;
  Backend& backend_;
  Workflow& workflow_;
  std::string run_id_;
  std::string run_dir_;
  Graph graph_;
  Scheduler scheduler_;
  std::string host_;
  std::vector<std::uint8_t> task_dir_made_;
  bool spooling_ = false;     // backend_.spools_logs()
  std::string spool_dir_;     // RUN/spools
  int tasks_fd_ = -1;         // RUN_DIR/tasks, open while run() goes on
  std::string rel_;           // scratch: an attempt directory relative to tasks_fd_
  std::string file_path_;     // scratch: a log file's path
  bool use_scratch_ = false;  // attempts borrow scratch folders (open_scratch() succeeded)
  ScratchFolders scratch_;    // RUN/scratch: the coordinator's folders, named "<lane>-<seq>"
  // The values of results files read from folders that held nothing else
  // (settle_scratch()), by attempt_key(), until seal_artifact() packs them: at most one
  // per completion in hand.
  std::unordered_map<std::uint64_t, Map> scratch_results_;
  static std::uint64_t attempt_key(TaskId task, std::uint32_t attempt) {
    return (static_cast<std::uint64_t>(task) << 32) | attempt;
  }
  // Attempts prepared ahead while every slot was busy (at most prefetch_ of them).
  std::unordered_map<TaskId, PreparedAttempt> prepared_;
  std::vector<Launch> upcoming_;
  std::vector<TaskId> last_launched_;  // the latest step's launches: whose children come next
  std::size_t prefetch_;               // how many upcoming attempts get their directory ahead
  unsigned launch_mode_;               // a log file's mode: file_modes() under the process umask
  unsigned dir_mode_;                  // an attempt directory's, likewise
  std::string workflow_id_;            // project:name:revision
  // Tasks whose final attempt left a valid artifact, and its checksum.
  std::vector<std::uint8_t> has_artifact_;
  std::unordered_map<TaskId, std::string> checksums_;
  // Packed values (docs/artifacts.md): per task, the values its final attempt packed,
  // null when it packed none (has_artifact_ then tells whether it has a file of its own).
  std::vector<std::shared_ptr<const Map>> packed_;
  // Per task: 1 + its segment's index in segments_ (RUN/values/NNNN.h5); 0: in none yet.
  std::vector<std::uint32_t> segment_of_;
  std::vector<std::string> segments_;
  std::vector<TaskId> unsegmented_;  // packed tasks in no segment yet (maybe superseded)
  int next_segment_ = -1;            // -1: not yet looked for segments a run before left
  // run.h5, filled with packed tasks as they arrive (made on the first).
  std::unique_ptr<RunViewWriter> view_;
  // Every finished attempt, for run.h5's /provenance table.
  struct AttemptTrace {
    TaskId task = 0;
    std::uint32_t attempt = 0;
    int exit_status = 0;
    std::int64_t started_us = 0;
    std::int64_t ended_us = 0;
    std::string host;
  };
  std::vector<AttemptTrace> traces_;
  std::string why_;
  RunUpdate pending_;
  // Commits pending_ on a thread of its own while run() goes on (null: no second
  // connection could be opened, so flush() commits on this thread).
  std::unique_ptr<StoreWriter> writer_;
  std::vector<TaskId> successes_in_flight_;  // the successes of the batch writer_ commits
  // Starts held back from the batch just submitted (see hold_back_fresh_starts()): they
  // lead pending_.attempt_starts, and are not held again.
  std::size_t held_starts_ = 0;
  RunUpdate held_;
  std::vector<std::uint8_t> hold_mark_;  // per task, scratch of hold_back_fresh_starts()
  mutable std::vector<TaskId> parents_scratch_;
  bool cancelling_ = false;

  // How deeply nested each task is among dynamic children (declared tasks: 0).
  std::vector<std::uint16_t> depth_;
  bool use_cache_ = true;
  std::optional<CacheKeyFilter> cache_filter_;  // the keys the cache held at the start
  std::vector<std::string> result_hash_;        // per task, "" until known
  // The cache keys of attempts in flight, filed when they succeed.
  struct PendingKey {
    std::string key;
    std::string parts;  // CacheKeyParts::serialize()
  };
  std::unordered_map<TaskId, PendingKey> cache_parts_;
  // Successes for the cache, filed in bulk (see gather_changes()).
  std::vector<CacheEntry> cache_backlog_;
  TimePoint cache_backlog_since_{};
  std::vector<CachedCompletion> cached_;
};

}  // namespace sluice
