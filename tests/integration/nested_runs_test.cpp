// Nested runs are found from the outer run (issue 28, item 8): a sub-workflow task's
// inner run lives in a home inside its attempt; `get OUTER --tree` and the report list
// it with its state, and its id resolves from the outer home.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "support/run_queries.hpp"

using nlohmann::json;
using namespace sluice::testing;

TEST_CASE("a sub-workflow's run is listed by get --tree and resolves from the outer home",
          "[integration][nested]") {
  ScratchDir dir;
  write_file(dir / "inner.toml",
             "[workflow]\nname = \"inner\"\n[tasks.a]\nshell = \"sluice put x 7\"\n");
  write_file(dir / "outer.toml", R"(
[workflow]
name = "outer"
[tasks.sweep]
workflow = "inner.toml"
)");
  auto r = run_sluice({"run", "-q", "outer.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const std::string outer = run_id_of(r);

  auto tree = run_sluice({"get", outer, "--tree", "--json"}, dir.path());
  INFO(tree.out << tree.err);
  REQUIRE(tree.exit_code == 0);
  const json nested = json::parse(tree.out)["nested_runs"];
  REQUIRE(nested.size() == 1);  // was: no such option
  CHECK(nested[0]["task"] == "sweep");
  CHECK(nested[0]["state"] == "succeeded");
  CHECK(nested[0]["workflow"] == "default:inner:1");
  const std::string inner = nested[0]["id"];

  auto text = run_sluice({"get", outer, "--tree"}, dir.path());
  CHECK(text.out.find("sub-workflow runs") != std::string::npos);
  CHECK(text.out.find(inner) != std::string::npos);

  // The inner id, with the outer home: was "no run matches".
  auto get = run_sluice({"get", inner}, dir.path());
  INFO(get.out << get.err);
  CHECK(get.exit_code == 0);
  CHECK(get.out.find("inner") != std::string::npos);
  CHECK(get.err.find("sub-workflow run (task 'sweep' of run " + outer) != std::string::npos);
  auto results = run_sluice({"results", inner, "--json"}, dir.path());
  CHECK(results.exit_code == 0);
  CHECK(json::parse(results.out)["results"]["a"]["x"] == 7);

  auto report = run_sluice({"report", outer, "--json", "-o", "-"}, dir.path());
  REQUIRE(report.exit_code == 0);
  CHECK(json::parse(report.out)["nested_runs"][0]["id"] == inner);
}
