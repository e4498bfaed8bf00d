#include "store/store_writer.hpp"

#include <algorithm>
#include <utility>

namespace sluice {

StoreWriter::StoreWriter(std::unique_ptr<RunStore> store, std::string run_id)
    : store_(std::move(store)), run_id_(std::move(run_id)), thread_([this] { loop(); }) {}

StoreWriter::~StoreWriter() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void StoreWriter::loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return busy_ || stop_; });
    if (!busy_) return;  // stopping with nothing in flight
    lock.unlock();
    auto r = store_->apply(run_id_, batch_);  // batch_ is the thread's while busy_
    batch_.clear();
    lock.lock();
    if (!r && !error_) error_ = r.error();
    busy_ = success_ = false;
    wake_.notify_all();
  }
}

Expected<bool> StoreWriter::try_submit(RunUpdate& update) {
  {
    std::lock_guard lock(mutex_);
    if (error_) return tl::unexpected(*error_);
    if (busy_) return false;
    std::swap(batch_, update);  // `update` gets the committed batch's emptied vectors
    success_ = std::any_of(batch_.changes.begin(), batch_.changes.end(),
                           [](const StateChange& c) { return c.state == TaskState::kSucceeded; });
    busy_ = true;
  }
  wake_.notify_all();
  return true;
}

bool StoreWriter::busy() {
  std::lock_guard lock(mutex_);
  return busy_;
}

bool StoreWriter::success_in_flight() {
  std::lock_guard lock(mutex_);
  return success_;
}

Expected<void> StoreWriter::wait() {
  std::unique_lock lock(mutex_);
  wake_.wait(lock, [&] { return !busy_; });
  if (error_) return tl::unexpected(*error_);
  return {};
}

Expected<void> StoreWriter::commit_now(const RunUpdate& update) {
  if (auto r = wait(); !r) return r;
  // The thread is idle until the next try_submit(), which only this caller makes: the
  // connection is ours meanwhile (the mutex orders its use after the thread's).
  return store_->apply(run_id_, update);
}

}  // namespace sluice
