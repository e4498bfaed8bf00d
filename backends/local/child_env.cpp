#include "child_env.hpp"

#include <utility>

extern char** environ;

namespace sluice::local {

ChildEnv::ChildEnv(const std::optional<std::vector<std::string>>& environment, std::string exe_dir)
    : exe_dir_(std::move(exe_dir)) {
  std::vector<std::string_view> entries;
  if (environment) {
    entries.assign(environment->begin(), environment->end());
  } else {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) entries.emplace_back(*e);
  }
  for (std::string_view entry : entries) {
    std::size_t eq = entry.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    std::string_view name = entry.substr(0, eq);
    if (base_index_.find(name) != base_index_.end()) continue;  // first one wins, as getenv
    base_index_.emplace(std::string(name), base_env_.size());
    base_env_.emplace_back(entry);
  }
  auto path_it = base_index_.find(std::string_view("PATH"));
  if (path_it != base_index_.end()) {
    has_base_path_ = true;
    base_path_ = base_env_[path_it->second].substr(5);
  }
  if (!exe_dir_.empty()) {
    std::string_view current(base_path_);
    bool already_first =
        has_base_path_ && (current == exe_dir_ ||
                           (current.starts_with(exe_dir_) && current.size() > exe_dir_.size() &&
                            current[exe_dir_.size()] == ':'));
    if (!already_first) {
      base_path_ = has_base_path_ && !base_path_.empty() ? exe_dir_ + ":" + base_path_ : exe_dir_;
      if (path_it != base_index_.end()) {
        base_env_[path_it->second] = "PATH=" + base_path_;
      } else {
        base_index_.emplace("PATH", base_env_.size());
        base_env_.push_back("PATH=" + base_path_);
      }
      has_base_path_ = true;
    }
  }
  base_ptrs_.reserve(base_env_.size());
  for (auto& entry : base_env_) base_ptrs_.push_back(entry.data());
}

void ChildEnv::begin() {
  envp_.assign(base_ptrs_.begin(), base_ptrs_.end());
  pending_.clear();
  scratch_used_ = 0;
}

void ChildEnv::set(std::string_view name, std::string_view value) {
  if (name.empty()) return;
  for (auto& p : pending_) {
    const std::string& s = scratch_[p.scratch];
    if (p.name_len == name.size() && std::string_view(s).substr(0, p.name_len) == name) {
      scratch_[p.scratch].resize(name.size() + 1);
      scratch_[p.scratch].append(value);
      return;
    }
  }
  std::size_t slot;
  if (auto it = base_index_.find(name); it != base_index_.end()) {
    slot = it->second;
  } else {
    slot = envp_.size();
    envp_.push_back(nullptr);
  }
  if (scratch_used_ == scratch_.size()) scratch_.emplace_back();
  std::string& s = scratch_[scratch_used_];
  s.assign(name);
  s.push_back('=');
  s.append(value);
  pending_.push_back({slot, scratch_used_, name.size()});
  ++scratch_used_;
}

std::string_view ChildEnv::path() const {
  for (const auto& p : pending_) {
    const std::string& s = scratch_[p.scratch];
    if (p.name_len == 4 && s.compare(0, 4, "PATH") == 0) return std::string_view(s).substr(5);
  }
  // No PATH at all: execvp's default search path.
  return has_base_path_ ? std::string_view(base_path_) : std::string_view("/bin:/usr/bin");
}

void ChildEnv::finish() {
  // A task that sets PATH still finds the coordinator's executable directory first.
  if (!exe_dir_.empty()) {
    for (auto& p : pending_) {
      std::string& s = scratch_[p.scratch];
      if (p.name_len != 4 || s.compare(0, 4, "PATH") != 0) continue;
      std::string_view value = std::string_view(s).substr(5);
      bool first =
          value == exe_dir_ || (value.starts_with(exe_dir_) && value.size() > exe_dir_.size() &&
                                value[exe_dir_.size()] == ':');
      if (!first) s.insert(5, value.empty() ? exe_dir_ : exe_dir_ + ":");
    }
  }
  for (const auto& p : pending_) envp_[p.slot] = scratch_[p.scratch].data();
  envp_.push_back(nullptr);
}

}  // namespace sluice::local
