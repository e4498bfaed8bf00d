// Values packed per run, not one HDF5 file per attempt (docs/artifacts.md): a 1,000-child
// map-reduce whose children each `sluice put`, and 10,000 SDK function tasks that each
// return a value (inproc and local), leave at most 10 HDF5 files in their run, and h5py
// reads every value from run.h5.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support/cli_runner.hpp"
#include "support/run_queries.hpp"
#include "support/skip.hpp"

using nlohmann::json;
using namespace sluice::testing;
namespace fs = std::filesystem;

namespace {

std::size_t hdf5_files_under(const fs::path& dir) {
  std::size_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".h5") ++n;
  return n;
}

// The distribution's python3 (pyenv's lacks h5py).
bool have_h5py() {
  return std::system("/usr/bin/python3 -c 'import h5py' >/dev/null 2>&1") == 0;
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream(p) << text;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs check.py RUN_H5 in `dir`; its output in INFO.
int run_check(const fs::path& dir, const fs::path& run_h5, int n = 0) {
  const std::string cmd = "cd '" + dir.string() + "' && /usr/bin/python3 check.py '" +
                          run_h5.string() + "' " + std::to_string(n) + " > check.out 2>&1";
  const int rc = std::system(cmd.c_str());
  UNSCOPED_INFO(read_text(dir / "check.out"));
  return rc;
}

CliResult run_app(const std::vector<std::string>& args, const fs::path& cwd, int n) {
  std::vector<std::string> argv{SDK_PACKED_APP};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e)
    if (std::string(*e).rfind("SLUICE_HOME=", 0) != 0) env_s.push_back(*e);
  env_s.push_back("PACKED_N=" + std::to_string(n));
  std::vector<char*> envp;
  for (auto& s : env_s) envp.push_back(s.data());
  envp.push_back(nullptr);
  return run_process(argv, cwd, envp.data());
}

std::string first_run_id(const std::string& out) {
  std::istringstream in(out);
  std::string word, id;
  while (in >> word)
    if (word == "run" && in >> id) return id;
  return "";
}

}  // namespace

TEST_CASE("a 1,000-child map-reduce of sluice put leaves at most 10 HDF5 files",
          "[integration][artifacts][packed]") {
  ScratchDir dir;
  write_text(dir / "wf.toml", R"TOML(
[workflow]
name = "packed"
project = "tests"

[tasks.map]
shell = '''
i=0
while [ $i -lt 1000 ]; do
  echo "[tasks.child_$i]"
  echo "shell = 'sluice put v $i'"
  i=$((i + 1))
done > children.toml
sluice add-child --spec children.toml --before reduce
'''

[tasks.reduce]
after = ["map"]
shell = '''
total=0
for n in $(sluice inputs v); do total=$((total + n)); done
sluice put total $total
'''

[tasks.one]
after = ["reduce"]
shell = 'test "$(sluice get reduce total)" = 499500 && sluice put echo {inputs.reduce.total}'
)TOML");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const auto id = run_id_of(r);
  CHECK(results_json(id, dir.path())["results"]["one"]["echo"] == 499500);
  const fs::path run_dir = dir / (".sluice/runs/" + id);
  CHECK(hdf5_files_under(run_dir) <= 10);
  // Every command still reads a child's value.
  auto one = run_sluice({"results", id, "child_7", "--json"}, dir.path());
  CHECK(json::parse(one.out)["results"]["child_7"]["v"] == 7);
  auto art = run_sluice({"artifacts", id, "child_7", "--json"}, dir.path());
  INFO(art.out << art.err);
  REQUIRE(art.exit_code == 0);
  CHECK(json::parse(art.out)["keys"][0]["key"] == "v");

  if (!have_h5py()) SLUICE_SKIP("/usr/bin/python3 has no h5py (apt install python3-h5py)");
  write_text(dir / "check.py", R"PY(
import sys, h5py
f = h5py.File(sys.argv[1], "r")
bad = [i for i in range(1000) if int(f["child_%d" % i]["v"][()]) != i]
prov = f["provenance"][()]
tasks = set(t.decode() if isinstance(t, bytes) else t for t in prov["task"])
missing = [i for i in range(1000) if "child_%d@1" % i not in tasks]
print("bad", len(bad), bad[:5], "no provenance", len(missing), "rows", len(prov))
sys.exit(1 if bad or missing or int(f["reduce"]["total"][()]) != 499500 else 0)
)PY");
  CHECK(run_check(dir.path(), run_dir / "run.h5") == 0);
}

TEST_CASE("10,000 SDK function tasks that return values leave at most 10 HDF5 files",
          "[integration][sdk][packed]") {
  // 10,000 on both: a local worker process no longer builds the program's 10,000-call
  // Flow before it runs its one function (sdk/worker_preamble.hpp), so each costs a
  // process start, not a graph.
  for (const auto& [config, n] : {std::pair<std::string, int>{"inproc", 10000}, {"local", 10000}}) {
    INFO(config);
    ScratchDir dir;
    auto r = run_app({"run", "--config", config, "-q"}, dir.path(), n);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    const std::string id = first_run_id(r.out);
    REQUIRE(!id.empty());
    const fs::path run_dir = dir / (".sluice/runs/" + id);
    CHECK(hdf5_files_under(run_dir) <= 10);
    auto res = run_sluice({"results", id, "--json"}, dir.path());
    INFO(res.out << res.err);
    const json doc = json::parse(res.out);
    CHECK(doc["results"]["plus_one"]["result"] == 22);
    CHECK(doc["results"]["sum"]["result"] == 3 * 99 * 100 / 2);

    if (!have_h5py()) SLUICE_SKIP("/usr/bin/python3 has no h5py (apt install python3-h5py)");
    write_text(dir / "check.py", R"PY(
import sys, h5py
f = h5py.File(sys.argv[1], "r")
n = int(sys.argv[2])
got = sorted(int(f[name]["result"][()]) for name in f if name.startswith("triple"))
ok = got == [3 * i for i in range(n)]
print("values", len(got), "ok", ok, "provenance rows", len(f["provenance"]))
sys.exit(0 if ok and len(f["provenance"]) >= n + 2 else 1)
)PY");
    CHECK(run_check(dir.path(), run_dir / "run.h5", n) == 0);
  }
}
