// Workflow ids `project:workflow:revision` wherever a run or a workflow is asked for:
// completed from the default project, the latest run when a run is wanted, and an error
// naming what exists when a project, name or revision is wrong (never an empty table).
#include <catch2/catch.hpp>

#include "support/run_queries.hpp"

using namespace sluice::testing;

namespace {

void write_workflow(const ScratchDir& dir, const std::string& file, const std::string& project,
                    const std::string& name, const std::string& word) {
  write_file(dir / file, "[workflow]\nname = \"" + name + "\"\nproject = \"" + project +
                             "\"\n[tasks.say]\nshell = \"echo " + word + "; sluice put word " +
                             word + "\"\n");
}

std::string run_ok(const ScratchDir& dir, const std::string& file) {
  auto r = run_sluice({"run", "-q", file}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  return run_id_of(r);
}

// `env NAME=VALUE sluice ARGS…`: the same environment plus one variable.
CliResult run_with_env(const std::string& assignment, std::vector<std::string> args,
                       const ScratchDir& dir) {
  std::vector<std::string> argv{"/usr/bin/env", assignment, SLUICE_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, dir.path());
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("workflow ids complete from the default project and wrong ones are errors",
          "[integration][ids]") {
  ScratchDir dir;
  //   p1:ver:1  one run (r1)     p1:ver:2  two runs (r2, then r3)
  write_workflow(dir, "ver.toml", "p1", "ver", "one");
  const std::string r1 = run_ok(dir, "ver.toml");
  write_workflow(dir, "ver.toml", "p1", "ver", "two");
  const std::string r2 = run_ok(dir, "ver.toml");
  const std::string r3 = run_ok(dir, "ver.toml");

  SECTION("sluice workflows ID lists that id's revisions") {
    for (const std::string id : {"p1:ver:2", "ver:2"}) {
      auto r = run_sluice({"workflows", id}, dir.path());
      INFO(id << "\n" << r.out << r.err);
      CHECK(r.exit_code == 0);
      CHECK(has(r.out, "p1:ver:2"));
      CHECK_FALSE(has(r.out, "p1:ver:1"));
    }
    for (const std::string id : {"ver", "p1:ver"}) {
      auto r = run_sluice({"workflows", id}, dir.path());
      INFO(id << "\n" << r.out << r.err);
      CHECK(r.exit_code == 0);
      CHECK((has(r.out, "p1:ver:1") && has(r.out, "p1:ver:2")));
    }
  }

  SECTION("a wrong project, name or revision exits 2 naming what exists") {
    struct Case {
      std::string id, says;
    };
    for (const Case& c :
         {Case{"wrong:ver", "projects: p1"}, Case{"nosuch", "p1:ver"},
          Case{"p1:nosuch", "its workflows: ver"}, Case{"p1:ver:9", "revisions: 1, 2"},
          Case{"ver:9", "revisions: 1, 2"}, Case{"a::b", "not a workflow id"}}) {
      for (const std::vector<std::string>& args : {std::vector<std::string>{"workflows", c.id},
                                                   {"ps", "-a", "--workflow", c.id},
                                                   {"get", c.id},
                                                   {"results", c.id}}) {
        auto r = run_sluice(args, dir.path());
        INFO(args[0] << " " << c.id << "\n" << r.out << r.err);
        CHECK(r.exit_code == 2);
        CHECK(has(r.err, c.says));
        CHECK_FALSE(has(r.out, "WORKFLOW"));
      }
    }
  }

  SECTION("a workflow id where a run is wanted means its latest run, said on stderr") {
    auto results = run_sluice({"results", "p1:ver:1", "--json"}, dir.path());
    INFO(results.out << results.err);
    REQUIRE(results.exit_code == 0);
    CHECK(nlohmann::json::parse(results.out)["run"] == r1);
    CHECK(has(results.err, "latest run " + r1));

    for (const std::string id : {"ver", "p1:ver", "ver:2", "p1:ver:2"}) {
      auto get = run_sluice({"get", id, "--json"}, dir.path());
      INFO(id << "\n" << get.out << get.err);
      REQUIRE(get.exit_code == 0);
      CHECK(nlohmann::json::parse(get.out)["id"] == r3);
      CHECK(has(get.err, "latest run " + r3));
    }
    auto logs = run_sluice({"logs", "ver:1", "say"}, dir.path());
    CHECK(logs.exit_code == 0);
    CHECK(logs.out == "one\n");
    auto graph = run_sluice({"graph", "p1:ver"}, dir.path());
    CHECK(graph.exit_code == 0);
    CHECK(has(graph.out, r3));
    auto report = run_sluice({"report", "ver", "--json", "-o", "-"}, dir.path());
    CHECK(report.exit_code == 0);
    CHECK(has(report.out, r3));
    auto wait = run_sluice({"wait", "ver:1"}, dir.path());
    CHECK(wait.exit_code == 0);
    CHECK(has(wait.out, r1));
    auto artifacts = run_sluice({"artifacts", "ver", "say"}, dir.path());
    CHECK(artifacts.exit_code == 0);
    CHECK(has(artifacts.out, "word"));
    // A run id (or its prefix) is still a run id.
    CHECK(get_json(r2.substr(0, 20), dir.path())["id"] == r2);
    // Deleting takes a run id: "the latest run" is not a guess worth a deletion.
    auto remove = run_sluice({"remove", "ver"}, dir.path());
    CHECK(remove.exit_code == 2);
    CHECK(has(remove.err, "not a run"));
    CHECK(get_json(r3, dir.path())["id"] == r3);
  }

  SECTION("ps, psw, pss and psf --workflow list only that workflow's runs") {
    auto count = [&](std::vector<std::string> args) {
      args.push_back("--json");
      auto r = run_sluice(args, dir.path());
      INFO(r.out << r.err);
      REQUIRE(r.exit_code == 0);
      return nlohmann::json::parse(r.out).size();
    };
    CHECK(count({"ps", "-a", "--workflow", "ver"}) == 3);
    CHECK(count({"ps", "-a", "--workflow", "ver:2"}) == 2);
    CHECK(count({"pss", "--workflow", "p1:ver:1"}) == 1);
    CHECK(count({"psf", "--workflow", "p1:ver"}) == 0);
    CHECK(count({"psw", "--workflow", "p1:ver"}) == 0);
    CHECK(count({"ps", "--workflow", "p1:ver"}) == 0);
  }

  SECTION("a name in two projects needs its project: given, or from SLUICE_PROJECT") {
    write_workflow(dir, "other.toml", "p2", "ver", "three");
    const std::string r4 = run_ok(dir, "other.toml");
    auto ambiguous = run_sluice({"get", "ver"}, dir.path());
    CHECK(ambiguous.exit_code == 2);
    CHECK(has(ambiguous.err, "p1:ver, p2:ver"));
    CHECK(get_json("p1:ver", dir.path())["id"] == r3);
    CHECK(get_json("p2:ver", dir.path())["id"] == r4);

    auto in_p1 = run_with_env("SLUICE_PROJECT=p1", {"get", "ver", "--json"}, dir);
    INFO(in_p1.out << in_p1.err);
    REQUIRE(in_p1.exit_code == 0);
    CHECK(nlohmann::json::parse(in_p1.out)["id"] == r3);
    // The seeds' rule: a project other than the known one fails the identification.
    auto wrong = run_with_env("SLUICE_PROJECT=p1", {"get", "p2:ver"}, dir);
    CHECK(wrong.exit_code == 2);
    CHECK(has(wrong.err, "current project is 'p1'"));
  }
}

TEST_CASE("a workflow id in a home where nothing ran is an error, not an empty table",
          "[integration][ids]") {
  ScratchDir dir;
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"workflows", "nosuch"}, {"ps", "--workflow", "nosuch"}}) {
    auto r = run_sluice(args, dir.path());
    INFO(r.out << r.err);
    CHECK(r.exit_code == 2);
    CHECK(has(r.err, "nothing has run"));
  }
  CHECK(run_sluice({"workflows"}, dir.path()).exit_code == 0);
}
