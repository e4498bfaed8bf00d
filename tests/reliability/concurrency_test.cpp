// Many coordinators and readers against one Sluice home at once: SQLite's WAL and
// busy_timeout must serialize them without "database is locked" and without a lost
// update.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "support/reliability.hpp"
#include "support/run_queries.hpp"

using nlohmann::json;
using namespace sluice::testing;
namespace fs = std::filesystem;

TEST_CASE("8 runs at once against one home while another process keeps reading",
          "[reliability][concurrency]") {
  constexpr int kRuns = 8;
  constexpr int kWidth = 12;
  ScratchDir dir;
  // Run r sums r * i over i = 1..kWidth: r * 78.
  for (int r = 0; r < kRuns; ++r) {
    std::string wf = "[workflow]\nname = \"conc" + std::to_string(r) + "\"\n";
    wf += "[tasks.part]\nmatrix = { i = [";
    for (int i = 1; i <= kWidth; ++i) wf += (i > 1 ? ", " : "") + std::to_string(i);
    wf += "] }\nshell = \"sluice put v $(( {i} * " + std::to_string(r) + " ))\"\n";
    wf += "[tasks.sum]\nafter = [\"part\"]\n"
          "shell = \"sluice put total $(sluice inputs v | awk '{s += $1} END {print s}')\"\n";
    write_file(dir / ("wf" + std::to_string(r) + ".toml"), wf);
  }
  std::vector<pid_t> pids;
  for (int r = 0; r < kRuns; ++r)
    pids.push_back(spawn_sluice({"run", "-q", "--cpus", "2", "wf" + std::to_string(r) + ".toml"},
                                dir.path(), dir / ("out" + std::to_string(r)),
                                dir / ("err" + std::to_string(r))));

  std::atomic<bool> stop{false};
  std::atomic<int> reads{0};
  std::vector<std::string> reader_errors;
  std::thread reader([&] {
    while (!stop.load()) {
      auto ps = run_sluice({"ps", "--all", "--json"}, dir.path());
      // Before the first coordinator created the store, ps says there is none (exit 2).
      if (ps.exit_code != 0 && ps.err.find("no Sluice store") == std::string::npos)
        reader_errors.push_back("ps: " + ps.err);
      if (ps.exit_code != 0) continue;
      for (const auto& r : json::parse(ps.out)) {
        const std::string id = r["id"];
        auto get = run_sluice({"get", id, "--json"}, dir.path());
        if (get.exit_code != 0) reader_errors.push_back("get: " + get.err);
        auto res = run_sluice({"results", id, "--json"}, dir.path());
        // Exit 1 with a message while the run is unfinished is the contract.
        if (res.exit_code != 0 && res.err.find(" is still ") == std::string::npos)
          reader_errors.push_back("results: " + res.err);
        reads += 3;
      }
    }
  });

  std::vector<int> codes;
  for (pid_t p : pids) codes.push_back(wait_exit(p));
  stop = true;
  reader.join();

  for (int r = 0; r < kRuns; ++r) {
    INFO("run " << r << ": " << read_file(dir / ("out" + std::to_string(r)))
                << read_file(dir / ("err" + std::to_string(r))));
    CHECK(codes[r] == 0);
    CHECK(read_file(dir / ("err" + std::to_string(r))).find("locked") == std::string::npos);
    const std::string id = read_file(dir / ("out" + std::to_string(r))).substr(4, 26);
    auto run = get_json(id, dir.path());
    CHECK(run["state"] == "succeeded");
    CHECK(run["task_list"].size() == kWidth + 1);
    for (const auto& t : run["task_list"]) CHECK(t["state"] == "succeeded");
    CHECK(results_json(id, dir.path())["results"]["sum"]["total"] == r * 78);
  }
  for (const auto& e : reader_errors) {
    INFO(e);
    CHECK(e.find("locked") == std::string::npos);
  }
  CHECK(reader_errors.empty());
  CHECK(reads > 0);
  auto all = json::parse(run_sluice({"pss", "--json"}, dir.path()).out);
  CHECK(all.size() == kRuns);
  CHECK(sqlite_integrity(dir / ".sluice/store.db") == "ok");
}
