// Runs watched from a second process while they execute, cancelled from outside,
// interrupted with Ctrl-C, and killed with -9 then resumed.
#include <catch2/catch.hpp>

#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "support/reliability.hpp"
#include "support/run_queries.hpp"

using nlohmann::json;
using namespace sluice::testing;
namespace fs = std::filesystem;

namespace {

// A chain of `n` tasks; each appends one line to runs/<task> (so executions can be
// counted) and then sleeps.
std::string chain_workflow(int n, const std::string& sleep) {
  std::string wf = "[workflow]\nname = \"chain\"\n";
  for (int i = 0; i < n; ++i) {
    wf += "[tasks.step" + std::to_string(i) + "]\n";
    if (i > 0) wf += "after = [\"step" + std::to_string(i - 1) + "\"]\n";
    wf += "shell = \"echo ran >> executions/$SLUICE_TASK; echo step " + std::to_string(i) +
          " output; sleep " + sleep + "\"\n";
  }
  return wf;
}

std::size_t executions(const ScratchDir& dir, const std::string& task) {
  auto text = read_file(dir / ("executions/" + task));
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

// Runs `first` (which waits for a file `quick`), then `second` (which records its attempt
// number); kills the coordinator with -9 once `first` runs and `ready(run id)` holds.
std::string kill_while_first_runs(const ScratchDir& dir,
                                  const std::function<bool(const std::string&)>& ready) {
  write_file(dir / "wf.toml", R"TOML(
[workflow]
name = "first_then_second"
[tasks.first]
shell = "echo $$ > first.pid; if [ ! -e quick ]; then sleep 60; fi"
[tasks.second]
after = ["first"]
shell = "echo $SLUICE_ATTEMPT > second.attempt"
)TOML");
  pid_t pid = spawn_sluice({"run", "-q", "wf.toml"}, dir.path(), dir / "out", dir / "err");
  const std::string id = wait_for_run_id(dir / "out");
  REQUIRE(eventually([&] { return read_file(dir / "first.pid").size() > 1; }));
  REQUIRE(eventually([&] { return ready(id); }));
  ::kill(pid, SIGKILL);
  wait_exit(pid);
  return id;
}

// Lets `first` end at once, resumes the run killed by kill_while_first_runs() and returns
// it as `sluice get --json` shows it, succeeded.
json let_first_finish_and_resume(const ScratchDir& dir, const std::string& id) {
  write_file(dir / "quick", "");
  auto resumed = run_sluice({"resume", "-q", id}, dir.path());
  INFO(resumed.out << resumed.err);
  REQUIRE(resumed.exit_code == 0);
  auto run = get_json(id, dir.path());
  CHECK(run["state"] == "succeeded");
  return run;
}

}  // namespace

TEST_CASE("ps, get and logs work from a second process while a run is in progress",
          "[integration][concurrent]") {
  ScratchDir dir;
  fs::create_directories(dir / "executions");
  // step1 runs until the test has made its calls (or 120 s pass): a fixed sleep was too
  // short for a dozen ASan-built CLI calls on a slow VM, where each took ~1 s.
  std::string wf = chain_workflow(4, "0");
  const std::string step1 = "echo step 1 output; sleep 0";
  REQUIRE(wf.find(step1) != std::string::npos);
  wf.replace(wf.find(step1), step1.size(),
             "echo step 1 output; i=0; while [ ! -e go ] && [ $i -lt 1200 ]; do sleep 0.1; "
             "i=$((i+1)); done");
  write_file(dir / "wf.toml", wf);
  pid_t pid = spawn_sluice({"run", "wf.toml"}, dir.path(), dir / "out", dir / "err");
  const std::string id = wait_for_run_id(dir / "out");

  // step1 running means step0 finished and has logs.
  REQUIRE(eventually([&] { return task_state(get_json(id, dir.path()), "step1") == "running"; }));
  auto ps = run_sluice({"ps", "--json"}, dir.path());
  REQUIRE(ps.exit_code == 0);
  auto listed = json::parse(ps.out);
  REQUIRE(listed.size() == 1);
  CHECK(listed[0]["id"] == id);
  CHECK(listed[0]["state"] == "running");
  CHECK(listed[0]["coordinator_alive"] == true);
  auto table = run_sluice({"ps"}, dir.path());
  CHECK(table.out.find(id) != std::string::npos);
  CHECK(run_sluice({"psw"}, dir.path()).exit_code == 0);
  CHECK(json::parse(run_sluice({"pss", "--json"}, dir.path()).out).empty());
  CHECK(json::parse(run_sluice({"psf", "--json"}, dir.path()).out).empty());
  auto get = run_sluice({"get", id.substr(0, 22)}, dir.path());
  CHECK(get.out.find("step1  running") != std::string::npos);
  auto logs = run_sluice({"logs", id, "step0"}, dir.path());
  CHECK(logs.exit_code == 0);
  CHECK(logs.out == "step 0 output\n");
  CHECK(run_sluice({"remove", id}, dir.path()).exit_code == 2);  // still running

  write_file(dir / "go", "");
  REQUIRE(wait_exit(pid) == 0);
  CHECK(json::parse(run_sluice({"pss", "--json"}, dir.path()).out).size() == 1);
}

TEST_CASE("kill -9 of the coordinator, then resume, finishes without rerunning succeeded tasks",
          "[integration][crash]") {
  ScratchDir dir;
  fs::create_directories(dir / "executions");
  write_file(dir / "wf.toml", chain_workflow(5, "0.3"));
  pid_t pid = spawn_sluice({"run", "wf.toml"}, dir.path(), dir / "out", dir / "err");
  const std::string id = wait_for_run_id(dir / "out");
  REQUIRE(eventually([&] { return executions(dir, "step2") == 1; }));
  ::kill(pid, SIGKILL);
  wait_exit(pid);

  auto before = get_json(id, dir.path());
  std::set<std::string> succeeded_before;
  for (const auto& t : before["task_list"])
    if (t["state"] == "succeeded") succeeded_before.insert(t["name"]);
  CHECK(succeeded_before.count("step0") == 1);
  CHECK(before["coordinator_alive"] == false);
  auto orphaned = run_sluice({"ps"}, dir.path());
  CHECK(orphaned.out.find("orphaned") != std::string::npos);

  auto resumed = run_sluice({"resume", id.substr(0, 20)}, dir.path());
  INFO(resumed.out << resumed.err);
  REQUIRE(resumed.exit_code == 0);
  auto after = get_json(id, dir.path());
  CHECK(after["state"] == "succeeded");
  for (int i = 0; i < 5; ++i) {
    const std::string name = "step" + std::to_string(i);
    CHECK(task_state(after, name) == "succeeded");
    if (succeeded_before.count(name)) CHECK(executions(dir, name) == 1);
    CHECK(executions(dir, name) >= 1);
  }
  // Resuming a finished run changes nothing.
  auto again = run_sluice({"resume", id}, dir.path());
  CHECK(again.exit_code == 0);
  CHECK(executions(dir, "step4") == 1);
}

// Group commit lets an attempt start before its record reaches the store. A crash in
// that window leaves an attempt directory the store does not know; resume must count
// that attempt as lost and never reuse its directory (its process may still write there).
TEST_CASE("resume never reuses the directory of an attempt launched but not recorded",
          "[integration][crash]") {
  ScratchDir dir;
  const std::string id = kill_while_first_runs(dir, [&](const std::string& run) {
    return task_state(get_json(run, dir.path()), "first") == "running";
  });
  // What a launch of `second` that the crash kept from the store leaves behind: a log
  // with its launch mode (one made ahead of the launch has mode 0; see the next test).
  const fs::path unrecorded = dir / ".sluice/runs" / id / "tasks/second/1";
  fs::create_directories(unrecorded);
  write_file(unrecorded / "stdout", "from the unrecorded attempt\n");
  fs::permissions(unrecorded / "stdout", fs::perms::owner_read | fs::perms::owner_write);
  auto run = let_first_finish_and_resume(dir, id);
  CHECK(task_named(run, "second")["attempts"] == 2);
  CHECK(read_file(dir / "second.attempt") == "2\n");
  CHECK(read_file(unrecorded / "stdout") == "from the unrecorded attempt\n");
  CHECK(sqlite_query(dir / ".sluice/store.db",
                     "SELECT state || ': ' || reason FROM attempts WHERE attempt = 1 AND task = "
                     "(SELECT idx FROM tasks WHERE name = 'second')") ==
        "failed: lost: the coordinator stopped before recording its launch");
}

// While `first` runs it borrows a scratch folder (RUN/scratch) as SLUICE_ATTEMPT_DIR;
// `second` gets no directory ahead of its launch. After a crash, resume must not count
// `second` as launched, must never lend the crashed coordinator's folder again, and
// removes it when it is empty.
TEST_CASE(
    "resume neither reuses a crashed coordinator's scratch folder nor counts an "
    "attempt that never launched",
    "[integration][crash]") {
  ScratchDir dir;
  fs::path scratch;
  const std::string id = kill_while_first_runs(dir, [&](const std::string& run) {
    scratch = dir / ".sluice/runs" / run / "scratch";
    std::error_code ec;
    return fs::exists(scratch) && !fs::is_empty(scratch, ec);
  });
  const fs::path ahead = dir / ".sluice/runs" / id / "tasks/second/1";
  CHECK(!fs::exists(ahead));
  auto run = let_first_finish_and_resume(dir, id);
  CHECK(task_named(run, "second")["attempts"] == 1);
  CHECK(read_file(dir / "second.attempt") == "1\n");
  CHECK(sqlite_query(dir / ".sluice/store.db",
                     "SELECT count(*) FROM attempts WHERE task = "
                     "(SELECT idx FROM tasks WHERE name = 'second')") == "1");
  CHECK(!fs::exists(scratch));  // the crashed coordinator's empty folder went too
}

// A task that wrote into its scratch folder when the coordinator was killed: resume runs
// it again in a fresh folder and the lost attempt's files stay where they were, never
// mixed into the new attempt's directory.
TEST_CASE("resume keeps a lost attempt's scratch files apart from its rerun",
          "[integration][crash]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", R"TOML(
[workflow]
name = "writes_then_waits"
[tasks.w]
shell = "echo attempt$SLUICE_ATTEMPT > $SLUICE_ATTEMPT_DIR/note; echo x > started; if [ ! -e quick ]; then sleep 60; fi"
)TOML");
  pid_t pid = spawn_sluice({"run", "-q", "wf.toml"}, dir.path(), dir / "out", dir / "err");
  const std::string id = wait_for_run_id(dir / "out");
  REQUIRE(eventually([&] { return fs::exists(dir / "started"); }));
  REQUIRE(eventually([&] { return task_state(get_json(id, dir.path()), "w") == "running"; }));
  ::kill(pid, SIGKILL);
  wait_exit(pid);
  const fs::path scratch = dir / ".sluice/runs" / id / "scratch";
  std::vector<fs::path> left;
  for (const auto& e : fs::directory_iterator(scratch)) left.push_back(e.path());
  REQUIRE(left.size() == 1);
  write_file(dir / "quick", "");
  auto resumed = run_sluice({"resume", "-q", id}, dir.path());
  INFO(resumed.out << resumed.err);
  REQUIRE(resumed.exit_code == 0);
  CHECK(read_file(left[0] / "note") == "attempt1\n");
  const fs::path tasks = dir / ".sluice/runs" / id / "tasks/w";
  CHECK(read_file(tasks / "2" / "note") == "attempt2\n");
  CHECK(!fs::exists(tasks / "1"));
}

TEST_CASE("sluice cancel stops a run from another process and kills its attempts",
          "[integration][cancel]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", R"(
[workflow]
name = "long"
[tasks.long]
shell = "echo $$ > long.pid; sleep 60"
[tasks.after_long]
after = ["long"]
shell = "true"
)");
  pid_t pid = spawn_sluice({"run", "wf.toml"}, dir.path(), dir / "out", dir / "err");
  const std::string id = wait_for_run_id(dir / "out");
  REQUIRE(eventually([&] { return pid_written(dir / "long.pid"); }));
  auto c = run_sluice({"cancel", id}, dir.path());
  CHECK(c.exit_code == 0);
  CHECK(wait_exit(pid) == 1);
  auto run = get_json(id, dir.path());
  CHECK(run["state"] == "cancelled");
  CHECK(task_state(run, "long") == "cancelled");
  CHECK(task_state(run, "after_long") == "cancelled");
  const int task_pid = std::stoi(read_file(dir / "long.pid"));
  CHECK(eventually([&] { return ::kill(task_pid, 0) != 0; }, std::chrono::seconds(5)));
}

TEST_CASE("Ctrl-C cancels the run cleanly and exits 1", "[integration][cancel]") {
  ScratchDir dir;
  write_file(dir / "wf.toml",
             "[workflow]\nname = \"w\"\n[tasks.a]\nshell = \"touch started; sleep 60\"\n");
  pid_t pid = spawn_sluice({"run", "wf.toml"}, dir.path(), dir / "out", dir / "err");
  const std::string id = wait_for_run_id(dir / "out");
  REQUIRE(eventually([&] { return fs::exists(dir / "started"); }));
  ::kill(pid, SIGINT);
  CHECK(wait_exit(pid) == 1);
  CHECK(get_json(id, dir.path())["state"] == "cancelled");
}
