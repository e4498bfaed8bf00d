// `sluice submit`: the coordinator detaches, the run id comes back at once, and other
// processes follow the run by id (wait, get, logs, results) to the same results as a
// foreground run. Bad input is refused before detaching (bad_input_test.cpp).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/cli_runner.hpp"

using namespace sluice::testing;
namespace fs = std::filesystem;

namespace {

//   slow ──> double      slow sleeps, so the run outlives `submit` by seconds
constexpr const char* kWorkflow = R"toml([workflow]
name = "submitted"
project = "tests"

[tasks.slow]
shell = "sleep 3; echo slow done; sluice put value 21"

[tasks.double]
after = ["slow"]
shell = "sluice put result $(( $(sluice get slow value) * 2 ))"
)toml";

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

TEST_CASE("submit prints the run id at once and the detached run ends like a foreground one",
          "[integration][submit]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", kWorkflow);

  const auto t0 = std::chrono::steady_clock::now();
  auto sub = run_sluice({"submit", "wf.toml", "--cpus", "2"}, dir.path());
  const double submit_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO(sub.out << sub.err);
  REQUIRE(sub.exit_code == 0);
  const std::string id = trimmed(sub.out);
  REQUIRE(id.find('\n') == std::string::npos);
  CHECK(submit_s < 2.5);  // back long before the 3 s task is over

  // Queryable by id from another process right away, while it runs.
  auto get = run_sluice({"get", id, "--json"}, dir.path());
  INFO(get.err);
  REQUIRE(get.exit_code == 0);
  const std::string early = nlohmann::json::parse(get.out)["state"];
  CHECK((early == "submitted" || early == "running"));

  auto wait = run_sluice({"wait", id, "--timeout", "120"}, dir.path());
  INFO(wait.out << wait.err);
  CHECK(wait.exit_code == 0);
  CHECK(wait.out.find("succeeded") != std::string::npos);

  auto logs = run_sluice({"logs", id, "slow"}, dir.path());
  CHECK(logs.out.find("slow done") != std::string::npos);
  const std::string log = read_file(dir / ".sluice" / "runs" / id / "coordinator.log");
  CHECK(log.find("succeeded") != std::string::npos);

  auto fg = run_sluice({"run", "wf.toml", "--cpus", "2", "--no-cache", "-q"}, dir.path());
  REQUIRE(fg.exit_code == 0);
  const std::string fg_id = fg.out.substr(4, fg.out.find(' ', 4) - 4);
  auto detached = run_sluice({"results", id, "--json"}, dir.path());
  auto foreground = run_sluice({"results", fg_id, "--json"}, dir.path());
  REQUIRE(detached.exit_code == 0);
  REQUIRE(foreground.exit_code == 0);
  CHECK(nlohmann::json::parse(detached.out)["results"] ==
        nlohmann::json::parse(foreground.out)["results"]);
  CHECK(nlohmann::json::parse(detached.out)["results"]["double"]["result"] == 42);
}

TEST_CASE("wait reports a failed run with exit 1 and an unknown run with exit 2",
          "[integration][submit]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", "[workflow]\nname = \"f\"\n[tasks.a]\nshell = \"exit 3\"\n");
  auto sub = run_sluice({"submit", "wf.toml", "--cpus", "1"}, dir.path());
  REQUIRE(sub.exit_code == 0);
  auto wait = run_sluice({"wait", trimmed(sub.out), "--timeout", "120"}, dir.path());
  CHECK(wait.exit_code == 1);
  CHECK(wait.out.find("failed") != std::string::npos);
  CHECK(run_sluice({"wait", "no-such-run"}, dir.path()).exit_code == 2);
}
