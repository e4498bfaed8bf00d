// FaultBackend: wraps any Backend and injects the faults a real one shows (LevelDB's
// fault-injection Env, for backends): a refused launch, a batch that half fails, an
// attempt the backend loses track of, a re-attach that fails after a restart, a call that
// hangs. Everything else goes to the wrapped backend unchanged.
//
//   FakeBackend fake;
//   FaultBackend faulty(fake);
//   faulty.refuse_launch(2);                  // the 2nd launch request errors
//   faulty.lose(0, 1);                        // task 0's attempt 1 comes back kLost
//   Coordinator c(store, faulty, wf, run_id);
//
// Launch requests are counted from 1 over launch() and launch_batch() together. A
// refused request never reaches the wrapped backend: as the contract says, nothing of it
// runs. Not thread-safe, like every Backend, except release().
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <utility>

#include "sluice/engine/backend.hpp"

namespace sluice::testing {

class FaultBackend : public Backend {
 public:
  explicit FaultBackend(Backend& inner) : inner_(inner) {}

  // Launch request number `nth` (1-based) returns an error with `why`.
  void refuse_launch(std::size_t nth, std::string why = "injected: launch refused");
  // The next launch_batch() with more than max(indices) requests returns errors for the
  // requests at `indices`; the others go to the wrapped backend as one batch, in order.
  void fail_batch(std::set<std::size_t> indices, std::string why = "injected: batch element");
  // The attempt's Completion is reported as kLost ("injected: lost") whatever it was.
  void lose(TaskId task, std::uint32_t attempt);
  // reattach() returns false without asking the wrapped backend.
  void fail_reattach(bool on = true) { fail_reattach_ = on; }

  enum class Call { kLaunch, kPoll };
  // The next launch (launch() or launch_batch()) or poll() blocks for `d` of real time,
  // or until release(), before it reaches the wrapped backend.
  void hang_next(Call call, std::chrono::milliseconds d);
  // Ends the hang in progress, or the next one at once. Callable from any thread.
  void release();

  // What was injected.
  std::size_t refused() const { return refused_; }
  std::size_t lost() const { return lost_; }
  std::size_t hung() const { return hung_; }
  std::size_t requests() const { return requests_; }

  // Backend
  std::string name() const override { return inner_.name(); }
  Capacity capacity() const override { return inner_.capacity(); }
  bool wants_attempt_dir() const override { return inner_.wants_attempt_dir(); }
  Expected<std::string> launch(const LaunchRequest& request) override;
  std::vector<Expected<std::string>> launch_batch(std::span<const LaunchRequest> requests) override;
  void poll(std::vector<Completion>& out, std::chrono::milliseconds timeout) override;
  void kill(TaskId task, std::uint32_t attempt) override { inner_.kill(task, attempt); }
  std::size_t in_flight() const override { return inner_.in_flight(); }
  void abandon(const std::string& handle) override { inner_.abandon(handle); }
  bool reattach(const std::string& handle, TaskId task, std::uint32_t attempt) override;

 private:
  void maybe_hang(Call call);

  Backend& inner_;
  std::set<std::size_t> refuse_;
  std::string refuse_why_;
  std::set<std::size_t> batch_fail_;
  std::string batch_why_;
  std::set<std::pair<TaskId, std::uint32_t>> lose_;
  bool fail_reattach_ = false;
  std::size_t requests_ = 0, refused_ = 0, lost_ = 0, hung_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  bool hang_armed_[2] = {false, false};
  std::chrono::milliseconds hang_for_[2] = {};
  bool released_ = false;  // guarded by mu_
};

}  // namespace sluice::testing
