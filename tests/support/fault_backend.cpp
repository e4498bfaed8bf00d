#include "support/fault_backend.hpp"

#include <algorithm>
#include <vector>

namespace sluice::testing {

void FaultBackend::refuse_launch(std::size_t nth, std::string why) {
  refuse_.insert(nth);
  refuse_why_ = std::move(why);
}

void FaultBackend::fail_batch(std::set<std::size_t> indices, std::string why) {
  batch_fail_ = std::move(indices);
  batch_why_ = std::move(why);
}

void FaultBackend::lose(TaskId task, std::uint32_t attempt) {
  lose_.insert({task, attempt});
}

void FaultBackend::hang_next(Call call, std::chrono::milliseconds d) {
  std::lock_guard<std::mutex> lock(mu_);
  hang_armed_[static_cast<int>(call)] = true;
  hang_for_[static_cast<int>(call)] = d;
}

void FaultBackend::release() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
  }
  cv_.notify_all();
}

void FaultBackend::maybe_hang(Call call) {
  std::unique_lock<std::mutex> lock(mu_);
  const int i = static_cast<int>(call);
  if (!hang_armed_[i]) return;
  hang_armed_[i] = false;
  ++hung_;
  cv_.wait_for(lock, hang_for_[i], [this] { return released_; });
  released_ = false;
}

Expected<std::string> FaultBackend::launch(const LaunchRequest& request) {
  maybe_hang(Call::kLaunch);
  if (refuse_.count(++requests_)) {
    ++refused_;
    return make_error(ErrorCode::kBackend, refuse_why_);
  }
  return inner_.launch(request);
}

std::vector<Expected<std::string>> FaultBackend::launch_batch(
    std::span<const LaunchRequest> requests) {
  if (requests.empty()) return {};
  maybe_hang(Call::kLaunch);
  const bool fail_here = !batch_fail_.empty() && *batch_fail_.rbegin() < requests.size();
  std::vector<Expected<std::string>> results(requests.size(), std::string());
  std::vector<LaunchRequest> passed;
  std::vector<std::size_t> where;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const bool refuse = refuse_.count(++requests_) > 0;
    if (refuse || (fail_here && batch_fail_.count(i))) {
      ++refused_;
      results[i] = make_error(ErrorCode::kBackend, refuse ? refuse_why_ : batch_why_);
      continue;
    }
    passed.push_back(requests[i]);
    where.push_back(i);
  }
  if (fail_here) batch_fail_.clear();
  auto inner = inner_.launch_batch(passed);
  for (std::size_t k = 0; k < where.size(); ++k) results[where[k]] = std::move(inner[k]);
  return results;
}

void FaultBackend::poll(std::vector<Completion>& out, std::chrono::milliseconds timeout) {
  maybe_hang(Call::kPoll);
  const std::size_t from = out.size();
  inner_.poll(out, timeout);
  for (std::size_t i = from; i < out.size(); ++i) {
    Completion& c = out[i];
    if (!lose_.erase({c.task, c.attempt})) continue;
    ++lost_;
    c.kind = ExitKind::kLost;
    c.code = -1;
    c.reason = "injected: lost";
    c.failure.clear();
  }
}

bool FaultBackend::reattach(const std::string& handle, TaskId task, std::uint32_t attempt) {
  if (fail_reattach_) return false;
  return inner_.reattach(handle, task, attempt);
}

}  // namespace sluice::testing
