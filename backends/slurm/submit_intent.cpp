#include "submit_intent.hpp"

#include <cstdio>
#include <fstream>
#include <vector>

namespace sluice::slurm {
namespace {

constexpr const char* kIntentFile = "/slurm_intent";

}  // namespace

bool write_submit_intent(const std::string& dir, const SubmitRequest& job,
                         const std::string& array_index) {
  std::ofstream out(dir + kIntentFile, std::ios::binary | std::ios::trunc);
  out << job.name << "\n" << job.script_path << "\n" << array_index << "\n";
  return static_cast<bool>(out.flush());
}

bool has_submit_intent(const std::string& dir) {
  return static_cast<bool>(std::ifstream(dir + kIntentFile));
}

std::string find_submitted_job(SlurmDriver& driver, const std::string& dir) {
  std::ifstream in(dir + kIntentFile);
  std::string name, script, index;
  if (!std::getline(in, name) || !std::getline(in, script) || !std::getline(in, index)) return {};
  auto jobs = driver.jobs_named(name);
  if (!jobs) {
    std::fprintf(stderr,
                 "sluice: slurm: cannot tell whether %s was submitted (%s); it runs again\n",
                 dir.c_str(), jobs.error().message.c_str());
    return {};
  }
  std::vector<std::string> found;
  for (const auto& [key, command] : *jobs) {
    const auto us = key.find('_');
    const bool same_index = index == "-" ? us == std::string::npos
                                         : us != std::string::npos && key.substr(us + 1) == index;
    // libslurm submissions have no command: the name (run and task) must then do.
    if (same_index && (command == script || command.empty())) found.push_back(key);
  }
  if (found.size() != 1) return {};
  std::ofstream(dir + "/slurm_job_id", std::ios::trunc) << found.front() << "\n";
  return found.front();
}

}  // namespace sluice::slurm
