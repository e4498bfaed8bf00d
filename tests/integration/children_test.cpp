// Dynamic children: tasks added by running attempts through `sluice add-child`, checked
// through the real CLI: results, retries of the parent, crashes of the coordinator,
// bad requests and limits.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "support/run_queries.hpp"

using nlohmann::json;
using namespace sluice::testing;
namespace fs = std::filesystem;

namespace {

std::size_t lines_in(const fs::path& p) {
  auto text = read_file(p);
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

std::size_t count_tasks(const json& run, const std::string& prefix) {
  std::size_t n = 0;
  for (const auto& t : run["task_list"])
    if (t["name"].get<std::string>().rfind(prefix, 0) == 0) n++;
  return n;
}

json result_of(const json& results, const std::string& task, const std::string& key) {
  const auto& r = results["results"];
  if (!r.contains(task) || !r[task].contains(key))
    FAIL("no result " << task << " " << key << " in " << results.dump());
  return r[task][key];
}

// map adds `n` children (each puts y = i*i, optionally after sleeping) before reduce,
// which sums every y it receives. Each execution of map leaves a line in map.count.
std::string map_reduce(int n, const std::string& child_sleep, const std::string& map_extra = "") {
  return R"~([workflow]
name = "mr"
[tasks.map]
retries = 1
shell = '''
echo ran >> map.count
for i in $(seq 0 )~" + std::to_string(n - 1) + R"~(); do
  sluice add-child --name sq-$i --before reduce -- sh -c "sleep )~" + child_sleep + R"~(; sluice put y \$(( $i * $i ))"
done
)~" + map_extra + R"~(
'''
[tasks.reduce]
after = ["map"]
shell = '''
total=0
for y in $(sluice inputs y); do total=$((total + y)); done
sluice put total $total
sluice inputs > inputs.order
'''
)~";
}

}  // namespace

TEST_CASE("the seed's map-reduce: five gen_nums children and reduce returns 15",
          "[integration][children]") {
  ScratchDir dir;
  auto r = run_sluice({"run", kExamples + "mapreduce.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const std::string id = run_id_of(r);
  auto results = run_sluice({"results", id}, dir.path());
  CHECK(results.out.find("reduce  total  15") != std::string::npos);
  CHECK(result_of(results_json(id, dir.path()), "reduce", "total") == 15);

  auto run = get_json(id, dir.path());
  CHECK(run["task_list"].size() == 7);
  for (int i = 0; i < 5; ++i) {
    auto child = task_named(run, "gen_nums_" + std::to_string(i));
    CHECK(child["parent"] == "map");
    CHECK(child["state"] == "succeeded");
  }
  CHECK(task_named(run, "map")["parent"].is_null());
  auto table = run_sluice({"get", id}, dir.path());
  CHECK(table.out.find("PARENT") != std::string::npos);
}

TEST_CASE("children arrive in insertion order after the declared inputs",
          "[integration][children]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", R"~([workflow]
name = "order"
[tasks.first]
shell = "sluice put y 1000"
[tasks.map]
shell = '''
sluice put y 0
for i in 3 1 2; do sluice add-child --name c$i --before reduce -- sluice put y $i; done
'''
[tasks.reduce]
after = ["first", "map"]
shell = "sluice inputs y | tr '\\n' ' ' > order.txt"
)~");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(read_file(dir / "order.txt") == "1000 0 3 1 2 ");
}

TEST_CASE("a parent whose first attempt asked for children and failed leaves one set",
          "[integration][children]") {
  ScratchDir dir;
  // The first attempt requests its children, then fails; the retry requests them again.
  write_file(dir / "wf.toml",
             map_reduce(3, "0", "if [ ! -e failed-once ]; then touch failed-once; exit 1; fi"));
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const std::string id = run_id_of(r);
  auto run = get_json(id, dir.path());
  CHECK(task_named(run, "map")["attempts"] == 2);
  CHECK(count_tasks(run, "sq-") == 3);
  CHECK(run["task_list"].size() == 5);
  CHECK(result_of(results_json(id, dir.path()), "reduce", "total") == 0 + 1 + 4);
  CHECK(lines_in(dir / "map.count") == 2);
}

TEST_CASE("kill -9 after children were added then resume: the map does not run again",
          "[integration][children][crash]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", map_reduce(4, "0.5"));
  pid_t pid = spawn_sluice({"run", "wf.toml"}, dir.path(), dir / "out", dir / "err");
  const std::string id = wait_for_run_id(dir / "out");
  REQUIRE(eventually([&] {
    auto run = get_json(id, dir.path());
    return count_tasks(run, "sq-") == 4 && task_state(run, "map") == "succeeded";
  }));
  ::kill(pid, SIGKILL);
  wait_exit(pid);

  auto resumed = run_sluice({"resume", id}, dir.path());
  INFO(resumed.out << resumed.err);
  REQUIRE(resumed.exit_code == 0);
  auto run = get_json(id, dir.path());
  CHECK(run["state"] == "succeeded");
  CHECK(count_tasks(run, "sq-") == 4);
  CHECK(task_named(run, "sq-2")["parent"] == "map");
  CHECK(lines_in(dir / "map.count") == 1);
  CHECK(result_of(results_json(id, dir.path()), "reduce", "total") == 0 + 1 + 4 + 9);
}

TEST_CASE("children may add children and the depth limit stops runaway recursion",
          "[integration][children]") {
  ScratchDir dir;
  const std::string body = R"~(
[tasks.root]
shell = "sluice add-child --name mid --before sink -- sluice add-child --name leaf --before sink -- sluice put y 7"
[tasks.sink]
after = ["root"]
shell = "sluice put total $(sluice inputs y)"
)~";
  write_file(dir / "ok.toml", "[workflow]\nname = \"nest\"\n" + body);
  auto r = run_sluice({"run", "ok.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const std::string id = run_id_of(r);
  auto run = get_json(id, dir.path());
  CHECK(task_named(run, "leaf")["parent"] == "mid");
  CHECK(task_named(run, "mid")["parent"] == "root");
  CHECK(result_of(results_json(id, dir.path()), "sink", "total") == 7);

  write_file(dir / "deep.toml", "[workflow]\nname = \"deep\"\nmax_child_depth = 1\n" + body);
  auto deep = run_sluice({"run", "deep.toml"}, dir.path());
  CHECK(deep.exit_code == 1);
  auto failed = get_json(run_id_of(deep), dir.path());
  CHECK(task_state(failed, "mid") == "failed");
  CHECK(task_named(failed, "mid")["reason"].get<std::string>().find("max_child_depth") !=
        std::string::npos);
  CHECK(count_tasks(failed, "leaf") == 0);
}

TEST_CASE("bad child requests fail the parent's attempt with a clear reason and add nothing",
          "[integration][children]") {
  ScratchDir dir;
  struct Case {
    std::string map_shell;
    std::string reason;
  };
  const std::vector<Case> cases = {
      {"sluice add-child --name x --before first -- true", "'first' is not downstream of 'map'"},
      {"sluice add-child --name x --before nowhere -- true", "no task named 'nowhere'"},
      {"sluice add-child --name first -- true", "already has a task named 'first'"},
      {"sluice add-child --name x -- true; sluice add-child --name x -- true",
       "'x' is requested twice"},
      {"sluice add-child --name x --cpus 4096 -- true", "needs 4096 cpus"},
  };
  for (const auto& c : cases) {
    write_file(dir / "wf.toml", "[workflow]\nname = \"bad\"\n[tasks.first]\nshell = \"true\"\n"
                                "[tasks.map]\nafter = [\"first\"]\nshell = \"" +
                                    c.map_shell + "\"\n[tasks.end]\nafter = [\"map\"]\nshell = "
                                                  "\"true\"\n");
    auto r = run_sluice({"run", "wf.toml"}, dir.path());
    INFO(c.map_shell << "\n" << r.out << r.err);
    CHECK(r.exit_code == 1);
    auto run = get_json(run_id_of(r), dir.path());
    CHECK(run["task_list"].size() == 3);
    auto map = task_named(run, "map");
    CHECK(map["state"] == "failed");
    CHECK(map["reason"].get<std::string>().find(c.reason) != std::string::npos);
  }
}

TEST_CASE("add-child rejects bad input with exit code 2", "[integration][children]") {
  ScratchDir dir;
  auto outside = run_sluice({"add-child", "--name", "x", "--", "true"}, dir.path());
  CHECK(outside.exit_code == 2);
  CHECK(outside.err.find("SLUICE_ATTEMPT_DIR") != std::string::npos);

  // Inside a task: a bad spec file is reported with file:line:col and not written.
  write_file(dir / "spec.toml", "[tasks.kid]\ncommand = [\"true\"]\ncpus = \"two\"\n");
  write_file(dir / "wf.toml", R"~([workflow]
name = "badspec"
[tasks.map]
shell = '''
sluice add-child --spec spec.toml 2> spec.err; echo $? > spec.rc
sluice add-child --name 'a/b' -- true 2> name.err; echo $? > name.rc
sluice add-child --name ok 2> nocmd.err; echo $? > nocmd.rc
'''
)~");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(read_file(dir / "spec.rc") == "2\n");
  CHECK(read_file(dir / "spec.err").find("spec.toml:3:8: error: 'cpus' must be an integer") !=
        std::string::npos);
  CHECK(read_file(dir / "name.rc") == "2\n");
  CHECK(read_file(dir / "nocmd.rc") == "2\n");
  auto run = get_json(run_id_of(r), dir.path());
  CHECK(run["task_list"].size() == 1);
}

TEST_CASE("a spec file with a matrix adds a whole sweep at once and the reduce sees every child",
          "[integration][children][scale]") {
  ScratchDir dir;
  // 1,000 here; bench/ (scripts/bench.sh --only children) runs 10,000.
  const int n = 1'000;
  write_file(dir / "wf.toml", R"~([workflow]
name = "wide"
[tasks.map]
shell = '''
{ echo '[tasks.sq]'; echo 'before = "reduce"'
  echo 'command = ["sh", "-c", "sluice put y $(( {i} * {i} ))"]'
  printf 'matrix = { i = ['; seq -s, 0 $(( {inputs_n} - 1 )); echo '] }'; } > children.toml
sluice add-child --spec children.toml
'''
[tasks.reduce]
after = ["map"]
shell = '''
total=0
for y in $(sluice inputs y); do total=$((total + y)); done
sluice put total $total
'''
)~");
  // {inputs_n} is not a placeholder Sluice knows: the shell sees it literally, so
  // substitute it here to keep the workflow text simple.
  auto text = read_file(dir / "wf.toml");
  text.replace(text.find("{inputs_n}"), 10, std::to_string(n));
  write_file(dir / "wf.toml", text);
  auto r = run_sluice({"run", "wf.toml", "-q"}, dir.path());
  INFO(r.out << r.err.substr(0, 2000));
  REQUIRE(r.exit_code == 0);
  const std::string id = run_id_of(r);
  long long expected = 0;
  for (long long i = 0; i < n; ++i) expected += i * i;
  CHECK(result_of(results_json(id, dir.path()), "reduce", "total") == expected);
  auto run = get_json(id, dir.path());
  CHECK(run["task_list"].size() == static_cast<std::size_t>(n + 2));
}
