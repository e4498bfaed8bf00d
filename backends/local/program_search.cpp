#include "program_search.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace sluice::local {
namespace {

bool is_regular_file(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

const std::string* ProgramSearch::resolve(const std::string& argv0, std::string_view path,
                                          const std::string& workdir, int& err, bool& cached) {
  cached = false;
  key_.assign(argv0);
  key_.push_back('\0');
  key_.append(path);
  key_.push_back('\0');
  key_.append(workdir);
  if (auto it = cache_.find(key_); it != cache_.end()) {
    cached = true;
    return &it->second;
  }

  err = ENOENT;
  std::string found;
  if (argv0.empty()) return nullptr;
  if (argv0.find('/') != std::string::npos) {
    // Relative to the working directory the attempt runs in.
    found = argv0.front() == '/' || workdir.empty() ? argv0 : workdir + "/" + argv0;
  } else {
    bool denied = false;
    std::string_view rest = path;
    for (;;) {
      std::size_t colon = rest.find(':');
      std::string_view dir = rest.substr(0, colon);
      std::string candidate;
      if (dir.empty()) dir = ".";  // an empty entry means the current directory
      if (dir.front() != '/' && !workdir.empty()) {
        candidate.assign(workdir).push_back('/');
      }
      candidate.append(dir);
      candidate.push_back('/');
      candidate.append(argv0);
      if (is_regular_file(candidate)) {
        if (::access(candidate.c_str(), X_OK) == 0) {
          found = std::move(candidate);
          break;
        }
        denied = true;
      }
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
    if (found.empty()) {
      err = denied ? EACCES : ENOENT;
      return nullptr;
    }
  }
  auto [it, inserted] = cache_.emplace(key_, std::move(found));
  (void)inserted;
  return &it->second;
}

}  // namespace sluice::local
