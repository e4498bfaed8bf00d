// Who started each run: `ps` and `get` show "user@host" (the initiator), kept in the run
// record; a home made before the store kept it stays readable and is upgraded by its next
// writer.
#include <pwd.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <climits>
#include <cstdlib>

#include "sluice/engine/store.hpp"
#include "support/reliability.hpp"
#include "support/run_queries.hpp"

using namespace sluice::testing;

namespace {

std::string expected_initiator() {
  const passwd* pw = ::getpwuid(::geteuid());
  std::string user = pw ? pw->pw_name : std::to_string(::geteuid());
  char host[HOST_NAME_MAX + 1] = {};
  ::gethostname(host, sizeof host - 1);
  const char* submit_host = std::getenv("SLURM_SUBMIT_HOST");
  return user + "@" + (submit_host && *submit_host ? submit_host : host);
}

std::string run_ok(const ScratchDir& dir) {
  auto r = run_sluice({"run", "-q", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  return run_id_of(r);
}

nlohmann::json ps_json(const ScratchDir& dir) {
  auto r = run_sluice({"ps", "-a", "--json"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  return nlohmann::json::parse(r.out);
}

}  // namespace

TEST_CASE("ps and get show the user and host that started each run", "[integration][initiator]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", "[workflow]\nname = \"who\"\n[tasks.t]\ncommand = [\"true\"]\n");
  const std::string id = run_ok(dir);
  const std::string who = expected_initiator();

  auto ps = run_sluice({"ps", "-a"}, dir.path());
  INFO(ps.out << ps.err);
  CHECK(ps.out.find("INITIATOR") != std::string::npos);
  CHECK(ps.out.find(who) != std::string::npos);
  CHECK(ps_json(dir)[0]["initiator"] == who);

  auto get = run_sluice({"get", id}, dir.path());
  INFO(get.out << get.err);
  CHECK(get.out.find("initiator " + who) != std::string::npos);
  CHECK(get_json(id, dir.path())["initiator"] == who);
}

TEST_CASE("a home from before the initiator was kept is read, then upgraded by a writer",
          "[integration][initiator]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", "[workflow]\nname = \"who\"\n[tasks.t]\ncommand = [\"true\"]\n");
  const std::string old_id = run_ok(dir);
  // Schema 3 as an older sluice left it: no initiator column.
  const auto db = dir / ".sluice" / "store.db";
  REQUIRE(sqlite_query(db, "ALTER TABLE runs DROP COLUMN initiator; PRAGMA user_version = 3") ==
          "");

  // Readers take it as it is: the run is there, its initiator unknown.
  auto runs = ps_json(dir);
  REQUIRE(runs.size() == 1);
  CHECK(runs[0]["id"] == old_id);
  CHECK(runs[0]["initiator"] == "");
  CHECK(run_sluice({"get", old_id}, dir.path()).out.find("initiator -") != std::string::npos);
  CHECK(sqlite_query(db, "PRAGMA user_version") == "3");

  // The next run upgrades the store, and keeps its own initiator.
  const std::string new_id = run_ok(dir);
  CHECK(sqlite_query(db, "PRAGMA user_version") ==
        std::to_string(sluice::RunStore::schema_version()));  // the newest: 6, task_values
  CHECK(get_json(new_id, dir.path())["initiator"] == expected_initiator());
  CHECK(get_json(old_id, dir.path())["initiator"] == "");
}
