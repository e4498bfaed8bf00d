#include "spawn_file_actions.hpp"

#include <fcntl.h>

#include <utility>

namespace sluice::local {

posix_spawn_file_actions_t* SpawnFileActions::get(const std::string& attempt_dir,
                                                  const std::string& workdir, int out_fd,
                                                  int err_fd) {
  const bool cacheable = out_fd >= 0 && err_fd >= 0;
  Key key{out_fd, err_fd, workdir};
  if (cacheable) {
    for (auto& e : cache_)
      if (e->key == key) return &e->fa;
    if (cache_.size() >= kMaxCached) cache_.erase(cache_.begin());
  }
  auto entry = std::make_unique<Entry>();
  entry->key = std::move(key);
  posix_spawn_file_actions_t* fa = &entry->fa;
  posix_spawn_file_actions_init(fa);
  out_path_.assign(attempt_dir).append("/stdout");
  err_path_.assign(attempt_dir).append("/stderr");
  // Not O_CLOEXEC: these become the child's fds 0, 1 and 2.
  posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
  if (out_fd >= 0)
    posix_spawn_file_actions_adddup2(fa, out_fd, 1);
  else
    posix_spawn_file_actions_addopen(fa, 1, out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (err_fd >= 0)
    posix_spawn_file_actions_adddup2(fa, err_fd, 2);
  else
    posix_spawn_file_actions_addopen(fa, 2, err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!workdir.empty()) posix_spawn_file_actions_addchdir_np(fa, workdir.c_str());
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
  // Nothing else of the coordinator (store, sockets, pipes) leaks into attempts.
  posix_spawn_file_actions_addclosefrom_np(fa, 3);
#endif
  if (!cacheable) {
    uncached_ = std::move(entry);
    return &uncached_->fa;
  }
  cache_.push_back(std::move(entry));
  return &cache_.back()->fa;
}

}  // namespace sluice::local
