// Scratch folders: where an attempt of a spooling backend finds SLUICE_ATTEMPT_DIR.
//
// Making and removing a directory per attempt cost ~15% of a local launch's CPU in the
// fleet profile (and far more on ext4 just after a mass deletion), although most tasks
// leave nothing there. Instead each concurrent attempt borrows one of a few folders in
// RUN/scratch, made once and reused. When the attempt ends, a folder it left empty goes
// back to the pool as it is; one it wrote into is renamed to the attempt's canonical
// directory (RUN/tasks/TASK/N), where every reader looks, and a new empty folder with a
// new name takes its place; the old name becomes a symbolic link to the attempt's
// directory, so paths the attempt handed on (values naming its files) stay valid. A
// process that outlived its attempt (one that escaped the process group with setsid)
// and writes by path reaches its own attempt's directory, never the next attempt's.
//
// Names are "<lane>-<seq>", made with mkdir's O_EXCL semantics: a resumed coordinator
// never reuses a folder (or link) that a crashed one left behind. At start, run() removes
// the empty folders; one that holds files stays as it is (the leftovers of an attempt that was
// lost in the crash, recorded as lost and run again under a new folder).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "engine/coordinator_impl.hpp"
#include "sluice/engine/artifacts.hpp"
#include "sluice/engine/file_modes.hpp"
#include "sluice/engine/results_file.hpp"

namespace sluice {
namespace {

std::uint64_t scratch_key(TaskId task, std::uint32_t attempt) {
  return (static_cast<std::uint64_t>(task) << 32) | attempt;
}

enum class Contents { kEmpty, kEngineFiles, kOther };

// Files the engine itself names (SLUICE_OUTPUT, SLUICE_RESULTS, the inputs list, child
// requests): a path to them is never worth a link (see settle_scratch()).
bool engine_file(const char* name) {
  const std::string_view n(name);
  return n == kArtifactFile || n == kResultsFile || n == "inputs" || n == "children";
}

// What the directory open as `fd` holds besides "." and "..": two system calls on a
// descriptor kept open when it is empty, no path walk.
Contents contents_of(int fd) {
  alignas(8) char buf[2048];
  if (::lseek(fd, 0, SEEK_SET) != 0) return Contents::kOther;  // keep what may be there
  Contents found = Contents::kEmpty;
  for (;;) {
    const long n = ::syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (n < 0) return Contents::kOther;
    if (n == 0) return found;
    for (long off = 0; off < n;) {
      const auto* d = reinterpret_cast<const struct dirent64*>(buf + off);
      off += d->d_reclen;
      const char* name = d->d_name;
      if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))) continue;
      if (!engine_file(name)) return Contents::kOther;
      found = Contents::kEngineFiles;
    }
  }
}

}  // namespace

bool Coordinator::Impl::open_scratch() {
  const std::string dir = run_dir_ + "/scratch";
  ::mkdir(dir.c_str(), file_modes().dir);
  scratch_fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (scratch_fd_ < 0) return false;
  scratch_dir_ = dir;
  // A crashed coordinator's folders: the empty ones go, the others stay (see above).
  if (DIR* d = ::fdopendir(::dup(scratch_fd_))) {
    std::vector<std::string> names;
    while (const struct dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') names.emplace_back(e->d_name);
    ::closedir(d);
    for (const std::string& n : names) ::unlinkat(scratch_fd_, n.c_str(), AT_REMOVEDIR);
  }
  return true;
}

void Coordinator::Impl::close_scratch() {
  if (scratch_fd_ < 0) return;
  for (ScratchLane& lane : scratch_lanes_) {
    if (lane.fd < 0) continue;
    ::close(lane.fd);
    lane.fd = -1;
    // Only a free folder is removed: one still lent to an attempt (after SIGTERM, the
    // run resumes later) is rmdir'ed only when empty anyway.
    ::unlinkat(scratch_fd_, lane.name.c_str(), AT_REMOVEDIR);
  }
  scratch_lanes_.clear();
  free_scratch_.clear();
  scratch_of_.clear();
  ::close(scratch_fd_);
  scratch_fd_ = -1;
  ::rmdir(scratch_dir_.c_str());  // fails, as it should, while links or lost files stay
}

bool Coordinator::Impl::make_scratch_lane(std::size_t index) {
  ScratchLane& lane = scratch_lanes_[index];
  for (int tries = 0; tries < 1000; ++tries) {
    lane.name = std::to_string(index) + "-" + std::to_string(++scratch_seq_);
    if (::mkdirat(scratch_fd_, lane.name.c_str(), file_modes().dir) == 0) {
      lane.fd =
          ::openat(scratch_fd_, lane.name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
      if (lane.fd >= 0) return true;
      ::unlinkat(scratch_fd_, lane.name.c_str(), AT_REMOVEDIR);
      break;
    }
    if (errno != EEXIST) break;  // EEXIST: a crashed coordinator's folder
  }
  lane.fd = -1;
  return false;
}

bool Coordinator::Impl::take_scratch(TaskId task, std::uint32_t attempt, std::string& path) {
  std::size_t index;
  if (!free_scratch_.empty()) {
    index = free_scratch_.back();
    free_scratch_.pop_back();
  } else {
    index = scratch_lanes_.size();
    scratch_lanes_.emplace_back();
    if (!make_scratch_lane(index)) {
      scratch_lanes_.pop_back();
      return false;
    }
  }
  scratch_of_[scratch_key(task, attempt)] = index;
  path.assign(scratch_dir_).push_back('/');
  path.append(scratch_lanes_[index].name);
  return true;
}

std::string Coordinator::Impl::scratch_path_of(TaskId task, std::uint32_t attempt) const {
  auto it = scratch_of_.find(scratch_key(task, attempt));
  if (it == scratch_of_.end()) return {};
  return scratch_dir_ + "/" + scratch_lanes_[it->second].name;
}

void Coordinator::Impl::settle_scratch(TaskId task, std::uint32_t attempt) {
  if (scratch_of_.empty()) return;
  auto it = scratch_of_.find(scratch_key(task, attempt));
  if (it == scratch_of_.end()) return;
  const std::size_t index = it->second;
  scratch_of_.erase(it);
  ScratchLane& lane = scratch_lanes_[index];
  const Contents contents = contents_of(lane.fd);
  if (contents == Contents::kEmpty) {
    free_scratch_.push_back(index);
    return;
  }
  const std::string& name = workflow_.tasks[task].name;
  if (!task_dir_made_[task]) {
    ::mkdirat(tasks_fd_, name.c_str(), file_modes().dir);
    task_dir_made_[task] = 1;
  }
  const std::string& rel = relative_attempt_dir(name, attempt);
  if (::renameat(scratch_fd_, lane.name.c_str(), tasks_fd_, rel.c_str()) != 0) {
    // The canonical directory exists already (a cache hit restored the artifact there, or
    // a crashed run left one): what the folder holds moves in beside it, never over it.
    if (DIR* d = ::fdopendir(::dup(lane.fd))) {
      ::rewinddir(d);  // the duplicate shares the offset contents_of() left at the end
      std::vector<std::string> names;
      while (const struct dirent* e = ::readdir(d))
        if (std::string_view n(e->d_name); n != "." && n != "..") names.emplace_back(n);
      ::closedir(d);
      for (const std::string& n : names) {
        const std::string to = rel + "/" + n;
        ::renameat2(lane.fd, n.c_str(), tasks_fd_, to.c_str(), RENAME_NOREPLACE);
      }
    }
    if (contents_of(lane.fd) == Contents::kEmpty) {
      free_scratch_.push_back(index);
      return;
    }
  } else if (contents == Contents::kOther) {
    // Paths the attempt handed on keep working: values that name a file it made there
    // (`sluice put tool "$SLUICE_ATTEMPT_DIR/tool"`, examples/hdf5/field.toml). One link
    // per attempt that made files of its own, none for one that only wrote values (a
    // map-reduce child); the name is never lent again either way.
    ::symlinkat(("../tasks/" + rel).c_str(), scratch_fd_, lane.name.c_str());
  }
  ::close(lane.fd);
  if (make_scratch_lane(index)) free_scratch_.push_back(index);
}

}  // namespace sluice
