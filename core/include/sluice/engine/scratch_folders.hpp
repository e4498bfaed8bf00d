// Scratch folders: where an attempt of a spooling backend finds SLUICE_ATTEMPT_DIR.
//
// Making and removing a directory per attempt cost ~15% of a local launch's CPU in the
// fleet profile (and far more on ext4 just after a mass deletion), although most tasks
// leave nothing there. Instead each concurrent attempt borrows one of a few folders in
// RUN/scratch, made once and reused. When the attempt ends, a folder it left empty goes
// back to the pool as it is; one it wrote into is renamed to the attempt's canonical
// directory (RUN/tasks/TASK/N), where every reader looks, and a new empty folder with a
// new name takes its place; the old name becomes a symbolic link to the attempt's
// directory, so paths the attempt handed on (values naming its files) stay valid. A
// process that outlived its attempt (one that escaped the process group with setsid)
// and writes by path reaches its own attempt's directory, never the next attempt's.
//
// Who lends: the coordinator, for local and pilot attempts; each MPI worker rank, for
// the attempts it starts (rank 0 spends no file-system time per attempt). Several
// lenders share RUN/scratch: each names its folders "<prefix><lane>-<seq>" with a prefix
// of its own, made with mkdir's O_EXCL semantics and numbered past every name already
// there, so no name is ever lent twice, across lenders and across a crash and resume.
// The coordinator sweeps at start (open() with `sweep`), before any lender lends: the
// empty folders go; one that holds files stays as it is (the leftovers of an attempt that
// was lost in the crash, recorded as lost and run again under a new folder).
//
// Thread-safety: a ScratchFolders is used from one thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sluice/state.hpp"

namespace sluice {

class ScratchFolders {
 public:
  // `prefix` begins every folder name this lender makes ("" for the coordinator, "r3."
  // for MPI rank 3): lenders sharing RUN/scratch need distinct prefixes, none a prefix
  // of a lane number ("0-…") another lender makes.
  explicit ScratchFolders(std::string prefix = {});
  // close().
  ~ScratchFolders();
  ScratchFolders(const ScratchFolders&) = delete;
  ScratchFolders& operator=(const ScratchFolders&) = delete;

  // Makes `run_dir`/scratch and opens it; with `sweep`, first removes the empty folders
  // found there (see above: only a lender that starts before every other sweeps). False
  // (errno set) when it cannot: attempts then need directories of their own.
  bool open(const std::string& run_dir, bool sweep);
  bool is_open() const { return dir_fd_ >= 0; }
  // RUN/scratch, "" while closed.
  const std::string& dir() const { return dir_; }
  // The run directory open() was given, "" while closed.
  const std::string& run_dir() const { return run_dir_; }
  // Removes the free folders (one still lent stays: it is removed only when empty anyway,
  // and its attempt may resume later), then RUN/scratch when nothing else is left in it,
  // and closes. Does nothing while closed.
  void close();

  // Lends a folder to attempt (task, attempt) and sets `path` to it. False (errno set)
  // when no folder could be made. REQUIRES: is_open().
  bool take(TaskId task, std::uint32_t attempt, std::string& path);
  // The folder lent to the attempt, or "" when it borrowed none.
  std::string path_of(TaskId task, std::uint32_t attempt) const;
  // How many folders are lent now.
  std::size_t lent() const { return lent_.size(); }

  // After the attempt ended (its processes are gone) or was refused: a folder it wrote
  // into becomes its canonical directory TASK/ATTEMPT relative to `tasks_fd` (the open
  // RUN/tasks; `task` is named `task_name`) and a fresh one replaces it; an empty folder
  // goes back to the pool. When `task_dir_made` is 0 the task's directory is made first,
  // and it is set to 1. When the canonical directory exists already (a cache hit restored
  // the artifact there, the coordinator wrote the inputs list there, a crashed run left
  // one), what the folder holds moves in beside it, never over it. Does nothing for an
  // attempt that borrowed none.
  void settle(TaskId task, std::uint32_t attempt, int tasks_fd, const std::string& task_name,
              std::uint8_t& task_dir_made);
  // Before settle(): when the folder lent to the attempt holds nothing but a regular file
  // named `leaf` of at most `max_bytes` (a task that only passed values, such as a
  // map-reduce child's results file), reads it into `text` and returns true; false
  // otherwise. Changes nothing: remove_file() then empties the folder, so that settle()
  // gives it back to the pool instead of renaming it into place (a directory, a rename
  // and a link fewer per such attempt).
  bool read_sole_file(TaskId task, std::uint32_t attempt, std::string_view leaf,
                      std::size_t max_bytes, std::string& text) const;
  // Removes `leaf` from the folder lent to the attempt. False when it cannot.
  bool remove_file(TaskId task, std::uint32_t attempt, std::string_view leaf);

 private:
  struct Lane {
    std::string name;  // relative to RUN/scratch
    int fd = -1;       // the folder, open to tell cheaply whether it is empty
  };
  bool make_lane(std::size_t index);

  std::string prefix_;
  std::string run_dir_;
  std::string dir_;  // RUN/scratch
  int dir_fd_ = -1;
  std::vector<Lane> lanes_;
  std::vector<std::size_t> free_;
  std::unordered_map<std::uint64_t, std::size_t> lent_;  // task << 32 | attempt -> lane
  std::uint64_t seq_ = 0;
};

}  // namespace sluice
