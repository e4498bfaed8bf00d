// Orchestrations end to end (sluice/orchestration.hpp): the examples give their answers
// on inproc and local, a coordinator killed with SIGKILL at random points resumes to
// the same answer without rerunning a call that had succeeded, a replay that makes
// other calls stops with exit 2, and a failed call is an exception the coroutine
// catches.
#include <signal.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "support/cli_runner.hpp"

namespace {

using sluice::testing::CliResult;
using sluice::testing::ScratchDir;

std::vector<std::string> environment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e)
    if (std::string(*e).rfind("SLUICE_HOME=", 0) != 0) env.push_back(*e);
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

struct Env {
  explicit Env(const std::vector<std::string>& extra) : strings(environment(extra)) {
    for (auto& s : strings) ptrs.push_back(s.data());
    ptrs.push_back(nullptr);
  }
  std::vector<std::string> strings;
  std::vector<char*> ptrs;
};

CliResult run_program(const std::string& program, const std::vector<std::string>& args,
                      const std::filesystem::path& cwd, const std::vector<std::string>& env = {}) {
  std::vector<std::string> argv{program};
  argv.insert(argv.end(), args.begin(), args.end());
  Env e(env);
  return sluice::testing::run_process(argv, cwd, e.ptrs.data());
}

std::string example(const std::string& name) {
  return std::string(SDK_EXAMPLES_DIR) + "/" + name;
}

// The value after "NAME.return = " in `app run`'s output.
std::string returned(const std::string& out, const std::string& orch) {
  const std::string key = "  " + orch + ".return = ";
  const auto at = out.find(key);
  if (at == std::string::npos) return "";
  return out.substr(at + key.size(), out.find('\n', at) - at - key.size());
}

std::vector<std::string> lines_of(const std::filesystem::path& p) {
  std::vector<std::string> out;
  std::ifstream in(p);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// Task name -> state, from `sluice get RUN --json`.
std::map<std::string, std::string> task_states(const std::string& id,
                                               const std::filesystem::path& cwd) {
  auto r = run_program(SLUICE_BINARY, {"get", id, "--json"}, cwd);
  std::map<std::string, std::string> out;
  if (r.exit_code != 0) return out;
  auto doc = nlohmann::json::parse(r.out);
  for (const auto& t : doc["task_list"]) out[t["name"]] = t["state"];
  return out;
}

}  // namespace

TEST_CASE("the bisection example finds the root on inproc and local alike",
          "[integration][orchestration]") {
  ScratchDir dir;
  const auto log = dir.path() / "calls";
  auto inproc = run_program(example("bisection"), {"run", "--config", "inproc"}, dir.path(),
                            {"SLUICE_EXAMPLE_CALL_LOG=" + log.string()});
  INFO(inproc.out << inproc.err);
  REQUIRE(inproc.exit_code == 0);
  CHECK(returned(inproc.out, "bisect").rfind("0.68232", 0) == 0);
  CHECK(lines_of(log).size() == 80);  // 20 rounds of 4
  auto local =
      run_program(example("bisection"), {"run", "--config", "local", "--no-cache"}, dir.path());
  INFO(local.out << local.err);
  REQUIRE(local.exit_code == 0);
  CHECK(returned(local.out, "bisect") == returned(inproc.out, "bisect"));
  // The calls are tasks of the run, named by their sequence number.
  std::istringstream first(inproc.out);
  std::string word, id;
  first >> word >> id;
  const auto states = task_states(id, dir.path());
  CHECK(states.at("bisect") == "succeeded");
  CHECK(states.at("bisect.call-1-evaluate") == "succeeded");
  CHECK(states.at("bisect.call-80-evaluate") == "succeeded");
  CHECK(states.count("bisect.call-81-evaluate") == 0);
}

TEST_CASE("the active-learning example labels batches until the target is met",
          "[integration][orchestration]") {
  ScratchDir dir;
  auto r = run_program(example("active_learning"), {"run"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const std::string v = returned(r.out, "learn");
  CHECK(v.find("threshold") != std::string::npos);
  const auto at = r.out.find("threshold");
  REQUIRE(at != std::string::npos);
}

TEST_CASE(
    "a coordinator killed at random points resumes to the same answer and reruns no "
    "succeeded call",
    "[integration][orchestration][crash]") {
  ScratchDir dir;
  auto reference =
      run_program(example("bisection"), {"run", "--config", "inproc", "--no-cache"}, dir.path());
  REQUIRE(reference.exit_code == 0);
  const std::string answer = returned(reference.out, "bisect");
  REQUIRE_FALSE(answer.empty());

  std::mt19937 rng(std::random_device{}());
  constexpr int kTrials = 3;  // scripts/orch-crash-trials.sh runs many more
  for (int trial = 0; trial < kTrials; ++trial) {
    const auto log = dir.path() / ("calls-" + std::to_string(trial));
    const std::vector<std::string> env{"SLUICE_EXAMPLE_CALL_LOG=" + log.string(),
                                       "SLUICE_EXAMPLE_SLEEP_MS=20"};
    auto prep = run_program(example("bisection"), {"prepare", "--config", "local", "--no-cache"},
                            dir.path(), env);
    REQUIRE(prep.exit_code == 0);
    const std::string id = prep.out.substr(0, prep.out.find('\n'));
    const int kill_after_ms = std::uniform_int_distribution<int>(150, 1500)(rng);
    INFO("trial " << trial << ": run " << id << ", SIGKILL after " << kill_after_ms << " ms");
    {
      Env e(env);
      const pid_t pid = sluice::testing::spawn_process(
          {example("bisection"), "start", id, "--no-cache", "-q"}, dir.path(),
          dir.path() / "coord.out", dir.path() / "coord.err", e.ptrs.data());
      std::this_thread::sleep_for(std::chrono::milliseconds(kill_after_ms));
      ::kill(pid, SIGKILL);
      sluice::testing::wait_exit(pid);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // orphaned workers finish
    std::set<std::string> succeeded_before;
    for (const auto& [task, state] : task_states(id, dir.path()))
      if (state == "succeeded" && task.find(".call-") != std::string::npos)
        succeeded_before.insert(task);
    auto resumed = run_program(example("bisection"), {"resume", id, "--no-cache"}, dir.path(), env);
    INFO(resumed.out << resumed.err);
    REQUIRE(resumed.exit_code == 0);
    CHECK(returned(resumed.out, "bisect") == answer);
    std::map<std::string, int> runs;
    for (const std::string& l : lines_of(log)) ++runs[l.substr(0, l.find(' '))];
    CHECK(runs.size() == 80);
    for (const std::string& task : succeeded_before) {
      INFO(task << " had succeeded before the kill");
      CHECK(runs[task] == 1);
    }
  }
}

TEST_CASE(
    "a failed call is an exception the orchestration catches, commands, any and nested "
    "orchestrations give their values",
    "[integration][orchestration]") {
  ScratchDir dir;
  auto r = run_program(ORCH_TEST_APP, {"run", "--config", "local"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const std::string v = returned(r.out, "orch");
  CHECK(v.find("\"caught\":1") != std::string::npos);
  CHECK(v.find("\"first\":9") != std::string::npos);
  CHECK(v.find("\"nested\":14") != std::string::npos);
  CHECK(v.find("\"command_ok\":0") != std::string::npos);
  CHECK(v.find("\"command_bad\":3") != std::string::npos);
  CHECK((v.find("\"any\":400") != std::string::npos || v.find("\"any\":441") != std::string::npos));
}

TEST_CASE("a replay that makes another call than the record stops with exit 2 naming it",
          "[integration][orchestration]") {
  ScratchDir dir;
  const auto log = dir.path() / "calls";
  // First run: the orchestration fails after its first calls (an uncaught failure).
  auto first = run_program(ORCH_TEST_APP, {"run", "--config", "inproc"}, dir.path(),
                           {"ORCH_FAIL=1", "ORCH_X=3", "ORCH_CALL_LOG=" + log.string()});
  INFO(first.out << first.err);
  REQUIRE(first.exit_code == 1);
  CHECK(first.err.find("boom 8") != std::string::npos);
  std::istringstream words(first.out);
  std::string word, id;
  words >> word >> id;
  REQUIRE(lines_of(log).size() == 2);  // square(3), square(random)

  SECTION("the same calls: replayed from the record, random() included; nothing reruns") {
    // Still failing at call 5, which runs again; calls 1-4 (square(3), random(),
    // square(random), the caught boom(7)) replay from the record: a different random()
    // would have stopped the replay at call 3 with exit 2.
    auto again = run_program(ORCH_TEST_APP, {"resume", id}, dir.path(),
                             {"ORCH_FAIL=1", "ORCH_X=3", "ORCH_CALL_LOG=" + log.string()});
    INFO(again.out << again.err);
    CHECK(again.exit_code == 1);
    CHECK(again.err.find("boom 8") != std::string::npos);
    CHECK(again.err.find("did not replay") == std::string::npos);
    CHECK(lines_of(log).size() == 2);
  }
  SECTION("the plain `sluice resume` refuses, naming the program that resumes it") {
    const auto before = task_states(id, dir.path());
    auto plain =
        run_program(SLUICE_BINARY, {"resume", id}, dir.path(), {"ORCH_CALL_LOG=" + log.string()});
    INFO(plain.out << plain.err);
    CHECK(plain.exit_code == 2);
    CHECK(plain.err.find("orch_test_app resume " + id) != std::string::npos);
    CHECK(task_states(id, dir.path()) == before);  // nothing ran, nothing was added
    CHECK(lines_of(log).size() == 2);
    auto again = run_program(ORCH_TEST_APP, {"resume", id}, dir.path(),
                             {"ORCH_FAIL=1", "ORCH_X=3", "ORCH_CALL_LOG=" + log.string()});
    CHECK(again.exit_code == 1);  // still resumable by its program
    CHECK(again.err.find("did not replay") == std::string::npos);
  }
  SECTION("no longer failing at call 5: stopped there, the first call that differs") {
    auto other = run_program(ORCH_TEST_APP, {"resume", id}, dir.path(),
                             {"ORCH_X=3", "ORCH_CALL_LOG=" + log.string()});
    INFO(other.out << other.err);
    CHECK(other.exit_code == 2);
    CHECK(other.err.find("call 5 is now square@1") != std::string::npos);
    CHECK(other.err.find("'orch.call-5-boom'") != std::string::npos);
  }
  SECTION("another first call: stopped at call 1") {
    auto other = run_program(ORCH_TEST_APP, {"resume", id}, dir.path(),
                             {"ORCH_X=4", "ORCH_CALL_LOG=" + log.string()});
    INFO(other.out << other.err);
    CHECK(other.exit_code == 2);
    CHECK(other.err.find("call 1 is now square@1") != std::string::npos);
    CHECK(other.err.find("orch.call-1-square") != std::string::npos);
    CHECK(lines_of(log).size() == 2);  // nothing ran
  }
}
