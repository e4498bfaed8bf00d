// StoreWriter: commits a coordinator's batches of changes on a thread of its own, through
// a connection of its own, so that SQLite's work (a few milliseconds per batch under
// group commit: B-tree inserts, WAL frames, checksums) overlaps launching and reaping
// instead of pausing them. On a machine whose cores run the tasks, that pause left a
// slot empty for as long as each commit took.
//
// One batch at a time, in the order handed over. A batch that must be durable before
// the caller goes on (a parent's success before its dependents launch, new child
// tasks, the run's start and end) goes through commit_now(), which waits for the batch
// in flight and then applies on the calling thread: the same cost as before, no handoff.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "sluice/engine/store.hpp"
#include "sluice/error.hpp"

namespace sluice {

class StoreWriter {
 public:
  // `store` is used only through this writer from now on.
  StoreWriter(std::unique_ptr<RunStore> store, std::string run_id);
  ~StoreWriter();  // finishes the batch in flight, then joins
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  // Hands `update` over when no batch is in flight: its contents move to the writer and
  // it comes back empty (with the capacity of an earlier batch). False, leaving `update`
  // as it was, while the previous batch is still being committed. An error when an
  // earlier batch failed (nothing is taken then).
  Expected<bool> try_submit(RunUpdate& update);
  // True while the batch handed over last has not been committed.
  bool busy();
  // True while the batch in flight records a task's success.
  bool success_in_flight();
  // Waits for the batch in flight. Returns the first error of any batch so far.
  Expected<void> wait();
  // wait(), then applies `update` on the calling thread.
  Expected<void> commit_now(const RunUpdate& update);

 private:
  void loop();

  std::unique_ptr<RunStore> store_;
  std::string run_id_;
  std::mutex mutex_;
  std::condition_variable wake_;  // a batch or stop for the thread; idle for waiters
  RunUpdate batch_;               // owned by the thread while busy_
  bool busy_ = false;
  bool success_ = false;  // batch_ holds a success
  bool stop_ = false;
  std::optional<Error> error_;
  std::thread thread_;
};

}  // namespace sluice
