#pragma once
// The environment an attempt's process gets: the base environment (given, else this
// process's, captured once), then the entries set for the launch; a later set() of a
// name overrides an earlier one. The directory of the running executable is put first on
// PATH, in the base and in a PATH the launch sets, so that every attempt finds the same
// `sluice` binary. Built per launch into reused buffers: no allocation on the hot path
// once the buffers have grown.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sluice::local {

class ChildEnv {
 public:
  // `environment`: "NAME=value" entries (the first of a name wins, as getenv); unset:
  // this process's environment now. `exe_dir`: put first on PATH ("" for none).
  ChildEnv(const std::optional<std::vector<std::string>>& environment, std::string exe_dir);

  // Starts a launch's environment from the base.
  void begin();
  // Sets NAME=value for this launch (an empty name is ignored).
  void set(std::string_view name, std::string_view value);
  // PATH as the attempt will see it (before finish() puts the executable's directory
  // first), or execvp's default search path when there is none.
  std::string_view path() const;
  // Completes the launch's environment; envp() is valid until the next begin().
  void finish();
  char** envp() { return envp_.data(); }

 private:
  struct TransparentHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct PendingVar {
    std::size_t slot;     // index in envp_
    std::size_t scratch;  // index in scratch_
    std::size_t name_len;
  };

  // The base environment with the executable's directory first on PATH.
  std::vector<std::string> base_env_;
  std::vector<char*> base_ptrs_;
  std::unordered_map<std::string, std::size_t, TransparentHash, std::equal_to<>> base_index_;
  std::string exe_dir_;
  std::string base_path_;  // value of PATH in base_env_ ("" and !has_base_path_ when unset)
  bool has_base_path_ = false;

  // Per-launch scratch, reused.
  std::vector<char*> envp_;
  std::vector<std::string> scratch_;
  std::size_t scratch_used_ = 0;
  std::vector<PendingVar> pending_;
};

}  // namespace sluice::local
