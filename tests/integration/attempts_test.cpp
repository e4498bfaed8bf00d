// Every attempt on record (issue 28, item 2) and the messages about a task that are true
// (item 6): `get RUN TASK`, `get --json`'s attempt_list, `artifacts --attempt`, the
// report's retried attempts, and `logs` of skipped and cached tasks.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "support/run_queries.hpp"

using nlohmann::json;
using namespace sluice::testing;

namespace {

// `slow` times out on its first attempt (after writing x = 1) and succeeds on its second;
// `bad` fails, so `never_runs` is skipped.
constexpr const char* kRetryFlow = R"(
[workflow]
name = "retry"
project = "p"
[tasks.slow]
retries = 1
max_exec_time = "500ms"
shell = 'sluice put x $SLUICE_ATTEMPT; echo "out $SLUICE_ATTEMPT"; if [ "$SLUICE_ATTEMPT" = 1 ]; then sleep 5; fi'
[tasks.bad]
shell = "exit 3"
[tasks.never_runs]
after = ["bad"]
shell = "true"
)";

}  // namespace

TEST_CASE("get RUN TASK lists every attempt with its reason", "[integration][attempts]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", kRetryFlow);
  auto r = run_sluice({"run", "-q", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 1);
  const std::string id = run_id_of(r);

  auto table = run_sluice({"get", id, "slow"}, dir.path());
  INFO(table.out << table.err);
  REQUIRE(table.exit_code == 0);  // was read as `get PARENT KEY`: "no input from ..."
  CHECK(table.out.find("timed out after 500ms") != std::string::npos);
  CHECK(table.out.find("SLURM JOB") != std::string::npos);

  auto one = run_sluice({"get", id, "slow", "--json"}, dir.path());
  REQUIRE(one.exit_code == 0);
  const json task = json::parse(one.out);
  REQUIRE(task["attempt_list"].size() == 2);
  CHECK(task["attempt_list"][0]["reason"] == "timed out after 500ms");
  CHECK(task["attempt_list"][0]["state"] == "failed");
  CHECK(task["attempt_list"][1]["exit_code"] == 0);

  const json run = get_json(id, dir.path());
  const json list = task_named(run, "slow")["attempt_list"];
  REQUIRE(list.size() == 2);
  CHECK(list[0]["reason"] == "timed out after 500ms");
  CHECK(list[0]["host"] != "");
  CHECK(task_named(run, "slow")["attempts"] == 2);  // the count stays

  auto first = run_sluice({"artifacts", id, "slow", "--attempt", "1", "--json"}, dir.path());
  INFO(first.out << first.err);
  REQUIRE(first.exit_code == 0);
  // Its values are packed (docs/artifacts.md): the failed attempt's are in its results file.
  CHECK(first.out.find("/slow/1/results") != std::string::npos);
  CHECK(run_sluice({"artifacts", id, "slow", "--attempt", "3"}, dir.path()).exit_code == 2);

  // The report's data and page carry the retried attempts and their reasons.
  auto report = run_sluice({"report", id, "--json", "-o", "-"}, dir.path());
  REQUIRE(report.exit_code == 0);
  const json data = json::parse(report.out);
  REQUIRE(data["attempts"].contains("reason"));
  bool timed_out = false;
  for (const auto& reason : data["attempts"]["reason"])
    timed_out |= reason == "timed out after 500ms";
  CHECK(timed_out);
  auto html = run_sluice({"report", id, "-o", "-"}, dir.path());
  CHECK(html.out.find("Retried tasks") != std::string::npos);
}

TEST_CASE("logs of a skipped task says it was skipped and why", "[integration][attempts]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", kRetryFlow);
  auto r = run_sluice({"run", "-q", "wf.toml"}, dir.path());
  const std::string id = run_id_of(r);
  auto logs = run_sluice({"logs", id, "never_runs"}, dir.path());
  CHECK(logs.exit_code == 2);
  CHECK(logs.err.find("was skipped: dependency 'bad' failed") != std::string::npos);
  CHECK(logs.err.find("not started") == std::string::npos);
}

TEST_CASE("logs of a cached task prints the source attempt's output, labelled",
          "[integration][attempts]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", R"(
[workflow]
name = "c"
[tasks.hello]
shell = "echo hello from the first run"
)");
  auto first = run_sluice({"run", "-q", "wf.toml"}, dir.path());
  REQUIRE(first.exit_code == 0);
  auto second = run_sluice({"run", "-q", "wf.toml"}, dir.path());
  REQUIRE(second.exit_code == 0);
  auto logs = run_sluice({"logs", run_id_of(second), "hello"}, dir.path());
  INFO(logs.out << logs.err);
  CHECK(logs.exit_code == 0);
  CHECK(logs.out == "hello from the first run\n");
  CHECK(logs.err.find("cached from run " + run_id_of(first)) != std::string::npos);
}

TEST_CASE("report --json without -o writes report-RUN.json, not .html", "[integration][attempts]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", "[workflow]\nname = \"r\"\n[tasks.a]\nshell = \"true\"\n");
  auto r = run_sluice({"run", "-q", "wf.toml"}, dir.path());
  const std::string id = run_id_of(r);
  auto rep = run_sluice({"report", id, "--json"}, dir.path());
  REQUIRE(rep.exit_code == 0);
  CHECK(std::filesystem::exists(dir / ("report-" + id + ".json")));
  CHECK(!std::filesystem::exists(dir / ("report-" + id + ".html")));
  CHECK(json::parse(read_file(dir / ("report-" + id + ".json")))["run"]["id"] == id);
}
