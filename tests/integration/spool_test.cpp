// Logs in spools and attempt directories only when used: a run of many small tasks costs
// the home a few files, not four per task, and `sluice logs` still returns each attempt's
// exact bytes (random tasks, both attempts of a retried task, stderr, older homes).
#include <catch2/catch.hpp>

#include <filesystem>
#include <random>
#include <string>

#include "support/attempt_files.hpp"
#include "support/run_queries.hpp"

using namespace sluice::testing;
namespace fs = std::filesystem;

namespace {

// Runs a sweep of `count` tasks running `shell` with 2 slots and returns how many inodes
// it added to the home; `id` is set to the run's id.
std::size_t inodes_added(ScratchDir& dir, int count, const std::string& shell, std::string& id) {
  return run_and_count_inodes(dir, [&] {
    write_file(dir / "many.toml", sweep_toml("many", count, shell));
    auto r = run_sluice({"run", "many.toml", "--cpus", "2"}, dir.path());
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    id = run_id_of(r);
  });
}

}  // namespace

TEST_CASE("a 10,000-task sweep of `true` adds at most 50 inodes to the home",
          "[integration][spool]") {
  ScratchDir dir;
  std::string id;
  const std::size_t added = inodes_added(dir, 10'000, "true", id);
  CHECK(added <= 50);
  auto logs = run_sluice({"logs", id, "t.4321"}, dir.path());
  CHECK(logs.exit_code == 0);  // printed nothing: an empty log, not an error
  CHECK(logs.out.empty());
}

TEST_CASE("10,000 tasks that print to stdout and stderr add at most 50 inodes and logs are exact",
          "[integration][spool]") {
  ScratchDir dir;
  std::string id;
  const std::size_t added = inodes_added(dir, 10'000, "echo out{i}; echo err{i} >&2", id);
  CHECK(added <= 50);
  std::mt19937 rng(26);
  for (int k = 0; k < 8; ++k) {
    const int i = static_cast<int>(rng() % 10'000);
    const std::string task = "t." + std::to_string(i);
    auto out = run_sluice({"logs", id, task, "--stdout"}, dir.path());
    INFO(task << ": " << out.err);
    CHECK(out.exit_code == 0);
    CHECK(out.out == "out" + std::to_string(i) + "\n");
    auto err = run_sluice({"logs", id, task, "--stderr"}, dir.path());
    CHECK(err.out.empty());
    CHECK(err.err == "err" + std::to_string(i) + "\n");
  }
}

TEST_CASE("sluice logs returns each attempt's bytes of a retried task, large ones included",
          "[integration][spool]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", R"(
[workflow]
name = "retried"
[tasks.flaky]
retries = 1
shell = '''
if [ "$SLUICE_ATTEMPT" = 1 ]; then
  echo "first try"; echo "first failure" >&2; exit 1
fi
seq 1 100000; echo "second failure is none" >&2
'''
[tasks.other]
shell = "printf 'no newline'"
)");
  auto r = run_sluice({"run", "wf.toml", "--cpus", "1"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const std::string id = run_id_of(r);
  auto first = run_sluice({"logs", id, "flaky", "--attempt", "1"}, dir.path());
  CHECK(first.out == "first try\n");
  CHECK(first.err == "first failure\n");
  std::string numbers;
  for (int i = 1; i <= 100000; ++i) numbers += std::to_string(i) + "\n";
  auto second = run_sluice({"logs", id, "flaky", "--attempt", "2", "--stdout"}, dir.path());
  CHECK(second.out.size() == numbers.size());
  CHECK(second.out == numbers);
  CHECK(run_sluice({"logs", id, "flaky", "--stderr"}, dir.path()).err ==
        "second failure is none\n");
  CHECK(run_sluice({"logs", id, "other"}, dir.path()).out == "no newline");
  // No attempt left a file: no task directory at all.
  CHECK(!fs::exists(dir / ".sluice" / "runs" / id / "tasks" / "flaky"));
}

TEST_CASE("a task that uses its attempt directory keeps it, others leave none",
          "[integration][spool]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", R"(
[workflow]
name = "dirs"
[tasks.keeps]
shell = 'echo kept > "$SLUICE_ATTEMPT_DIR/note"'
[tasks.leaves]
shell = 'echo hi'
)");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const fs::path tasks = dir / ".sluice" / "runs" / run_id_of(r) / "tasks";
  CHECK(read_file(tasks / "keeps" / "1" / "note") == "kept\n");
  CHECK(!fs::exists(tasks / "leaves"));
}

// SLUICE_ATTEMPT_DIR is a scratch folder lent to the attempt: mkdir and rmdir of a
// directory per attempt cost ~15% of a launch. The canonical directory appears only
// when the attempt wrote something, after it ended.
TEST_CASE("an attempt gets no directory of its own unless it writes into its scratch folder",
          "[integration][spool]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", R"TOML(
[workflow]
name = "scratch"
[tasks.quiet]
shell = 'test ! -e "$SLUICE_HOME/runs/$SLUICE_RUN_ID/tasks/quiet" && test -d "$SLUICE_ATTEMPT_DIR"'
[tasks.writes]
after = ["quiet"]
shell = 'echo kept > "$SLUICE_ATTEMPT_DIR/note"; sluice put v 7'
[tasks.reads]
after = ["writes"]
shell = 'test {inputs.writes.v} = 7 && test -f "$SLUICE_INPUT_WRITES"'
)TOML");
  auto r = run_sluice({"run", "wf.toml", "--cpus", "1"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const fs::path run = dir / ".sluice" / "runs" / run_id_of(r);
  CHECK(!fs::exists(run / "tasks" / "quiet"));
  CHECK(read_file(run / "tasks" / "writes" / "1" / "note") == "kept\n");
  CHECK(!fs::exists(run / "tasks" / "writes" / "1" / "output.h5"));  // its value is packed
  // The lent folders go when the run ends; the one `writes` used stays a link to its
  // directory, so paths it handed on stay valid.
  std::size_t links = 0;
  for (const auto& e : fs::directory_iterator(run / "scratch")) {
    CHECK(fs::is_symlink(e.symlink_status()));
    CHECK(fs::equivalent(e.path(), run / "tasks" / "writes" / "1"));
    ++links;
  }
  CHECK(links == 1);
}

// A map-reduce child that only runs `sluice put` (or appends to SLUICE_RESULTS) leaves
// just its results file in its folder: the coordinator reads it when the attempt ends
// and gives the folder back, so such a task costs no directory, rename or link. A failed
// attempt's results, and a results file that does not parse, stay in its directory, to be
// looked at.
TEST_CASE("tasks that only pass values leave no directory, and their values reach dependents",
          "[integration][spool]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", R"TOML(
[workflow]
name = "values"
[tasks.child]
matrix = { i = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] }
shell = 'sluice put v {i}; echo "w=x{i}" >> "$SLUICE_RESULTS"'
[tasks.sum]
after = ["child"]
shell = 'test {inputs.child.3.v} = 3 && test {inputs.child.9.w} = x9 && sluice put total 45'
[tasks.fails]
shell = 'sluice put v 1; exit 3'
[tasks.bad]
shell = 'echo "no equals sign" >> "$SLUICE_RESULTS"'
)TOML");
  auto r = run_sluice({"run", "wf.toml", "--cpus", "2"}, dir.path());
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);  // `fails` and `bad` fail; the rest succeed
  const std::string id = run_id_of(r);
  const fs::path run = dir / ".sluice" / "runs" / id;
  CHECK(run_sluice({"results", id, "sum"}, dir.path()).out.find("total  45") != std::string::npos);
  CHECK(run_sluice({"results", id, "child.7"}, dir.path()).out.find("w    x7") !=
        std::string::npos);
  for (int i = 0; i < 10; ++i) CHECK(!fs::exists(run / "tasks" / ("child." + std::to_string(i))));
  CHECK(!fs::exists(run / "tasks" / "sum"));
  CHECK(fs::exists(run / "tasks" / "fails" / "1" / "results"));
  CHECK(read_file(run / "tasks" / "bad" / "1" / "results") == "no equals sign\n");
  auto bad = run_sluice({"get", id, "bad"}, dir.path());
  CHECK(bad.out.find("bad results: " + (run / "tasks" / "bad" / "1" / "results").string() +
                     ":1:") != std::string::npos);
}

// The folder an attempt wrote into is renamed to its directory and a folder with a new
// name serves the next attempt: a leftover process that writes by path reaches its own
// attempt's directory, never the next one's.
TEST_CASE("a process that outlives its attempt never writes into the next attempt's folder",
          "[integration][spool]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", kLateWriterToml);
  auto r = run_sluice({"run", "wf.toml", "--cpus", "1"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  check_late_writer(dir, run_id_of(r));
}

TEST_CASE("a process that escaped its attempt with setsid never writes into the next attempt's log",
          "[integration][spool]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", R"(
[workflow]
name = "escape"
[tasks.escapes]
shell = "setsid sh -c 'sleep 0.5; echo leaked; echo leaked >&2' & echo mine"
[tasks.next]
after = ["escapes"]
shell = "sleep 1.5; echo second"
)");
  auto r = run_sluice({"run", "wf.toml", "--cpus", "1"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const std::string id = run_id_of(r);
  auto a = run_sluice({"logs", id, "escapes"}, dir.path());
  CHECK(a.out == "mine\n");
  auto b = run_sluice({"logs", id, "next"}, dir.path());
  CHECK(b.out == "second\n");
  CHECK(b.err.empty());
}

TEST_CASE("runs of older homes keep their per-attempt log files readable", "[integration][spool]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", "[workflow]\nname = \"old\"\n[tasks.a]\nshell = \"true\"\n");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  REQUIRE(r.exit_code == 0);
  const std::string id = run_id_of(r);
  // What an older Sluice left: stdout and stderr files in the attempt directory.
  const fs::path attempt = dir / ".sluice" / "runs" / id / "tasks" / "a" / "1";
  fs::create_directories(attempt);
  write_file(attempt / "stdout", "from a file\n");
  write_file(attempt / "stderr", "err from a file\n");
  auto logs = run_sluice({"logs", id, "a"}, dir.path());
  CHECK(logs.out == "from a file\n");
  CHECK(logs.err == "err from a file\n");
}

TEST_CASE("sluice logs --follow prints a running attempt's output until it ends",
          "[integration][spool]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", R"(
[workflow]
name = "follow"
[tasks.slow]
shell = "echo one; sleep 1; echo two >&2; sleep 1; echo three"
)");
  const pid_t coordinator =
      spawn_sluice({"run", "wf.toml"}, dir.path(), dir / "run.out", dir / "run.err");
  std::string id;
  REQUIRE(eventually([&] {
    auto ps = run_sluice({"pss", "--json"}, dir.path());
    auto list = nlohmann::json::parse(ps.out.empty() ? "[]" : ps.out, nullptr, false);
    if (!list.is_array() || list.empty()) return false;
    id = list.at(0)["id"];
    return true;
  }));
  auto follow = run_sluice({"logs", id, "slow", "--follow"}, dir.path());
  CHECK(follow.exit_code == 0);
  CHECK(follow.out == "one\nthree\n");
  CHECK(follow.err == "two\n");
  CHECK(wait_exit(coordinator) == 0);
}
