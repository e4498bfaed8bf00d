// Helpers for the reliability tests: SQLite's own checks on a store, processes found by
// a marker in their argv, and a small tmpfs (root only) for disk-full and read-only
// cases.
#pragma once

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "support/cli_runner.hpp"

namespace sluice::testing {

// Runs `sqlite3 DB SQL` and returns its output without the final newline.
inline std::string sqlite_query(const std::filesystem::path& db, const std::string& sql) {
  const auto out = db.parent_path() / ".sqlite-out";
  const std::string cmd = "sqlite3 '" + db.string() + "' \"" + sql + "\" > '" + out.string() +
                          "' 2>&1";
  const int rc = std::system(cmd.c_str());
  std::string text = read_file(out);
  std::filesystem::remove(out);
  if (rc != 0) return "sqlite3 failed: " + text;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

inline std::string sqlite_integrity(const std::filesystem::path& db) {
  return sqlite_query(db, "PRAGMA integrity_check");
}

// Pids of live processes (not zombies) whose command line contains `marker`.
inline std::vector<pid_t> processes_with_marker(const std::string& marker) {
  std::vector<pid_t> pids;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = read_file(e.path() / "cmdline");
    for (char& c : cmdline)
      if (c == '\0') c = ' ';
    if (cmdline.find(marker) == std::string::npos) continue;
    const std::string stat = read_file(e.path() / "stat");
    const auto paren = stat.rfind(')');
    if (paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z') continue;
    pids.push_back(std::stoi(name));
  }
  return pids;
}

inline bool running_as_root() { return ::geteuid() == 0; }

// A tmpfs of `size` (e.g. "4m") mounted on `dir` for the scope; root only.
class Tmpfs {
 public:
  Tmpfs(const std::filesystem::path& dir, const std::string& size) : dir_(dir) {
    std::filesystem::create_directories(dir);
    const std::string opts = "size=" + size + ",mode=0755";
    mounted_ = ::mount("tmpfs", dir.c_str(), "tmpfs", 0, opts.c_str()) == 0;
  }
  ~Tmpfs() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  // Remounts with new options ("size=64m", "ro", "rw").
  bool remount(const std::string& opts) {
    return ::mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT | (opts == "ro" ? MS_RDONLY : 0),
                   opts == "ro" || opts == "rw" ? nullptr : opts.c_str()) == 0;
  }

 private:
  std::filesystem::path dir_;
  bool mounted_ = false;
};

}  // namespace sluice::testing

namespace sluice::testing {

// Sets an environment variable for the scope (the `sluice` processes a test starts
// inherit it); restores the previous value.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (had_)
      ::setenv(name_, old_.c_str(), 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

inline unsigned mode_of(const std::filesystem::path& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) return 0xFFFF;
  return st.st_mode & 07777;
}

}  // namespace sluice::testing
