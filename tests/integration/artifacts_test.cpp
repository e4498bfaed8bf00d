// Data between tasks as HDF5 artifacts, read back through `sluice results`, the HDF5
// library's own h5dump, and `sluice artifacts`.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "support/run_queries.hpp"
#include "support/skip.hpp"

using nlohmann::json;
using namespace sluice::testing;
namespace fs = std::filesystem;

namespace {

// h5dump of one dataset, reached through run.h5's external links.
std::string h5dump(const fs::path& cwd, const std::string& id, const std::string& object) {
  auto out = cwd / "h5dump.out";
  const std::string cmd = "h5dump -d '" + object + "' '" +
                          (cwd / (".sluice/runs/" + id + "/run.h5")).string() + "' > '" +
                          out.string() + "' 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  return read_file(out);
}

}  // namespace

TEST_CASE("gen_nums passes (1, 2) to sum_nums, which returns 3", "[integration][artifacts]") {
  ScratchDir dir;
  auto r = run_sluice({"run", kExamples + "gen_sum.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const auto id = run_id_of(r);
  auto res = results_json(id, dir.path());
  CHECK(res["results"]["sum_nums"]["sum"] == 3);
  CHECK(res["results"].size() == 1);  // only the final task
  CHECK(h5dump(dir.path(), id, "/sum_nums/sum").find("(0): 3") != std::string::npos);
  CHECK(h5dump(dir.path(), id, "/gen_nums/n2").find("(0): 2") != std::string::npos);
}

TEST_CASE("fetch_a and fetch_b feed merge, which returns 30", "[integration][artifacts]") {
  ScratchDir dir;
  auto r = run_sluice({"run", kExamples + "fetch_merge.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const auto id = run_id_of(r);
  CHECK(results_json(id, dir.path())["results"]["merge"]["result"] == 30);
  CHECK(h5dump(dir.path(), id, "/merge/result").find("(0): 30") != std::string::npos);
  auto one = run_sluice({"results", id, "fetch_b", "--json"}, dir.path());
  CHECK(json::parse(one.out)["results"]["fetch_b"]["value"] == 20);
}

TEST_CASE("a compiled program writes a 2-D array with HDF5 and a consumer reduces it",
          "[integration][artifacts]") {
  ScratchDir dir;
  auto r = run_sluice({"run", kExamples + "hdf5/field.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const auto id = run_id_of(r);
  CHECK(results_json(id, dir.path())["results"]["reduce"]["total"].get<double>() ==
        Approx(995245.0));
  auto art = run_sluice({"artifacts", id, "simulate", "--json"}, dir.path());
  auto doc = json::parse(art.out);
  CHECK(doc["keys"][0]["type"] == "float64[200,50]");
  CHECK(doc["provenance"]["task"] == "simulate@1");
  CHECK(doc["provenance"]["run_id"] == id);
  CHECK(doc["provenance"]["workflow"] == "examples:field:1");
  // The input's path and checksum are recorded in the consumer's artifact.
  auto reduce = json::parse(run_sluice({"artifacts", id, "reduce", "--json"}, dir.path()).out);
  const std::string inputs = reduce["provenance"]["inputs"];
  CHECK(inputs.find("xxh3:") != std::string::npos);
  CHECK(inputs.find("/tasks/simulate/1/output.h5") != std::string::npos);
}

TEST_CASE("inputs arrive in the order of after, each also under its own name",
          "[integration][artifacts]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", R"(
[workflow]
name = "order"
[tasks.a]
shell = "sluice put v a"
[tasks.b]
shell = "sluice put v b"
[tasks.c]
shell = "true"
[tasks.join]
after = ["b", "c", "a"]
shell = "echo $SLUICE_INPUTS; echo $SLUICE_INPUT_A; sluice get b v; sluice get a v --json"
)");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const auto id = run_id_of(r);
  auto logs = run_sluice({"logs", id, "join"}, dir.path()).out;
  const auto run_dir = fs::canonical(dir.path()).string() + "/.sluice/runs/" + id;
  // Packed values (docs/artifacts.md): both parents in one value segment, each its group.
  const std::string segment = run_dir + "/values/0000.h5";
  const std::string expected = segment + "#/b:" + segment + "#/a\n" + segment + "\nb\n\"a\"\n";
  CHECK(logs == expected);  // c wrote no artifact, so it is not an input
}

TEST_CASE("a task that exits 0 with a corrupt artifact fails with bad artifact",
          "[integration][artifacts]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", R"(
[workflow]
name = "corrupt"
[tasks.liar]
shell = "echo 'not hdf5 at all' > $SLUICE_OUTPUT"
[tasks.child]
after = ["liar"]
shell = "true"
)");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 1);
  auto run = get_json(run_id_of(r), dir.path());
  auto liar = task_named(run, "liar");
  CHECK(liar["state"] == "failed");
  CHECK(liar["reason"].get<std::string>().rfind("bad artifact: ", 0) == 0);
  CHECK(task_named(run, "child")["state"] == "skipped");
}

TEST_CASE("a missing or non-scalar input placeholder fails that task, not the engine",
          "[integration][artifacts]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", R"(
[workflow]
name = "placeholders"
[tasks.p]
shell = "sluice put arr '[1, 2, 3]' && sluice put x 5"
[tasks.missing]
after = ["p"]
command = ["echo", "{inputs.p.nope}"]
[tasks.array]
after = ["p"]
command = ["echo", "{inputs.p.arr}"]
[tasks.fine]
after = ["p"]
command = ["echo", "x is {inputs.p.x}"]
)");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 1);
  auto id = run_id_of(r);
  auto run = get_json(id, dir.path());
  CHECK(task_named(run, "missing")["reason"].get<std::string>().find("has no value 'nope'") !=
        std::string::npos);
  CHECK(task_named(run, "array")["reason"].get<std::string>().find("not a scalar") !=
        std::string::npos);
  CHECK(task_named(run, "fine")["state"] == "succeeded");
  CHECK(run_sluice({"logs", id, "fine"}, dir.path()).out == "x is 5\n");
}

TEST_CASE("results --wait blocks in a second process until the run ends",
          "[integration][artifacts]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", R"(
[workflow]
name = "slow"
[tasks.slow]
shell = "sleep 1.5; sluice put answer 42"
)");
  pid_t run = spawn_sluice({"run", "wf.toml"}, dir.path(), dir / "out", dir / "err");
  const std::string id = wait_for_run_id(dir / "out");
  auto early = run_sluice({"results", id}, dir.path());
  CHECK(early.exit_code == 1);
  CHECK(early.err.find("still running") != std::string::npos);
  auto waited = run_sluice({"results", id, "--wait", "--json"}, dir.path());
  INFO(waited.out << waited.err);
  CHECK(waited.exit_code == 0);
  CHECK(json::parse(waited.out)["results"]["slow"]["answer"] == 42);
  CHECK(wait_exit(run) == 0);
}

TEST_CASE("sluice put infers types and reads numeric files as arrays", "[integration][artifacts]") {
  ScratchDir dir;
  write_file(dir / "data.txt", "1 2 3\n4 5 6\n");
  write_file(dir / "wf.toml", R"(
[workflow]
name = "put"
[tasks.p]
shell = '''
sluice put i 7 && sluice put f 2.5 && sluice put b true && sluice put s "hello world" &&
sluice put forced 7 --type string && sluice put table --file data.txt &&
sluice put nested '{"k": [1.5, 2.5], "name": "x"}'
'''
)");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto res = results_json(run_id_of(r), dir.path())["results"]["p"];
  CHECK(res["i"] == 7);
  CHECK(res["f"] == 2.5);
  CHECK(res["b"] == true);
  CHECK(res["s"] == "hello world");
  CHECK(res["forced"] == "7");
  CHECK(res["table"] == json::parse("[[1,2,3],[4,5,6]]"));
  CHECK(res["nested"]["k"] == json::parse("[1.5, 2.5]"));
  CHECK(res["nested"]["name"] == "x");
}

TEST_CASE("sluice inputs reads one value from every input in one process",
          "[integration][artifacts]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", R"TOML(
[workflow]
name = "inputs"
[tasks.sq]
matrix = { i = [1, 2, 3, 4] }
shell = "sluice put v $(( {i} * {i} ))"
[tasks.sum]
after = ["sq"]
shell = "sluice put total $(sluice inputs v | awk '{s += $1} END {print s}')"
)TOML");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(results_json(run_id_of(r), dir.path())["results"]["sum"]["total"] == 30);
}

TEST_CASE("values appended to SLUICE_RESULTS reach dependents and h5dump as HDF5",
          "[integration][artifacts][results]") {
  ScratchDir dir;
  auto r = run_sluice({"run", kExamples + "results_file.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const auto id = run_id_of(r);
  auto res = results_json(id, dir.path())["results"]["summary"];
  CHECK(res["total"] == 30);  // 1 + 4 + 9 + 16, read by `sluice inputs square`
  CHECK(res["best_size"] == 4);
  auto one = run_sluice({"results", id, "measure.1", "--json"}, dir.path());
  auto m1 = json::parse(one.out)["results"]["measure.1"];
  CHECK(m1["size"] == 2);
  CHECK(m1["samples"] == json::parse("[[1,2],[2,4],[3,6]]"));
  CHECK(h5dump(dir.path(), id, "/measure.3/square").find("(0): 16") != std::string::npos);
  // Sealed like any artifact: provenance on its root.
  auto art = json::parse(run_sluice({"artifacts", id, "measure.0", "--json"}, dir.path()).out);
  CHECK(art["provenance"]["task"] == "measure.0@1");
  CHECK(art["provenance"]["run_id"] == id);
}

TEST_CASE("results and sluice put in one task merge, a malformed results file fails the task",
          "[integration][artifacts][results]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", R"TOML(
[workflow]
name = "merge"
[tasks.both]
shell = '''
sluice put kept 1 && sluice put replaced old
printf 'replaced=new\nadded=x\n' >> "$SLUICE_RESULTS"
'''
[tasks.use]
after = ["both"]
command = ["sh", "-c", "sluice put got {inputs.both.kept}-{inputs.both.replaced}-{inputs.both.added}"]
[tasks.broken]
shell = 'printf "fine=1\nno equals sign here\n" >> "$SLUICE_RESULTS"'
[tasks.after_broken]
after = ["broken"]
shell = "true"
)TOML");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 1);
  const auto id = run_id_of(r);
  auto run = get_json(id, dir.path());
  CHECK(task_named(run, "use")["state"] == "succeeded");
  auto used = run_sluice({"results", id, "use", "--json"}, dir.path());
  CHECK(json::parse(used.out)["results"]["use"]["got"] == "1-new-x");
  auto broken = task_named(run, "broken");
  CHECK(broken["state"] == "failed");
  const std::string reason = broken["reason"];
  CHECK(reason.rfind("bad results: ", 0) == 0);
  CHECK(reason.find("/results:2: expected KEY=VALUE") != std::string::npos);
  CHECK(task_named(run, "after_broken")["state"] == "skipped");
  // No half artifact: the failed attempt left none.
  CHECK_FALSE(fs::exists(dir.path() / (".sluice/runs/" + id + "/tasks/broken/1/output.h5")));
}

TEST_CASE("a full disk fails the writing attempt with a clear reason and keeps the store sound",
          "[integration][artifacts][diskfull]") {
  ScratchDir dir;
  const fs::path home = dir / "small-home";
  fs::create_directories(home);
  // A 4 MiB filesystem for the home: needs root (CI runs as root); skipped otherwise.
  // Private (a tmpfs is 1777 by default, a home Sluice refuses).
  const std::string mount =
      "mount -t tmpfs -o size=4m,mode=0700 tmpfs '" + home.string() + "' 2>/dev/null";
  if (std::system(mount.c_str()) != 0) {
    SLUICE_SKIP("cannot mount a small tmpfs here (not root?)");
  }
  struct Unmount {
    fs::path p;
    ~Unmount() { std::system(("umount '" + p.string() + "'").c_str()); }
  } unmount{home};

  std::string table;
  for (int i = 0; i < 300000; ++i) table += std::to_string(i) + "\n";  // ~2.3 MB as int64s
  write_file(dir / "numbers.txt", table);
  write_file(dir / "wf.toml", R"(
[workflow]
name = "diskfull"
[tasks.small]
shell = "sluice put ok 1"
[tasks.big]
after = ["small"]
shell = "sluice put a --file numbers.txt && sluice put b --file numbers.txt"
)");
  auto r = run_sluice({"run", "--home", home.string(), "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 1);
  const auto id = run_id_of(r);
  auto get = run_sluice({"get", id, "--json", "--home", home.string()}, dir.path());
  REQUIRE(get.exit_code == 0);
  auto run = json::parse(get.out);
  CHECK(run["state"] == "failed");
  CHECK(task_named(run, "small")["state"] == "succeeded");
  CHECK(task_named(run, "big")["state"] == "failed");
  auto logs = run_sluice({"logs", id, "big", "--home", home.string()}, dir.path());
  CHECK(logs.err.find("No space left on device") != std::string::npos);  // sluice put says why
  // No half-written artifact is left behind, and SQLite finds the store intact.
  for (const auto& e : fs::recursive_directory_iterator(home))
    CHECK(e.path().filename().string().find(".tmp-") == std::string::npos);
  const std::string check = "sqlite3 '" + (home / "store.db").string() +
                            "' 'PRAGMA integrity_check' > '" + (dir / "ic.txt").string() + "'";
  REQUIRE(std::system(check.c_str()) == 0);
  CHECK(read_file(dir / "ic.txt") == "ok\n");
}
