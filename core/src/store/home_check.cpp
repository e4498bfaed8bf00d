#include "store/home_check.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <vector>

#include "sluice/engine/file_modes.hpp"

namespace sluice::store_detail {
namespace {

namespace fs = std::filesystem;

std::string octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

tl::unexpected<Error> refuse(const std::string& home, const std::string& why) {
  return tl::unexpected(
      Error{ErrorCode::kIo, "refusing the Sluice home " + home + ": " + why +
                                " (another user could redirect what Sluice creates there; "
                                "see 'A home in a shared place' in docs/failure-semantics.md)"});
}

bool trusted_owner(uid_t uid) {
  return uid == ::geteuid() || uid == 0;
}

// HOME itself or HOME/runs: a real directory that only this user (and root, and the
// group when SLUICE_UMASK shares with it) can change.
Expected<void> check_own_dir(const std::string& home, const fs::path& dir) {
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0)
    return refuse(home, "cannot examine " + dir.string() + ": " + std::strerror(errno));
  if (S_ISLNK(st.st_mode)) return refuse(home, dir.string() + " is a symbolic link; remove it");
  if (!S_ISDIR(st.st_mode)) return refuse(home, dir.string() + " is not a directory");
  if (!trusted_owner(st.st_uid))
    return refuse(
        home, dir.string() + " is owned by another user (uid " + std::to_string(st.st_uid) + ")");
  if (st.st_mode & S_IWOTH)
    return refuse(home, dir.string() + " is writable by every user (mode " + octal(st.st_mode) +
                            "); chmod o-w it");
  const bool group_shared = (file_modes().dir & S_IWGRP) != 0;
  if ((st.st_mode & S_IWGRP) && !group_shared)
    return refuse(home, dir.string() + " is writable by its group (mode " + octal(st.st_mode) +
                            "); chmod g-w it, or set SLUICE_UMASK to share the home with the "
                            "group (e.g. 007)");
  return {};
}

// A directory above the home: whoever may write it could rename the home away and put
// their own in its place, unless the sticky bit keeps them to their own entries.
Expected<void> check_ancestors(const std::string& home, fs::path dir) {
  for (;;) {
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0)
      return refuse(home, "cannot examine " + dir.string() + ": " + std::strerror(errno));
    if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX))
      return refuse(home, dir.string() + " is writable by every user and not sticky (mode " +
                              octal(st.st_mode) + ")");
    if (!dir.has_relative_path()) return {};
    dir = dir.parent_path();
  }
}

// A file Sluice opens in the home: where it exists, no link and not another user's.
Expected<void> check_entry(const std::string& home, const fs::path& path, bool dir) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return refuse(home, "cannot examine " + path.string() + ": " + std::strerror(errno));
  }
  if (S_ISLNK(st.st_mode)) return refuse(home, path.string() + " is a symbolic link; remove it");
  if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
    return refuse(home, path.string() + (dir ? " is not a directory" : " is not a regular file"));
  if (!trusted_owner(st.st_uid))
    return refuse(
        home, path.string() + " is owned by another user (uid " + std::to_string(st.st_uid) + ")");
  return {};
}

std::string real_path(const fs::path& p) {
  char buf[PATH_MAX];
  if (::realpath(p.c_str(), buf) == nullptr) return {};
  return buf;
}

}  // namespace

Expected<std::string> prepare_safe_home(const std::string& home, bool make_runs) {
  std::error_code ec;
  fs::path abs = fs::absolute(fs::path(home), ec).lexically_normal();
  if (ec) return make_error(ErrorCode::kIo, "cannot resolve the Sluice home " + home);
  if (abs.has_relative_path() && !abs.has_filename()) abs = abs.parent_path();

  // The directories still to make, deepest last; the ones that exist are checked first,
  // so nothing is made below a directory that is refused.
  std::vector<fs::path> missing;
  fs::path existing = abs;
  struct stat st;
  while (::stat(existing.c_str(), &st) != 0) {
    if (errno != ENOENT || !existing.has_relative_path())
      return make_error(ErrorCode::kIo, "cannot create the Sluice home " + home + ": " +
                                            existing.string() + ": " + std::strerror(errno));
    missing.push_back(existing);
    existing = existing.parent_path();
  }
  const std::string real_existing = real_path(existing);
  if (real_existing.empty())
    return make_error(ErrorCode::kIo,
                      "cannot resolve " + existing.string() + ": " + std::strerror(errno));
  if (auto r = check_ancestors(
          home, missing.empty() ? fs::path(real_existing).parent_path() : fs::path(real_existing));
      !r)
    return tl::unexpected(r.error());
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (::mkdir(it->c_str(), file_modes().dir) != 0 && errno != EEXIST)
      return make_error(ErrorCode::kIo, "cannot create the Sluice home " + home + ": " +
                                            it->string() + ": " + std::strerror(errno));
  }

  // The home may be reached through a link of the user's own (~/.sluice -> /scratch/...):
  // what counts is the directory it leads to.
  const std::string real_home = real_path(abs);
  if (real_home.empty())
    return make_error(ErrorCode::kIo,
                      "cannot resolve the Sluice home " + home + ": " + std::strerror(errno));
  const fs::path root(real_home);
  if (auto r = check_own_dir(home, root); !r) return tl::unexpected(r.error());

  // The files first, so that nothing is made in a home refused for one of them.
  for (const char* name : {"store.db", "store.db-wal", "store.db-shm", "store.db-journal"})
    if (auto r = check_entry(home, root / name, false); !r) return tl::unexpected(r.error());
  if (auto r = check_entry(home, root / "configs", true); !r) return tl::unexpected(r.error());
  const fs::path runs = root / "runs";
  struct stat runs_st;
  if (!make_runs && ::lstat(runs.c_str(), &runs_st) != 0 && errno == ENOENT) return real_home;
  if (::mkdir(runs.c_str(), file_modes().dir) != 0) {
    if (errno != EEXIST)
      return make_error(ErrorCode::kIo, "cannot create the Sluice home " + home + ": " +
                                            runs.string() + ": " + std::strerror(errno));
  }
  if (auto r = check_own_dir(home, runs); !r) return tl::unexpected(r.error());
  return real_home;
}

}  // namespace sluice::store_detail
