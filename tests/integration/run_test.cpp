// The real `sluice` binary running real processes: examples, failures, timeouts and
// the run store read back through the CLI.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "support/run_queries.hpp"

using nlohmann::json;
using namespace sluice::testing;
namespace fs = std::filesystem;

TEST_CASE("the diamond example runs to success and is recorded", "[integration][examples]") {
  ScratchDir dir;
  auto r = run_sluice({"run", kExamples + "diamond.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto id = run_id_of(r);
  auto run = get_json(id, dir.path());
  CHECK(run["state"] == "succeeded");
  CHECK(run["revision"] == 1);
  for (const auto& t : run["task_list"]) CHECK(t["state"] == "succeeded");
  auto pss = run_sluice({"pss", "--json"}, dir.path());
  CHECK(json::parse(pss.out).at(0)["id"] == id);
}

TEST_CASE("every example behaves as its comment says", "[integration][examples]") {
  ScratchDir dir;
  for (std::string ex : {"two_workers.toml", "sweep.toml"}) {
    auto r = run_sluice({"run", kExamples + ex}, dir.path());
    INFO(ex << "\n" << r.out << r.err);
    CHECK(r.exit_code == 0);
  }
  auto r = run_sluice({"run", kExamples + "retries.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 1);
  auto run = get_json(run_id_of(r), dir.path());
  CHECK(run["state"] == "failed");
  CHECK(task_named(run, "flaky")["state"] == "succeeded");
  CHECK(task_named(run, "flaky")["attempts"] == 2);
  CHECK(task_named(run, "always_fails")["state"] == "failed");
  CHECK(task_named(run, "always_fails")["attempts"] == 2);
  CHECK(task_named(run, "always_fails")["reason"] == "exit code 3");
  CHECK(task_named(run, "never_runs")["state"] == "skipped");
}

TEST_CASE("a matrix sweep runs one instance per combination with substituted arguments",
          "[integration][matrix]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", R"(
[workflow]
name = "sweep"
[tasks.train]
matrix = { lr = [0.1, 0.01], layers = [2, 4] }
command = ["sh", "-c", "echo lr={lr} layers={layers}"]
[tasks.pick]
after = ["train"]
shell = "echo picked"
)");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto id = run_id_of(r);
  std::string all;
  for (int i = 0; i < 4; ++i) {
    auto logs = run_sluice({"logs", id, "train." + std::to_string(i)}, dir.path());
    REQUIRE(logs.exit_code == 0);
    all += logs.out;
  }
  for (auto combo : {"lr=0.1 layers=2", "lr=0.1 layers=4", "lr=0.01 layers=2", "lr=0.01 layers=4"})
    CHECK(all.find(combo) != std::string::npos);
  auto run = get_json(id, dir.path());
  CHECK(run["task_list"].size() == 5);
}

TEST_CASE("an attempt past max_exec_time is killed with its children and fails as timed out",
          "[integration][timeout]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", R"(
[workflow]
name = "slow"
[tasks.slow]
max_exec_time = "1s"
shell = "sleep 30 & echo $! > child.pid; wait"
)");
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  const auto took = std::chrono::steady_clock::now() - t0;
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 1);
  CHECK(took < std::chrono::seconds(10));
  auto run = get_json(run_id_of(r), dir.path());
  CHECK(task_named(run, "slow")["reason"] == "timed out after 1.0s");
  // The grandchild `sleep 30` died with its process group.
  const int child = std::stoi(read_file(dir / "child.pid"));
  CHECK(eventually([&] { return ::kill(child, 0) != 0; }, std::chrono::seconds(5)));
}

TEST_CASE("a task that cannot get a slot within max_wait_time fails with no slot",
          "[integration][timeout]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", R"(
[workflow]
name = "wait"
[tasks.hog]
shell = "sleep 2"
[tasks.impatient]
max_wait_time = "500ms"
shell = "true"
)");
  auto r = run_sluice({"run", "--cpus", "1", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 1);
  auto run = get_json(run_id_of(r), dir.path());
  CHECK(task_named(run, "hog")["state"] == "succeeded");
  auto impatient = task_named(run, "impatient");
  CHECK(impatient["state"] == "failed");
  CHECK(impatient["reason"].get<std::string>().rfind("no slot", 0) == 0);
}

TEST_CASE("attempts get their identity in the environment and their own directory",
          "[integration][env]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", R"(
[workflow]
name = "env"
[tasks.show]
env = { GREETING = "hello" }
shell = "echo $SLUICE_RUN_ID $SLUICE_TASK $SLUICE_ATTEMPT $GREETING; pwd; echo $SLUICE_ATTEMPT_DIR; test -d $SLUICE_ATTEMPT_DIR"
)");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto id = run_id_of(r);
  auto logs = run_sluice({"logs", id, "show"}, dir.path());
  CHECK(logs.out.find(id + " show 1 hello") != std::string::npos);
  CHECK(logs.out.find(fs::canonical(dir.path()).string() + "\n") != std::string::npos);
  CHECK(logs.out.find("/runs/" + id + "/") != std::string::npos);
}

// The coordinator prepares the next link of a chain while the current one runs; a link
// that never runs must not keep that directory.
TEST_CASE("a chain's next attempt directory is ready ahead, and removed when it never runs",
          "[integration][env]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", R"(
[workflow]
name = "chain"
[tasks.a]
shell = "sleep 0.3"
[tasks.b]
after = ["a"]
shell = "echo b ran"
[tasks.c]
after = ["b"]
shell = "sleep 0.3; exit 3"
[tasks.d]
after = ["c"]
shell = "echo d ran"
[tasks.e]
after = ["d"]
shell = "echo e ran"
)");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 1);
  auto id = run_id_of(r);
  auto run = get_json(id, dir.path());
  CHECK(task_named(run, "b")["state"] == "succeeded");
  CHECK(task_named(run, "c")["state"] == "failed");
  CHECK(task_named(run, "d")["state"] == "skipped");
  const fs::path tasks = dir / ".sluice" / "runs" / id / "tasks";
  // b printed and c failed, but neither left a file: their logs are in the run's spools,
  // and no directory of theirs is left.
  CHECK_FALSE(fs::exists(tasks / "b"));
  CHECK_FALSE(fs::exists(tasks / "c"));
  CHECK_FALSE(fs::exists(tasks / "d"));  // prepared while c ran, then discarded
  CHECK_FALSE(fs::exists(tasks / "e"));
  auto logs = run_sluice({"logs", id, "b"}, dir.path());
  CHECK(logs.out == "b ran\n");
}

TEST_CASE("the same definition keeps its revision and a changed one gets the next",
          "[integration][store]") {
  ScratchDir dir;
  const std::string base =
      "[workflow]\nname = \"rev\"\nproject = \"p\"\n[tasks.a]\nshell = \"true\"\n";
  write_file(dir / "wf.toml", base);
  auto r1 = run_sluice({"run", "wf.toml"}, dir.path());
  write_file(dir / "wf.toml", "# a comment changes nothing\n" + base);
  auto r2 = run_sluice({"run", "wf.toml"}, dir.path());
  write_file(dir / "wf.toml", base + "retries = 2\n");
  auto r3 = run_sluice({"run", "wf.toml"}, dir.path());
  REQUIRE(r1.exit_code == 0);
  REQUIRE(r3.exit_code == 0);
  CHECK(get_json(run_id_of(r1), dir.path())["workflow"] == "p:rev:1");
  CHECK(get_json(run_id_of(r2), dir.path())["workflow"] == "p:rev:1");
  CHECK(get_json(run_id_of(r3), dir.path())["workflow"] == "p:rev:2");
}

TEST_CASE("runs are found by a unique prefix, removed one by one or all at once",
          "[integration][store]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", "[workflow]\nname = \"x\"\n[tasks.a]\nshell = \"true\"\n");
  auto id1 = run_id_of(run_sluice({"run", "wf.toml"}, dir.path()));
  auto id2 = run_id_of(run_sluice({"run", "wf.toml"}, dir.path()));
  CHECK(run_sluice({"get", id1.substr(0, 24)}, dir.path()).exit_code == 0);
  auto ambiguous = run_sluice({"get", "0"}, dir.path());
  CHECK(ambiguous.exit_code == 2);
  CHECK(ambiguous.err.find("ambiguous") != std::string::npos);
  auto missing = run_sluice({"get", "zzzz"}, dir.path());
  CHECK(missing.exit_code == 2);

  REQUIRE(run_sluice({"remove", id1}, dir.path()).exit_code == 0);
  CHECK_FALSE(fs::exists(dir / (".sluice/runs/" + id1)));
  CHECK(run_sluice({"get", id1}, dir.path()).exit_code == 2);
  CHECK(run_sluice({"get", id2}, dir.path()).exit_code == 0);
  auto all = run_sluice({"removeall"}, dir.path());
  CHECK(all.out.find("removed 1 runs") != std::string::npos);
  CHECK(json::parse(run_sluice({"ps", "--all", "--json"}, dir.path()).out).empty());
}

TEST_CASE("the home directory is chosen with --home", "[integration][store]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", "[workflow]\nname = \"x\"\n[tasks.a]\nshell = \"true\"\n");
  REQUIRE(run_sluice({"run", "--home", (dir / "elsewhere").string(), "wf.toml"}, dir.path())
              .exit_code == 0);
  CHECK(fs::exists(dir / "elsewhere/store.db"));
  CHECK_FALSE(fs::exists(dir / ".sluice"));
  auto listing = run_sluice({"pss", "--home", (dir / "elsewhere").string(), "--json"}, dir.path());
  CHECK(json::parse(listing.out).size() == 1);
}
