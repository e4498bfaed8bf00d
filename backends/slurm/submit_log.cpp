#include "submit_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "sluice/engine/file_modes.hpp"

namespace sluice::slurm {
namespace {

// Records, one per line but for the script (a byte count, then the bytes and a newline):
//   S \t COMMENT \t NAME \t BYTES \n SCRIPT \n    a submission about to be made
//   I \t COMMENT \t INDEX \t DIR \n               attempt DIR is its element INDEX ("-")
//   K \t KEY \t DIR \n                            attempt DIR's job is KEY
// Names, comments and directories hold no tab or newline (task names are checked).

std::vector<std::string> split_tabs(const std::string& line) {
  std::vector<std::string> out;
  std::size_t from = 0;
  for (;;) {
    const auto tab = line.find('\t', from);
    out.push_back(line.substr(from, tab == std::string::npos ? tab : tab - from));
    if (tab == std::string::npos) return out;
    from = tab + 1;
  }
}

}  // namespace

std::string submissions_path(const std::string& run_dir) {
  return run_dir + "/slurm/submissions";
}

SubmitLog::SubmitLog(std::string run_dir, bool with_scripts) : run_dir_(std::move(run_dir)) {
  std::ifstream in(submissions_path(run_dir_), std::ios::binary);
  if (!in) return;
  std::stringstream all;
  all << in.rdbuf();
  const std::string text = all.str();
  struct Submitted {
    std::string name, script;
  };
  std::map<std::string, Submitted> by_comment;
  std::size_t at = 0;
  while (at < text.size()) {
    const auto nl = text.find('\n', at);
    if (nl == std::string::npos) break;  // cut short by a kill: its sbatch never ran
    const auto f = split_tabs(text.substr(at, nl - at));
    at = nl + 1;
    if (f[0] == "S" && f.size() == 4) {
      std::size_t bytes = 0;
      try {
        bytes = std::stoul(f[3]);
      } catch (...) {
        break;
      }
      if (at + bytes + 1 > text.size()) break;
      Submitted& s = by_comment[f[1]];
      s.name = f[2];
      if (with_scripts) s.script = text.substr(at, bytes);
      at += bytes + 1;
    } else if (f[0] == "I" && f.size() == 4) {
      auto it = by_comment.find(f[1]);
      if (it == by_comment.end()) continue;
      Submission& s = by_dir_[f[3]];
      s.name = it->second.name;
      s.comment = f[1];
      s.index = f[2];
      s.script = it->second.script;
    } else if (f[0] == "K" && f.size() == 3) {
      if (auto it = by_dir_.find(f[2]); it != by_dir_.end()) it->second.key = f[1];
    }
  }
}

SubmitLog::~SubmitLog() {
  if (fd_ >= 0) ::close(fd_);
}

bool SubmitLog::append(const std::string& bytes, bool sync) {
  if (fd_ < 0) {
    ::mkdir((run_dir_ + "/slurm").c_str(), file_modes().dir);
    fd_ = ::open(submissions_path(run_dir_).c_str(),
                 O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, file_modes().file);
    if (fd_ < 0) return false;
  }
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return !sync || ::fdatasync(fd_) == 0;
}

bool SubmitLog::record_intent(const SubmitRequest& job, const std::vector<std::string>& dirs) {
  std::string r = "S\t" + job.comment + "\t" + job.name + "\t" + std::to_string(job.script.size()) +
                  "\n" + job.script + "\n";
  for (std::size_t k = 0; k < dirs.size(); ++k) {
    const std::string index = job.array.empty() ? "-" : std::to_string(k);
    r += "I\t" + job.comment + "\t" + index + "\t" + dirs[k] + "\n";
    Submission& s = by_dir_[dirs[k]];
    s = Submission{};
    s.name = job.name;
    s.comment = job.comment;
    s.index = index;
  }
  // One write for the whole submission: a kill leaves all of it or a cut last record.
  if (append(r, true)) return true;
  std::fprintf(stderr, "sluice: slurm: cannot record the submission of %s in %s: %s\n",
               job.name.c_str(), submissions_path(run_dir_).c_str(), std::strerror(errno));
  return false;
}

void SubmitLog::record_keys(const std::vector<std::string>& dirs,
                            const std::vector<std::string>& keys) {
  std::string r;
  for (std::size_t k = 0; k < dirs.size() && k < keys.size(); ++k) {
    r += "K\t" + keys[k] + "\t" + dirs[k] + "\n";
    by_dir_[dirs[k]].key = keys[k];
  }
  (void)append(r, false);
}

const Submission* SubmitLog::find(const std::string& attempt_dir) const {
  auto it = by_dir_.find(attempt_dir);
  return it == by_dir_.end() ? nullptr : &it->second;
}

std::optional<Submission> read_legacy_submission(const std::string& dir) {
  std::ifstream in(dir + "/slurm_intent");
  Submission s;
  if (!std::getline(in, s.name) || !std::getline(in, s.script_path) || !std::getline(in, s.index))
    return std::nullopt;
  s.legacy = true;
  std::ifstream(dir + "/slurm_job_id") >> s.key;
  return s;
}

std::string find_submitted_job(SlurmDriver& driver, const Submission& s, const std::string& dir) {
  auto jobs = s.legacy ? driver.jobs_named(s.name) : driver.job_comments(s.name);
  if (!jobs) {
    std::fprintf(stderr,
                 "sluice: slurm: cannot tell whether %s was submitted (%s); it runs again\n",
                 dir.c_str(), jobs.error().message.c_str());
    return {};
  }
  std::vector<std::string> found;
  for (const auto& [key, told] : *jobs) {
    const auto us = key.find('_');
    const bool same_index = s.index == "-"
                                ? us == std::string::npos
                                : us != std::string::npos && key.substr(us + 1) == s.index;
    // Legacy: libslurm submissions have no command, so the name (run and task) must do.
    const bool same = s.legacy ? told == s.script_path || told.empty() : told == s.comment;
    if (same_index && same) found.push_back(key);
  }
  return found.size() == 1 ? found.front() : std::string();
}

}  // namespace sluice::slurm
