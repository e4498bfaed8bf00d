// The cache follows removals (issue 28, item 7): removing a run removes its cache
// entries; `cache list` says which entries cannot serve a run, `cache prune --unusable`
// forgets them.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "support/run_queries.hpp"

using nlohmann::json;
using namespace sluice::testing;
namespace fs = std::filesystem;

namespace {

constexpr const char* kFlow = "[workflow]\nname = \"c\"\n[tasks.a]\nshell = \"echo a\"\n";

json cache_list(const fs::path& cwd) {
  auto r = run_sluice({"cache", "list", "--json"}, cwd);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  return json::parse(r.out);
}

}  // namespace

TEST_CASE("removeall takes the runs' cache entries with it", "[integration][cache]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", kFlow);
  REQUIRE(run_sluice({"run", "-q", "wf.toml"}, dir.path()).exit_code == 0);
  REQUIRE(cache_list(dir.path()).size() == 1);
  REQUIRE(run_sluice({"removeall"}, dir.path()).exit_code == 0);
  CHECK(cache_list(dir.path()).empty());  // was: the entry of the deleted run
  // The next run says truthfully that nothing is cached, and runs the task.
  auto dry = run_sluice({"run", "--dry-run", "wf.toml"}, dir.path());
  CHECK(dry.out.find("never ran successfully here") != std::string::npos);
}

TEST_CASE("cache list marks entries whose attempt is gone, prune --unusable forgets them",
          "[integration][cache]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", kFlow);
  auto first = run_sluice({"run", "-q", "wf.toml"}, dir.path());
  REQUIRE(first.exit_code == 0);
  write_file(dir / "other.toml", "[workflow]\nname = \"d\"\n[tasks.b]\nshell = \"echo b\"\n");
  REQUIRE(run_sluice({"run", "-q", "other.toml"}, dir.path()).exit_code == 0);
  // The run's files vanish behind the store's back (a cleaned scratch disk).
  fs::remove_all(dir / ".sluice" / "runs" / run_id_of(first));
  json entries = cache_list(dir.path());
  REQUIRE(entries.size() == 2);
  std::size_t usable = 0;
  for (const auto& e : entries) {
    usable += e["usable"].get<bool>();
    if (e["workflow"] == "c")
      CHECK(e["unusable_because"].get<std::string>().find("attempt directory is gone") !=
            std::string::npos);
  }
  CHECK(usable == 1);
  auto table = run_sluice({"cache", "list"}, dir.path());
  CHECK(table.out.find("1 entry is unusable") != std::string::npos);
  auto pruned = run_sluice({"cache", "prune", "--unusable"}, dir.path());
  INFO(pruned.out << pruned.err);
  CHECK(pruned.out.find("1 unusable cache entry removed") != std::string::npos);
  entries = cache_list(dir.path());
  REQUIRE(entries.size() == 1);
  CHECK(entries[0]["workflow"] == "d");
}
