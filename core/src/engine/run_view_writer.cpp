#include "engine/run_view_writer.hpp"

#include <unistd.h>

#include <filesystem>
#include <unordered_set>

namespace sluice {
namespace {

// What a crashed coordinator left of its view (the lock on the run says none is alive).
void remove_stale_views(const std::string& path) {
  const std::filesystem::path p(path);
  const std::string prefix = p.filename().string() + ".tmp-";
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(p.parent_path(), ec)) {
    const std::string name = e.path().filename().string();
    if (name.compare(0, prefix.size(), prefix) == 0) std::filesystem::remove(e.path(), ec);
  }
}

}  // namespace

RunViewWriter::RunViewWriter(std::string path) : path_(std::move(path)) {}

RunViewWriter::~RunViewWriter() {
  stop();
}

void RunViewWriter::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RunViewWriter::add(const std::string& name, std::shared_ptr<const Map> values) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    queue_.emplace_back(name, std::move(values));
    if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
  }
  cv_.notify_one();
}

void RunViewWriter::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, all written
    auto item = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    if (!failed_ && !file_) {
      remove_stale_views(path_);
      auto w = PackedFileWriter::create(path_);
      if (w) {
        file_.emplace(std::move(*w));
      } else {
        failed_ = true;
      }
    }
    if (!failed_) {
      auto& slot = written_[item.first];
      // Written again: an earlier attempt's values were streamed, then replaced.
      if (slot && !file_->remove_task(item.first)) failed_ = true;
      if (!failed_ && !file_->add_task(item.first, *item.second)) failed_ = true;
      slot = std::move(item.second);
    }
    lock.lock();
  }
}

Expected<void> RunViewWriter::finish(const PackedFileContents& contents) {
  stop();  // drains the queue first
  if (failed_ || !file_) {
    file_.reset();  // removes a half-written view
    return write_packed_file(path_, contents);
  }
  auto reconcile = [&]() -> Expected<void> {
    std::unordered_set<std::string> wanted;
    wanted.reserve(contents.tasks.size());
    for (const auto& [name, values] : contents.tasks) {
      wanted.insert(name);
      auto it = written_.find(name);
      if (it != written_.end() && it->second.get() == values) continue;
      if (it != written_.end())
        if (auto ok = file_->remove_task(name); !ok) return ok;
      if (auto ok = file_->add_task(name, *values); !ok) return ok;
    }
    for (const auto& [name, values] : written_)
      if (!wanted.count(name))
        if (auto ok = file_->remove_task(name); !ok) return ok;
    for (const auto& [name, target] : contents.links)
      if (auto ok = file_->add_link(name, target); !ok) return ok;
    if (contents.provenance)
      if (auto ok = file_->add_provenance(*contents.provenance); !ok) return ok;
    return file_->commit();
  };
  auto ok = reconcile();
  file_.reset();
  written_.clear();
  if (!ok) return write_packed_file(path_, contents);  // from scratch, once more
  return ok;
}

}  // namespace sluice
