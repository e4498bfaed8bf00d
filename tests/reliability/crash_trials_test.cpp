// Crash trials: kill -9 the coordinator at random moments, resume, repeat until the run
// ends. Nothing that had succeeded may run again, the results must equal an
// uninterrupted run's, and SQLite must find the store intact. Also: kill -9 of a running
// task fails that attempt and the retry finishes the task.
//
// The number of trials is SLUICE_CRASH_TRIALS (default 10; scripts/crash-trials.sh N).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <map>
#include <random>
#include <set>

#include "support/reliability.hpp"
#include "support/run_queries.hpp"

using nlohmann::json;
using namespace sluice::testing;
namespace fs = std::filesystem;

namespace {

// A diamond, a sweep with artifacts, and a map-reduce whose children appear while the
// run goes on; `join` sums every `v` it receives.
//
//            prepare            sq.0 .. sq.3        map --adds--> part_0 .. part_2
//           /       \               |                 \               |
//        left       right           |                  +---------> reduce
//           \       /               |                                 |
//            +-------------------- join <-----------------------------+
//
// Every task (children included) appends a line to executions/<task> when it starts.
const char* kTrialWorkflow = R"TOML(
[workflow]
name = "trials"
[tasks.prepare]
shell = "echo x >> executions/$SLUICE_TASK; echo out $SLUICE_TASK $SLUICE_ATTEMPT; echo err $SLUICE_TASK $SLUICE_ATTEMPT >&2; sleep 0.1; sluice put n 3"
[tasks.left]
after = ["prepare"]
shell = "echo x >> executions/$SLUICE_TASK; echo out $SLUICE_TASK $SLUICE_ATTEMPT; echo err $SLUICE_TASK $SLUICE_ATTEMPT >&2; sluice put v $(( $(sluice get prepare n) * 2 ))"
[tasks.right]
after = ["prepare"]
shell = "echo x >> executions/$SLUICE_TASK; echo out $SLUICE_TASK $SLUICE_ATTEMPT; echo err $SLUICE_TASK $SLUICE_ATTEMPT >&2; sleep 0.1; sluice put v $(( $(sluice get prepare n) + 10 ))"
[tasks.sq]
matrix = { i = [1, 2, 3, 4] }
shell = "echo x >> executions/$SLUICE_TASK; echo out $SLUICE_TASK $SLUICE_ATTEMPT; echo err $SLUICE_TASK $SLUICE_ATTEMPT >&2; sleep 0.1; sluice put v $(( {i} * {i} ))"
[tasks.map]
shell = '''
echo x >> executions/$SLUICE_TASK
echo out $SLUICE_TASK $SLUICE_ATTEMPT; echo err $SLUICE_TASK $SLUICE_ATTEMPT >&2
for i in 0 1 2; do
  sluice add-child --name part_$i --before reduce --shell "echo x >> executions/\$SLUICE_TASK; sluice put v $((i + 1))"
done
'''
[tasks.reduce]
after = ["map"]
shell = "echo x >> executions/$SLUICE_TASK; echo out $SLUICE_TASK $SLUICE_ATTEMPT; echo err $SLUICE_TASK $SLUICE_ATTEMPT >&2; sluice put v $(sluice inputs v | awk '{s += $1} END {print s}')"
[tasks.join]
after = ["left", "right", "sq", "reduce"]
shell = "echo x >> executions/$SLUICE_TASK; echo out $SLUICE_TASK $SLUICE_ATTEMPT; echo err $SLUICE_TASK $SLUICE_ATTEMPT >&2; sluice put total $(sluice inputs v | awk '{s += $1} END {print s}')"
)TOML";

// left 6 + right 13 + sq 1+4+9+16 + reduce (1+2+3) = 55
constexpr int kExpectedTotal = 55;

std::map<std::string, std::size_t> execution_counts(const fs::path& dir) {
  std::map<std::string, std::size_t> counts;
  for (const auto& e : fs::directory_iterator(dir / "executions")) {
    auto text = read_file(e.path());
    counts[e.path().filename().string()] =
        static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
  }
  return counts;
}

int trials_wanted() {
  const char* env = std::getenv("SLUICE_CRASH_TRIALS");
  const int n = env ? std::atoi(env) : 0;
  return n > 0 ? n : 10;
}

struct TrialOutcome {
  int crashes = 0;
  json results;
};

// One run of the trial workflow in `dir`, killed with -9 after random delays and resumed
// until it ends; checks the invariants and returns its results.
TrialOutcome crash_trial(const fs::path& dir, std::mt19937& rng) {
  fs::create_directories(dir / "executions");
  write_file(dir / "wf.toml", kTrialWorkflow);
  std::uniform_int_distribution<int> delay_ms(0, 700);

  // Succeeded tasks seen after each crash, with their execution count then.
  std::map<std::string, std::size_t> frozen;
  std::string id;
  TrialOutcome outcome;
  bool finished = false;
  for (int kill = 0; kill < 8 && !finished; ++kill) {
    const std::vector<std::string> args = id.empty()
                                              ? std::vector<std::string>{"run", "-q", "wf.toml"}
                                              : std::vector<std::string>{"resume", "-q", id};
    pid_t pid = spawn_sluice(args, dir, dir / "out", dir / "err");
    if (id.empty()) id = wait_for_run_id(dir / "out");
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    if (::kill(pid, SIGKILL) == 0) ++outcome.crashes;
    const int rc = wait_exit(pid);
    auto run = get_json(id, dir);
    auto counts = execution_counts(dir);
    for (const auto& t : run["task_list"])
      if (t["state"] == "succeeded" && !frozen.count(t["name"]))
        frozen[t["name"]] = counts[t["name"]];
    finished = rc == 0 && run["state"] == "succeeded";
  }
  if (!finished) {  // finish whatever is left, uninterrupted
    auto last = run_sluice({"resume", "-q", id}, dir);
    INFO(last.out << last.err);
    REQUIRE(last.exit_code == 0);
  }

  auto run = get_json(id, dir);
  CHECK(run["state"] == "succeeded");
  auto counts = execution_counts(dir);
  for (const auto& [task, count] : frozen) {
    INFO("task " << task << " succeeded before a crash and must not run again");
    CHECK(counts[task] == count);
  }
  CHECK(run["task_list"].size() == 13);  // 10 declared + 3 children
  for (const auto& t : run["task_list"]) {
    INFO("task " << t["name"]);
    CHECK(t["state"] == "succeeded");
    CHECK(counts[t["name"]] >= 1);
  }
  CHECK(sqlite_integrity(dir / ".sluice/store.db") == "ok");
  // No finished attempt lost a log byte: each declared task's last attempt printed one
  // line to stdout and one to stderr, and `sluice logs` returns exactly those.
  for (const auto& t : run["task_list"]) {
    const std::string name = t["name"];
    if (name.rfind("part_", 0) == 0) continue;  // children print nothing
    const std::string tag = name + " " + std::to_string(t["attempts"].get<int>()) + "\n";
    auto logs = run_sluice({"logs", id, name}, dir);
    INFO("logs of " << name);
    CHECK(logs.out == "out " + tag);
    CHECK(logs.err == "err " + tag);
  }
  outcome.results = results_json(id, dir)["results"];
  return outcome;
}

}  // namespace

TEST_CASE("kill -9 at random moments then resume never reruns a succeeded task",
          "[reliability][crash][trials]") {
  // The reference: the same workflow, never interrupted.
  json reference;
  {
    ScratchDir dir;
    fs::create_directories(dir / "executions");
    write_file(dir / "wf.toml", kTrialWorkflow);
    auto r = run_sluice({"run", "-q", "wf.toml"}, dir.path());
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    reference = results_json(run_id_of(r), dir.path())["results"];
    REQUIRE(reference["join"]["total"] == kExpectedTotal);
    for (const auto& [task, count] : execution_counts(dir.path())) CHECK(count == 1);
  }

  const int trials = trials_wanted();
  std::mt19937 rng(std::random_device{}());
  int crashes = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int trial = 0; trial < trials; ++trial) {
    INFO("trial " << trial);
    ScratchDir dir;
    auto outcome = crash_trial(dir.path(), rng);
    crashes += outcome.crashes;
    CHECK(outcome.results == reference);
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  WARN(trials << " crash trials, " << crashes << " kills, " << secs << " s");
  CHECK(crashes >= trials);
}

TEST_CASE("kill -9 of a running task fails its attempt and the retry finishes it",
          "[reliability][crash]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", R"TOML(
[workflow]
name = "killed_task"
[tasks.work]
retries = 1
shell = "echo $$ > pid.$SLUICE_ATTEMPT; if [ $SLUICE_ATTEMPT = 1 ]; then sleep 60; fi; sluice put ok 1"
[tasks.after_work]
after = ["work"]
shell = "sluice put ok $(sluice get work ok)"
)TOML");
  pid_t pid = spawn_sluice({"run", "-q", "wf.toml"}, dir.path(), dir / "out", dir / "err");
  const std::string id = wait_for_run_id(dir / "out");
  REQUIRE(eventually([&] { return pid_written(dir / "pid.1"); }, std::chrono::seconds(60)));
  const pid_t task_pid = std::stoi(read_file(dir / "pid.1"));
  REQUIRE(::kill(task_pid, SIGKILL) == 0);
  CHECK(wait_exit(pid) == 0);
  auto run = get_json(id, dir.path());
  CHECK(run["state"] == "succeeded");
  auto work = task_named(run, "work");
  CHECK(work["attempts"] == 2);
  CHECK(sqlite_query(dir / ".sluice/store.db",
                     "SELECT state || ': ' || reason FROM attempts WHERE attempt = 1 AND task = "
                     "(SELECT idx FROM tasks WHERE name = 'work')") ==
        "failed: killed by signal 9 (SIGKILL)");
  CHECK(task_state(run, "after_work") == "succeeded");
}
