// Saved configurations through the CLI: save, list, show, remove, and what a run takes
// from one (the backend's cpus, gpus and executors included).
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>

#include "support/run_queries.hpp"

using namespace sluice::testing;

TEST_CASE("a saved configuration sets the backend's gpus and cpus and can be removed",
          "[integration][config]") {
  ScratchDir dir;
  auto saved =
      run_sluice({"config", "save", "fake4", "--backend", "local", "gpus=4", "cpus=3"}, dir.path());
  INFO(saved.out << saved.err);
  REQUIRE(saved.exit_code == 0);
  CHECK(run_sluice({"config", "list"}, dir.path()).out.find("fake4") != std::string::npos);
  CHECK(run_sluice({"config", "show", "fake4"}, dir.path()).out.find("gpus") != std::string::npos);

  write_file(dir / "wf.toml",
             "[workflow]\nname = \"g\"\n[tasks.t]\ngpus = 4\n"
             "shell = \"sluice put devices \\\"$CUDA_VISIBLE_DEVICES\\\"\"\n");
  // Without the configuration this machine offers no GPU: rejected before running.
  CHECK(run_sluice({"run", "-q", "wf.toml", "--gpus", "0"}, dir.path()).exit_code == 2);
  auto r = run_sluice({"run", "-q", "wf.toml", "--config", "fake4"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("3 cpus, 4 gpus") != std::string::npos);
  auto results = results_json(run_id_of(r), dir.path());
  CHECK(results["results"]["t"]["devices"] == "0,1,2,3");

  auto removed = run_sluice({"config", "remove", "fake4"}, dir.path());
  CHECK(removed.exit_code == 0);
  CHECK(run_sluice({"config", "list"}, dir.path()).out.find("fake4") == std::string::npos);
  auto gone = run_sluice({"run", "-q", "wf.toml", "--config", "fake4"}, dir.path());
  CHECK(gone.exit_code == 2);
  CHECK(gone.err.find("fake4") != std::string::npos);
  CHECK(run_sluice({"config", "remove", "fake4"}, dir.path()).exit_code == 2);
}

TEST_CASE("config list and show take --json, and list the built-in configurations",
          "[integration][config]") {
  ScratchDir dir;
  REQUIRE(
      run_sluice({"config", "save", "two", "--backend", "local", "cpus=2"}, dir.path()).exit_code ==
      0);
  auto table = run_sluice({"config", "list"}, dir.path());
  INFO(table.out << table.err);
  REQUIRE(table.exit_code == 0);
  for (const std::string line : {"inproc", "local", "two"})
    CHECK(table.out.find(line) != std::string::npos);
  CHECK(table.out.find("built-in") != std::string::npos);

  auto list = run_sluice({"config", "list", "--json"}, dir.path());
  INFO(list.out << list.err);
  REQUIRE(list.exit_code == 0);
  const auto all = nlohmann::json::parse(list.out);
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& c : all) by_name[c["name"]] = c;
  REQUIRE(by_name.count("inproc") == 1);
  REQUIRE(by_name.count("local") == 1);
  REQUIRE(by_name.count("two") == 1);
  CHECK(by_name["inproc"]["builtin"] == true);
  CHECK(by_name["local"]["source"] == "built-in");
  CHECK(by_name["two"]["builtin"] == false);
  CHECK(by_name["two"]["options"]["cpus"] == "2");
  CHECK(by_name["two"]["usable"] == true);

  auto show = run_sluice({"config", "show", "two", "--json"}, dir.path());
  INFO(show.out << show.err);
  REQUIRE(show.exit_code == 0);
  const auto one = nlohmann::json::parse(show.out);
  CHECK(one["backend"] == "local");
  CHECK(one["options"]["cpus"] == "2");
  bool documents_cpus = false;
  for (const auto& k : one["backend_options"]) documents_cpus |= k["key"] == "cpus";
  CHECK(documents_cpus);
  auto builtin = run_sluice({"config", "show", "inproc", "--json"}, dir.path());
  REQUIRE(builtin.exit_code == 0);
  CHECK(nlohmann::json::parse(builtin.out)["builtin"] == true);
  CHECK(run_sluice({"config", "show", "nosuch", "--json"}, dir.path()).exit_code == 2);
}

TEST_CASE("unknown option keys are refused with the valid ones, wherever they are given",
          "[integration][config]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", "[workflow]\nname = \"o\"\n[tasks.t]\ncommand = [\"true\"]\n");
  auto refused = [&](const std::vector<std::string>& args) {
    auto r = run_sluice(args, dir.path());
    INFO(args[0] << "\n" << r.out << r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("unknown option 'bogus'") != std::string::npos);
    CHECK(r.err.find("kill_grace_ms") != std::string::npos);  // a valid key of local
  };
  refused({"config", "save", "bad", "--backend", "local", "bogus=1"});
  CHECK_FALSE(std::filesystem::exists(dir / ".sluice" / "configs" / "bad.toml"));
  refused({"run", "-q", "-O", "bogus=1", "wf.toml"});
  std::filesystem::create_directories(dir / ".sluice" / "configs");
  write_file(dir / ".sluice" / "configs" / "typo.toml", "backend = \"local\"\nbogus = \"1\"\n");
  refused({"run", "-q", "--config", "typo", "wf.toml"});
  // Nothing ran.
  CHECK(nlohmann::json::parse(run_sluice({"ps", "-a", "--json"}, dir.path()).out).empty());
  // `config list` says which saved configuration a run could not use.
  auto list = run_sluice({"config", "list", "--json"}, dir.path());
  for (const auto& c : nlohmann::json::parse(list.out))
    if (c["name"] == "typo") CHECK(c["usable"] == false);
}

TEST_CASE("run --config inproc runs a workflow file's commands as local processes",
          "[integration][config]") {
  ScratchDir dir;
  write_file(dir / "wf.toml",
             "[workflow]\nname = \"i\"\n[tasks.t]\nshell = \"sluice put answer 42\"\n");
  for (const std::vector<std::string>& how :
       {std::vector<std::string>{"--config", "inproc"}, {"--backend", "inproc"}}) {
    std::vector<std::string> args{"run", "-q", "wf.toml"};
    args.insert(args.end(), how.begin(), how.end());
    auto r = run_sluice(args, dir.path());
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK(r.err.find("backend local") != std::string::npos);
    const std::string id = run_id_of(r);
    CHECK(results_json(id, dir.path())["results"]["t"]["answer"] == 42);
    CHECK(get_json(id, dir.path())["backend"] == "local");
  }
  // inproc's own key is checked, and a workflow file runs with it too.
  auto keyed = run_sluice(
      {"run", "-q", "wf.toml", "--config", "inproc", "-O", "queue_per_thread=4"}, dir.path());
  INFO(keyed.out << keyed.err);
  CHECK(keyed.exit_code == 0);
  CHECK(run_sluice({"run", "-q", "wf.toml", "--config", "inproc", "-O", "queue_per_thread=0"},
                   dir.path())
            .exit_code == 2);
}
