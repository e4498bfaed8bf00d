// What attempts leave in the home, for tests on every backend that spools: inode budgets
// (issue 26: a million-task run must not cost millions of inodes), with a sweep of many
// tiny tasks and a count of what a run added to the home; and the scratch folders' rule
// that a process outliving its attempt never writes into the next attempt's folder.
#pragma once

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "support/cli_runner.hpp"
#include "support/scratch_dir.hpp"

namespace sluice::testing {

// A workflow `name` of one task `t` expanded into `count` instances t.0 … t.N-1, each
// running `shell` with {i} = its index.
inline std::string sweep_toml(const std::string& name, int count, const std::string& shell) {
  std::string s = "[workflow]\nname = \"" + name + "\"\n[tasks.t]\nmatrix = { i = [";
  for (int i = 0; i < count; ++i) s += (i ? "," : "") + std::to_string(i);
  return s + "] }\nshell = \"" + shell + "\"\n";
}

// Every file, directory and link under `root` (each one an inode).
inline std::size_t inodes_under(const std::filesystem::path& root) {
  std::size_t n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    ++n;
  return n;
}

// Makes the home in `dir` with a run of one `true` task (the store and its folders are
// no part of any budget), then calls `run()`, which runs what is measured there, and
// returns how many inodes that added to the home.
template <class Run>
std::size_t run_and_count_inodes(const ScratchDir& dir, Run run) {
  write_file(dir.path() / "first.toml",
             "[workflow]\nname = \"first\"\n[tasks.a]\nshell = \"true\"\n");
  REQUIRE(run_sluice({"run", "-q", "first.toml"}, dir.path()).exit_code == 0);
  const std::filesystem::path home = dir.path() / ".sluice";
  const std::size_t before = inodes_under(home);
  run();
  return inodes_under(home) - before;
}

// Two attempts one after the other: `first` writes into its folder and leaves a process
// (escaped with setsid) that writes there by path 0.5 s later; `second`, which starts
// after `first` ended, lists its own folder 1.5 s in, into HOME/../second.ls.
inline const std::string kLateWriterToml = R"TOML(
[workflow]
name = "late"
[tasks.first]
shell = '''
echo mine > "$SLUICE_ATTEMPT_DIR/own"
setsid sh -c "sleep 0.5; echo late > '$SLUICE_ATTEMPT_DIR/late' 2>/dev/null" </dev/null >/dev/null 2>&1 &
'''
[tasks.second]
after = ["first"]
shell = 'sleep 1.5; ls "$SLUICE_ATTEMPT_DIR" > "$SLUICE_HOME/../second.ls"'
)TOML";

// After kLateWriterToml ran in `dir` as run `id`: `first` kept its file, the late write
// never reached `second`'s folder, and `second` got no directory.
inline void check_late_writer(const ScratchDir& dir, const std::string& id) {
  const std::filesystem::path tasks = dir.path() / ".sluice" / "runs" / id / "tasks";
  CHECK(read_file(tasks / "first" / "1" / "own") == "mine\n");
  CHECK(read_file(dir.path() / "second.ls").empty());
  CHECK(!std::filesystem::exists(tasks / "second"));
}

}  // namespace sluice::testing
