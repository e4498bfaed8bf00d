#pragma once
// The posix_spawn file actions of an attempt (spawn = posix): /dev/null as stdin, its log
// fds (or attempt_dir/stdout and /stderr created) as stdout and stderr, its working
// directory, and nothing else of the coordinator's fds.
//
// Each posix_spawn_file_actions_add* call asks the kernel for the fd limit: the actions
// are built once per (stdout fd, stderr fd, workdir) and reused. The coordinator's
// prepared log fds come from a small recycled set, so a few entries cover a run.
#include <spawn.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace sluice::local {

class SpawnFileActions {
 public:
  // Valid until the next get() or drop_uncached(). `out_fd`/`err_fd` < 0: the files in
  // `attempt_dir`; such actions (named by path) are not cached.
  posix_spawn_file_actions_t* get(const std::string& attempt_dir, const std::string& workdir,
                                  int out_fd, int err_fd);
  // Frees actions that were built for one spawn only.
  void drop_uncached() { uncached_.reset(); }

 private:
  struct Key {
    int out_fd = -1;
    int err_fd = -1;
    std::string workdir;
    bool operator==(const Key&) const = default;
  };
  struct Entry {
    Key key;
    posix_spawn_file_actions_t fa;
    Entry() = default;
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;
    ~Entry() { posix_spawn_file_actions_destroy(&fa); }
  };
  static constexpr std::size_t kMaxCached = 32;
  std::vector<std::unique_ptr<Entry>> cache_;
  std::unique_ptr<Entry> uncached_;
  std::string out_path_;
  std::string err_path_;
};

}  // namespace sluice::local
