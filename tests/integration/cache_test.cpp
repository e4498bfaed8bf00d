// Content-addressed caching through the real CLI: reruns reuse what did not change,
// rerun exactly what did (and its dependents), and never trust a damaged entry.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>

#include "support/run_queries.hpp"

using nlohmann::json;
using namespace sluice::testing;
namespace fs = std::filesystem;

namespace {

std::size_t lines_in(const fs::path& p) {
  auto text = read_file(p);
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

// Tasks that ran (not from the cache) in a run, by name.
std::set<std::string> executed(const json& run) {
  std::set<std::string> out;
  for (const auto& t : run["task_list"])
    if (t["cached_from"].is_null()) out.insert(t["name"]);
  return out;
}

std::string sweep_workflow(const std::string& values, const std::string& extra = "") {
  return R"~([workflow]
name = "sw"
[tasks.prep]
shell = "echo prep >> ran.log; sluice put base 10"
[tasks.sq]
after = ["prep"]
matrix = { x = [)~" +
         values + R"~(] }
command = ["sh", "-c", "echo sq$1 >> ran.log; sluice put y $(( $1 * $1 + $2 ))", "sq", "{x}", "{inputs.prep.base}"]
)~" + extra +
         R"~(
[tasks.total]
after = ["sq"]
shell = '''
echo total >> ran.log
t=0; for y in $(sluice inputs y); do t=$((t + y)); done
sluice put total $t
'''
)~";
}

json run_ok(const ScratchDir& dir, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"run", "-q", "wf.toml"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = run_sluice(args, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  return get_json(run_id_of(r), dir.path());
}

long long total_of(const ScratchDir& dir, const json& run) {
  return results_json(run["id"], dir.path())["results"]["total"]["total"];
}

}  // namespace

TEST_CASE("an unchanged workflow's second run executes no task and gives the same results",
          "[integration][cache]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", sweep_workflow("1, 2, 3"));
  auto first = run_ok(dir);
  CHECK(executed(first).size() == 5);
  const std::size_t ran = lines_in(dir / "ran.log");
  CHECK(ran == 5);
  auto second = run_ok(dir);
  CHECK(executed(second).empty());
  CHECK(lines_in(dir / "ran.log") == ran);
  CHECK(total_of(dir, second) == total_of(dir, first));
  CHECK(total_of(dir, second) == (1 + 10) + (4 + 10) + (9 + 10));
  auto table = run_sluice({"get", second["id"]}, dir.path());
  CHECK(table.out.find("cached") != std::string::npos);
  // Its values are packed (docs/artifacts.md): restored from the store, no file at all.
  const std::string a = first["id"], b = second["id"];
  CHECK_FALSE(fs::exists(dir / (".sluice/runs/" + a + "/tasks/total/1/output.h5")));
  CHECK_FALSE(fs::exists(dir / (".sluice/runs/" + b + "/tasks/total/1/output.h5")));
  // --no-cache runs everything.
  auto third = run_ok(dir, {"--no-cache"});
  CHECK(executed(third).size() == 5);
}

TEST_CASE("changing one matrix value reruns exactly that instance and what depends on it",
          "[integration][cache]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", sweep_workflow("1, 2, 3"));
  run_ok(dir);
  write_file(dir / "wf.toml", sweep_workflow("1, 5, 3"));
  auto dry = run_sluice({"run", "--dry-run", "--json", "wf.toml"}, dir.path());
  REQUIRE(dry.exit_code == 0);
  auto plan = json::parse(dry.out);
  std::set<std::string> would_run;
  for (const auto& t : plan["tasks"])
    if (t["action"] == "run") would_run.insert(t["name"]);
  CHECK(would_run == std::set<std::string>{"sq.1", "total"});
  auto second = run_ok(dir);
  CHECK(executed(second) == std::set<std::string>{"sq.1", "total"});
  CHECK(total_of(dir, second) == (1 + 10) + (25 + 10) + (9 + 10));
}

TEST_CASE("each part of the key reruns the task and its dependents and resources rerun nothing",
          "[integration][cache]") {
  ScratchDir dir;
  auto wf = [](const std::string& mid) {
    return "[workflow]\nname = \"k\"\n[tasks.a]\nshell = \"sluice put v 1\"\n"
           "[tasks.b]\nafter = [\"a\"]\n" +
           mid + "\n[tasks.c]\nafter = [\"b\"]\nshell = \"sluice put w $(sluice get b v)\"\n";
  };
  const std::string base = "shell = \"sluice put v $(( $(sluice get a v) + 1 ))\"";
  write_file(dir / "wf.toml", wf(base));
  run_ok(dir);
  struct Change {
    std::string mid;
    std::set<std::string> reruns;
    std::string why;  // in the dry run's reason for b
  };
  const std::vector<Change> changes = {
      {base + "\ncpus = 2\nretries = 3\nmax_exec_time = \"1h\"\nexecutor = \"cpu\"", {}, ""},
      {base + "\nversion = \"2\"", {"b"}, "version or name changed"},
      {base + "\nenv = { MODE = \"fast\" }", {"b"}, "env changed"},
      // Against the previous run, which also had the env: both differ.
      {"shell = \"sluice put v $(( $(sluice get a v) + 2 ))\"", {"b", "c"}, "command, env changed"},
  };
  for (const auto& ch : changes) {
    write_file(dir / "wf.toml", wf(ch.mid));
    auto dry = run_sluice({"run", "--dry-run", "--json", "wf.toml"}, dir.path());
    REQUIRE(dry.exit_code == 0);
    INFO(ch.mid << "\n" << dry.out);
    const json plan = json::parse(dry.out);
    for (const auto& t : plan["tasks"])
      if (t["name"] == "b" && !ch.why.empty())
        CHECK(t["why"].get<std::string>().find(ch.why) != std::string::npos);
    auto run = run_ok(dir);
    // c reruns only when b's values changed: same values keep it cached.
    CHECK(executed(run) == ch.reruns);
  }
}

TEST_CASE("a damaged cache entry is detected and the task runs again", "[integration][cache]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", sweep_workflow("1, 2"));
  auto first = run_ok(dir);
  // Corrupt the values the cache would reuse (packed in the store: docs/artifacts.md).
  const std::string sql =
      "UPDATE task_values SET bytes = X'00ff' WHERE task = (SELECT idx FROM tasks WHERE name = "
      "'sq.0')";
  const std::string cmd = "sqlite3 '" + (dir / ".sluice/store.db").string() + "' \"" + sql + "\"";
  REQUIRE(std::system(cmd.c_str()) == 0);
  auto r = run_sluice({"run", "-q", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("cache entry for task 'sq.0'") != std::string::npos);
  auto second = get_json(run_id_of(r), dir.path());
  CHECK(executed(second).count("sq.0") == 1);
  CHECK(executed(second).count("sq.1") == 0);
  CHECK(total_of(dir, second) == 11 + 14);
}

TEST_CASE("declared outputs are restored from the cache and a cache = false task always runs",
          "[integration][cache]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", R"~([workflow]
name = "outs"
[tasks.make_file]
shell = "echo made >> ran.log; mkdir -p out; echo payload > out/data.txt"
outputs = ["out/data.txt"]
[tasks.stamp]
after = ["make_file"]
cache = false
shell = "echo stamp >> ran.log; cat out/data.txt"
)~");
  run_ok(dir);
  fs::remove_all(dir / "out");
  auto second = run_ok(dir);
  CHECK(executed(second) == std::set<std::string>{"stamp"});
  CHECK(read_file(dir / "out/data.txt") == "payload\n");
  CHECK(read_file(dir / "ran.log") == "made\nstamp\nstamp\n");

  // A task that does not write its declared output fails with the reason.
  write_file(dir / "bad.toml",
             "[workflow]\nname = \"bad\"\n[tasks.t]\nshell = \"true\"\noutputs = [\"x.txt\"]\n");
  auto bad = run_sluice({"run", "-q", "bad.toml"}, dir.path());
  CHECK(bad.exit_code == 1);
  auto run = get_json(run_id_of(bad), dir.path());
  CHECK(task_named(run, "t")["reason"].get<std::string>().find("declared output 'x.txt'") !=
        std::string::npos);
}

TEST_CASE("two concurrent runs of one workflow share the cache without corrupting it",
          "[integration][cache]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", sweep_workflow("1, 2, 3, 4, 5, 6"));
  pid_t a = spawn_sluice({"run", "-q", "wf.toml"}, dir.path(), dir / "a.out", dir / "a.err");
  pid_t b = spawn_sluice({"run", "-q", "wf.toml"}, dir.path(), dir / "b.out", dir / "b.err");
  CHECK(wait_exit(a) == 0);
  CHECK(wait_exit(b) == 0);
  auto third = run_ok(dir);
  CHECK(executed(third).empty());
  CHECK(total_of(dir, third) == 6 * 10 + 1 + 4 + 9 + 16 + 25 + 36);
  auto list = run_sluice({"cache", "list", "--json"}, dir.path());
  REQUIRE(list.exit_code == 0);
  CHECK(json::parse(list.out).size() == 8);
  auto pruned = run_sluice({"cache", "prune"}, dir.path());
  CHECK(pruned.out.find("8 cache entries removed") != std::string::npos);
  CHECK(executed(run_ok(dir)).size() == 8);
}
