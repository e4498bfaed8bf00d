// What the pilot backend's tests share: a Slurm driver that records submissions and
// reports the states the test sets, a home with one run directory, and a file's first
// word (the address and key files).
#pragma once

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

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
