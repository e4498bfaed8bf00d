#pragma once
// Finding the file a command's argv[0] names, as execvp would on the attempt's PATH,
// relative to the attempt's working directory; answers are remembered per (argv[0], PATH,
// working directory), so a sweep of one program searches PATH once.
#include <string>
#include <string_view>
#include <unordered_map>

namespace sluice::local {

class ProgramSearch {
 public:
  // The path to execute, or nullptr with `err` set (ENOENT, or EACCES when only files
  // that cannot be executed were found). `cached`: the answer came from the cache, and
  // may be stale (forget_last() drops it).
  const std::string* resolve(const std::string& argv0, std::string_view path,
                             const std::string& workdir, int& err, bool& cached);
  // Forgets the answer of the last resolve().
  void forget_last() { cache_.erase(key_); }

 private:
  std::string key_;
  std::unordered_map<std::string, std::string> cache_;
};

}  // namespace sluice::local
