// Saved configurations through the CLI: save, list, show, remove, and what a run takes
// from one (the backend's cpus, gpus and executors included).
#include <catch2/catch.hpp>

#include "support/run_queries.hpp"

using namespace sluice::testing;

TEST_CASE("a saved configuration sets the backend's gpus and cpus and can be removed",
          "[integration][config]") {
  ScratchDir dir;
  auto saved = run_sluice({"config", "save", "fake4", "--backend", "local", "gpus=4", "cpus=3"},
                          dir.path());
  INFO(saved.out << saved.err);
  REQUIRE(saved.exit_code == 0);
  CHECK(run_sluice({"config", "list"}, dir.path()).out.find("fake4") != std::string::npos);
  CHECK(run_sluice({"config", "show", "fake4"}, dir.path()).out.find("gpus") !=
        std::string::npos);

  write_file(dir / "wf.toml", "[workflow]\nname = \"g\"\n[tasks.t]\ngpus = 4\n"
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
