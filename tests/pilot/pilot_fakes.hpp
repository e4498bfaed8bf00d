// What the pilot backend's tests share: a Slurm driver that records submissions and
// reports the states the test sets, a pilot backend over it, a home with one run
// directory, a first attempt to launch, and a file's first word (the address and key
// files).
#pragma once

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "pilot_backend.hpp"
#include "slurm_driver.hpp"
#include "support/scratch_dir.hpp"

namespace sluice::pilot::testing {

class FakeDriver final : public slurm::SlurmDriver {
 public:
  FakeDriver(std::vector<slurm::SubmitRequest>* submitted,
             std::map<std::string, std::string>* states)
      : submitted_(submitted), states_(states) {}
  std::string name() const override { return "fake"; }
  Expected<std::string> submit(const slurm::SubmitRequest& r) override {
    submitted_->push_back(r);
    return std::to_string(100 + submitted_->size());
  }
  Expected<std::map<std::string, slurm::JobStatus>> query(
      const std::vector<std::string>& ids) override {
    std::map<std::string, slurm::JobStatus> out;
    for (const auto& id : ids) {
      auto it = states_->find(id);
      out[id].state = it == states_->end() ? "RUNNING" : it->second;
    }
    return out;
  }
  void cancel(const std::vector<std::string>&) override {}
  int max_array_size() override { return 1001; }

 private:
  std::vector<slurm::SubmitRequest>* submitted_;
  std::map<std::string, std::string>* states_;
};

// A pilot backend over a FakeDriver: up to `max_allocations` allocations of workers
// with `cpus` slots, Slurm asked every 50 ms. REQUIRE(made) before using backend().
struct FakePilot {
  std::vector<slurm::SubmitRequest> submitted;
  std::map<std::string, std::string> states;
  Expected<std::unique_ptr<Backend>> made;
  explicit FakePilot(int cpus, int max_allocations = 1)
      : made(make_pilot_backend(options(cpus, max_allocations),
                                std::make_unique<FakeDriver>(&submitted, &states))) {}
  Backend& backend() { return **made; }

 private:
  static BackendOptions options(int cpus, int max_allocations) {
    BackendOptions o;
    o.cpus = cpus;
    o.extra = {{"max_allocations", std::to_string(max_allocations)},
               {"time_limit", "10m"},
               {"poll_interval", "50ms"}};
    return o;
  }
};

// Attempt 1 of `task` running `spec`, in RUN_DIR/tasks/DIR/1.
inline LaunchRequest first_attempt(const TaskSpec& spec, const std::filesystem::path& run_dir,
                                   TaskId task, const std::string& dir) {
  LaunchRequest r;
  r.task = task;
  r.attempt = 1;
  r.spec = &spec;
  r.attempt_dir = (run_dir / "tasks" / dir / "1").string();
  return r;
}

// A home with one run directory in it.
struct Scratch {
  sluice::testing::ScratchDir root;
  std::filesystem::path run_dir = root / "runs" / "run1";
  Scratch() { std::filesystem::create_directories(run_dir / "tasks"); }
};

inline std::string read_word(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::string s;
  in >> s;
  return s;
}

}  // namespace sluice::pilot::testing
