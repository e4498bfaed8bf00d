#include "sluice/engine/scratch_folders.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "sluice/engine/artifacts.hpp"
#include "sluice/engine/file_modes.hpp"
#include "sluice/engine/results_file.hpp"

namespace sluice {
namespace {

std::uint64_t key_of(TaskId task, std::uint32_t attempt) {
  return (static_cast<std::uint64_t>(task) << 32) | attempt;
}

enum class Contents { kEmpty, kEngineFiles, kOther };

// Files the engine itself names (SLUICE_OUTPUT, SLUICE_RESULTS, the inputs list, child
// requests): a path to them is never worth a link (see settle()).
bool engine_file(const char* name) {
  const std::string_view n(name);
  return n == kArtifactFile || n == kResultsFile || n == "inputs" || n == "children";
}

// Calls `visit(name)` for each entry of the directory open as `fd` but "." and "..",
// until it returns false: getdents64 on a descriptor kept open, no stream to allocate and
// no path walk (two system calls for an empty folder). False when it cannot be read.
template <class Visit>
bool scan_entries(int fd, Visit visit) {
  alignas(8) char buf[2048];
  if (::lseek(fd, 0, SEEK_SET) != 0) return false;
  for (;;) {
    const long n = ::syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (n < 0) return false;
    if (n == 0) return true;
    for (long off = 0; off < n;) {
      const auto* d = reinterpret_cast<const struct dirent64*>(buf + off);
      off += d->d_reclen;
      const char* name = d->d_name;
      if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))) continue;
      if (!visit(name)) return true;
    }
  }
}

// What the directory open as `fd` holds besides "." and "..".
Contents contents_of(int fd) {
  Contents found = Contents::kEmpty;
  const bool read = scan_entries(fd, [&](const char* name) {
    found = engine_file(name) ? Contents::kEngineFiles : Contents::kOther;
    return found != Contents::kOther;
  });
  return read ? found : Contents::kOther;  // unreadable: keep what may be there
}

// The names in the directory open as `fd`, "." and ".." left out.
std::vector<std::string> names_in(int fd) {
  std::vector<std::string> names;
  if (DIR* d = ::fdopendir(::dup(fd))) {
    ::rewinddir(d);  // the duplicate shares the offset contents_of() may have left
    while (const struct dirent* e = ::readdir(d))
      if (std::string_view n(e->d_name); n != "." && n != "..") names.emplace_back(n);
    ::closedir(d);
  }
  return names;
}

// Whether the directory open as `fd` holds exactly one entry besides "." and "..", named
// `leaf`.
bool holds_only(int fd, std::string_view leaf) {
  int seen = 0;
  bool other = false;
  const bool read = scan_entries(fd, [&](const char* name) {
    other = other || leaf != name;
    return ++seen == 1 && !other;
  });
  return read && seen == 1 && !other;
}

}  // namespace

ScratchFolders::ScratchFolders(std::string prefix) : prefix_(std::move(prefix)) {}

ScratchFolders::~ScratchFolders() {
  close();
}

bool ScratchFolders::open(const std::string& run_dir, bool sweep) {
  close();
  const std::string dir = run_dir + "/scratch";
  ::mkdir(dir.c_str(), file_modes().dir);
  dir_fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (dir_fd_ < 0) return false;
  dir_ = dir;
  run_dir_ = run_dir;
  for (const std::string& n : names_in(dir_fd_)) {
    // Numbered past every name of ours already there: mkdir then rarely meets one.
    if (n.compare(0, prefix_.size(), prefix_) == 0)
      if (const std::size_t dash = n.find('-', prefix_.size()); dash != std::string::npos)
        if (const std::uint64_t s = std::strtoull(n.c_str() + dash + 1, nullptr, 10); s > seq_)
          seq_ = s;
    if (sweep) ::unlinkat(dir_fd_, n.c_str(), AT_REMOVEDIR);  // only an empty one goes
  }
  return true;
}

void ScratchFolders::close() {
  if (dir_fd_ < 0) return;
  for (Lane& lane : lanes_) {
    if (lane.fd < 0) continue;
    ::close(lane.fd);
    lane.fd = -1;
    // Only a free folder is removed: one still lent to an attempt (after SIGTERM, the
    // run resumes later) is rmdir'ed only when empty anyway.
    ::unlinkat(dir_fd_, lane.name.c_str(), AT_REMOVEDIR);
  }
  lanes_.clear();
  free_.clear();
  lent_.clear();
  ::close(dir_fd_);
  dir_fd_ = -1;
  ::rmdir(dir_.c_str());  // fails, as it should, while links, lost files or lenders stay
  dir_.clear();
  run_dir_.clear();
}

bool ScratchFolders::make_lane(std::size_t index) {
  Lane& lane = lanes_[index];
  for (int tries = 0; tries < 1000; ++tries) {
    lane.name = prefix_ + std::to_string(index) + "-" + std::to_string(++seq_);
    if (::mkdirat(dir_fd_, lane.name.c_str(), file_modes().dir) == 0) {
      lane.fd =
          ::openat(dir_fd_, lane.name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
      if (lane.fd >= 0) return true;
      ::unlinkat(dir_fd_, lane.name.c_str(), AT_REMOVEDIR);
      break;
    }
    if (errno != EEXIST) break;  // EEXIST: a crashed lender's folder
  }
  lane.fd = -1;
  return false;
}

bool ScratchFolders::take(TaskId task, std::uint32_t attempt, std::string& path) {
  std::size_t index;
  if (!free_.empty()) {
    index = free_.back();
    free_.pop_back();
  } else {
    index = lanes_.size();
    lanes_.emplace_back();
    if (!make_lane(index)) {
      lanes_.pop_back();
      return false;
    }
  }
  lent_[key_of(task, attempt)] = index;
  path.assign(dir_).push_back('/');
  path.append(lanes_[index].name);
  return true;
}

std::string ScratchFolders::path_of(TaskId task, std::uint32_t attempt) const {
  auto it = lent_.find(key_of(task, attempt));
  if (it == lent_.end()) return {};
  return dir_ + "/" + lanes_[it->second].name;
}

bool ScratchFolders::read_sole_file(TaskId task, std::uint32_t attempt, std::string_view leaf,
                                    std::size_t max_bytes, std::string& text) const {
  auto it = lent_.find(key_of(task, attempt));
  if (it == lent_.end()) return false;
  const Lane& lane = lanes_[it->second];
  if (lane.fd < 0 || !holds_only(lane.fd, leaf)) return false;
  const std::string name(leaf);
  // Not followed: a link the attempt left there is refused by the usual path.
  const int fd = ::openat(lane.fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st;
  bool ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
            static_cast<std::size_t>(st.st_size) <= max_bytes;
  if (ok) {
    text.resize(static_cast<std::size_t>(st.st_size));
    std::size_t got = 0;
    while (ok && got < text.size()) {
      const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
      if (n < 0 && errno == EINTR) continue;
      ok = n > 0;
      if (ok) got += static_cast<std::size_t>(n);
    }
  }
  ::close(fd);
  return ok;
}

bool ScratchFolders::remove_file(TaskId task, std::uint32_t attempt, std::string_view leaf) {
  auto it = lent_.find(key_of(task, attempt));
  if (it == lent_.end() || lanes_[it->second].fd < 0) return false;
  return ::unlinkat(lanes_[it->second].fd, std::string(leaf).c_str(), 0) == 0;
}

void ScratchFolders::settle(TaskId task, std::uint32_t attempt, int tasks_fd,
                            const std::string& task_name, std::uint8_t& task_dir_made) {
  if (lent_.empty()) return;
  auto it = lent_.find(key_of(task, attempt));
  if (it == lent_.end()) return;
  const std::size_t index = it->second;
  lent_.erase(it);
  Lane& lane = lanes_[index];
  const Contents contents = contents_of(lane.fd);
  if (contents == Contents::kEmpty) {
    free_.push_back(index);
    return;
  }
  if (!task_dir_made) {
    ::mkdirat(tasks_fd, task_name.c_str(), file_modes().dir);
    task_dir_made = 1;
  }
  const std::string rel = task_name + "/" + std::to_string(attempt);
  if (::renameat(dir_fd_, lane.name.c_str(), tasks_fd, rel.c_str()) != 0) {
    // The canonical directory exists already: what the folder holds moves in beside it.
    for (const std::string& n : names_in(lane.fd)) {
      const std::string to = rel + "/" + n;
      ::renameat2(lane.fd, n.c_str(), tasks_fd, to.c_str(), RENAME_NOREPLACE);
    }
    if (contents_of(lane.fd) == Contents::kEmpty) {
      free_.push_back(index);
      return;
    }
  } else if (contents == Contents::kOther) {
    // Paths the attempt handed on keep working: values that name a file it made there
    // (`sluice put tool "$SLUICE_ATTEMPT_DIR/tool"`, examples/hdf5/field.toml). One link
    // per attempt that made files of its own, none for one that only wrote values (a
    // map-reduce child); the name is never lent again either way.
    ::symlinkat(("../tasks/" + rel).c_str(), dir_fd_, lane.name.c_str());
  }
  ::close(lane.fd);
  if (make_lane(index)) free_.push_back(index);
}

}  // namespace sluice
