// Crash trials: kill -9 the coordinator at random moments, resume, repeat until the run
// ends. Nothing that had succeeded may run again, the results must equal an
// uninterrupted run's, and SQLite must find the store intact.
#include <catch2/catch.hpp>

#include <map>
#include <random>

#include "support/run_queries.hpp"

using nlohmann::json;
using namespace sluice::testing;
namespace fs = std::filesystem;

namespace {

// prepare -> sweep (4 instances, each puts i*i) -> total (sums them); side -> total.
// Every task counts its executions in executions/<task> and sleeps a little.
const char* kTrialWorkflow = R"TOML(
[workflow]
name = "trials"
[tasks.prepare]
shell = "echo x >> executions/$SLUICE_TASK; sleep 0.2; sluice put n 4"
[tasks.side]
shell = "echo x >> executions/$SLUICE_TASK; sleep 0.3; sluice put v 100"
[tasks.sq]
after = ["prepare"]
matrix = { i = [1, 2, 3, 4] }
shell = "echo x >> executions/$SLUICE_TASK; sleep 0.2; sluice put v $(( {i} * {i} ))"
[tasks.total]
after = ["sq", "side"]
shell = "echo x >> executions/$SLUICE_TASK; sluice put total $(sluice inputs v | awk '{s += $1} END {print s}')"
)TOML";

std::map<std::string, std::size_t> execution_counts(const ScratchDir& dir) {
  std::map<std::string, std::size_t> counts;
  for (const auto& e : fs::directory_iterator(dir / "executions")) {
    auto text = read_file(e.path());
    counts[e.path().filename().string()] =
        static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
  }
  return counts;
}

}  // namespace

TEST_CASE("kill -9 at random moments then resume never reruns a succeeded task",
          "[integration][crash][trials]") {
  ScratchDir dir;
  fs::create_directories(dir / "executions");
  write_file(dir / "wf.toml", kTrialWorkflow);
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> delay_ms(50, 500);

  // Succeeded tasks seen after each crash, with their execution count then.
  std::map<std::string, std::size_t> frozen;
  std::string id;
  int crashes = 0;
  for (int trial = 0; trial < 6; ++trial) {
    const std::vector<std::string> args = id.empty() ? std::vector<std::string>{"run", "wf.toml"}
                                                     : std::vector<std::string>{"resume", id};
    pid_t pid = spawn_sluice(args, dir.path(), dir / "out", dir / "err");
    if (id.empty()) id = wait_for_run_id(dir / "out");
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms(rng)));
    if (::kill(pid, SIGKILL) == 0) ++crashes;
    const int rc = wait_exit(pid);
    auto run = get_json(id, dir.path());
    auto counts = execution_counts(dir);
    for (const auto& t : run["task_list"])
      if (t["state"] == "succeeded" && !frozen.count(t["name"]))
        frozen[t["name"]] = counts[t["name"]];
    if (rc == 0 && run["state"] == "succeeded") break;
  }
  // Finish whatever is left.
  auto last = run_sluice({"resume", id}, dir.path());
  INFO(last.out << last.err);
  REQUIRE(last.exit_code == 0);
  CHECK(crashes >= 1);

  auto run = get_json(id, dir.path());
  CHECK(run["state"] == "succeeded");
  auto counts = execution_counts(dir);
  for (const auto& [task, count] : frozen) {
    INFO("task " << task << " succeeded before a crash and must not run again");
    CHECK(counts[task] == count);
  }
  for (const auto& t : run["task_list"]) CHECK(counts[t["name"]] >= 1);
  // The same answer as an uninterrupted run: 1 + 4 + 9 + 16 + 100.
  CHECK(results_json(id, dir.path())["results"]["total"]["total"] == 130);
  const std::string check = "sqlite3 '" + (dir / ".sluice/store.db").string() +
                            "' 'PRAGMA integrity_check' > '" + (dir / "ic.txt").string() + "'";
  REQUIRE(std::system(check.c_str()) == 0);
  CHECK(read_file(dir / "ic.txt") == "ok\n");
}
