// Messages that tell the truth (issue 28, item 6): validation that checks only the
// backend it is told of, GPUs counted in English, and a dry run that names the matrix
// parameter that changed.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "support/run_queries.hpp"

using nlohmann::json;
using namespace sluice::testing;

TEST_CASE("validate without a backend checks the file, not this machine's capacity",
          "[integration][messages]") {
  ScratchDir dir;
  // Written for a cluster: its tasks need GPUs this machine may not have.
  const std::string file = kExamples + "slurm/cross_platform.toml";
  auto v = run_sluice({"validate", file}, dir.path());
  INFO(v.out << v.err);
  CHECK(v.exit_code == 0);  // was 2: "needs 1 gpus but the backend offers 0"
  CHECK(v.out.find("capacity not checked: no backend given") != std::string::npos);
  // Told of a backend, it checks against it and says which.
  auto told = run_sluice({"validate", file, "--gpus", "0"}, dir.path());
  INFO(told.out << told.err);
  CHECK(told.exit_code == 2);
  CHECK(told.err.find("needs 1 GPU but the backend offers 0") != std::string::npos);
  auto enough = run_sluice({"validate", file, "--gpus", "8", "--cpus", "64"}, dir.path());
  INFO(enough.out << enough.err);
  CHECK(enough.exit_code == 0);
  CHECK(enough.out.find("checked against backend local: 64 cpus, 8 GPUs") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / ".sluice"));
}

TEST_CASE("GPU counts read as English", "[integration][messages]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", "[workflow]\nname = \"g\"\n[tasks.a]\ngpus = 1\nshell = \"true\"\n");
  auto v = run_sluice({"validate", "wf.toml", "--gpus", "0"}, dir.path());
  CHECK(v.err.find("task 'a' needs 1 GPU but the backend offers 0") != std::string::npos);
  CHECK(v.err.find("gpus but") == std::string::npos);
}

TEST_CASE("dry run names the matrix parameter whose value changed", "[integration][messages]") {
  ScratchDir dir;
  auto flow = [&](const std::string& lr) {
    write_file(dir / "wf.toml", "[workflow]\nname = \"m\"\n[tasks.train]\nmatrix = { lr = [0.1, " +
                                    lr + "] }\nshell = \"echo lr={lr}\"\n");
  };
  flow("0.01");
  REQUIRE(run_sluice({"run", "-q", "wf.toml"}, dir.path()).exit_code == 0);
  flow("0.02");
  auto dry = run_sluice({"run", "--dry-run", "--json", "wf.toml"}, dir.path());
  INFO(dry.out << dry.err);
  REQUIRE(dry.exit_code == 0);
  // Kept in a variable: a range-for over a member of a temporary reads freed memory.
  const json report = json::parse(dry.out);
  for (const auto& t : report["tasks"]) {
    INFO(t.dump());
    if (t["action"] == "cached") continue;
    const std::string why = t["why"];
    CHECK(why.find("matrix value lr = 0.02 (was 0.01)") != std::string::npos);
    CHECK(why.find("version or name") == std::string::npos);  // was "version or name, command"
    CHECK(why.find("command") == std::string::npos);
  }
}
