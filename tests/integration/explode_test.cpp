// Small files that describe huge workflows: `validate` answers within a bounded address
// space (exit 0, or exit 2 with the limit named), never with std::bad_alloc; and a
// matrix after a matrix (kept as one barrier, not N x M edges) still runs as written.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/cli_runner.hpp"
#include "support/run_queries.hpp"
#include "support/skip.hpp"

using namespace sluice::testing;
namespace fs = std::filesystem;

namespace {

// A matrix of 10^axes instances, from a line of TOML.
std::string matrix(int axes) {
  std::string m = "matrix = { ";
  for (int a = 0; a < axes; ++a)
    m += std::string(a ? ", " : "") + char('a' + a) + " = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]";
  return m + " }\n";
}

// `sluice ARGS` in `cwd` with its address space limited to `kib` KiB (ulimit -v).
CliResult run_limited(long kib, const std::string& args, const fs::path& cwd) {
  return run_process(
      {"/bin/sh", "-c", "ulimit -v " + std::to_string(kib) + " && exec \"$0\" " + args,
       SLUICE_BINARY},
      cwd);
}

}  // namespace

TEST_CASE("files that would explode validate within a 2 GiB address space",
          "[integration][bad][limits]") {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  SLUICE_SKIP("sanitizers reserve terabytes of address space: ulimit -v cannot apply");
#endif
  constexpr long kTwoGiB = 2L * 1024 * 1024;
  ScratchDir dir;
  // 100,000 instances after 100,000: 10^10 edges as a list per task (std::bad_alloc
  // after 17 s before barriers).
  write_file(dir / "fanin.toml",
             "[workflow]\nname = \"fanin\"\n[tasks.a]\ncommand = [\"true\"]\n" + matrix(5) +
                 "[tasks.b]\ncommand = [\"true\"]\nafter = [\"a\"]\n" + matrix(5));
  // Ten matrices of a million: refused by the task limit before anything is expanded.
  std::string ten = "[workflow]\nname = \"ten\"\n";
  for (int i = 0; i < 10; ++i)
    ten += "[tasks.m" + std::to_string(i) + "]\nshell = \"true\"\n" + matrix(6);
  write_file(dir / "ten.toml", ten);

  auto fanin = run_limited(kTwoGiB, "validate fanin.toml", dir.path());
  INFO(fanin.out << fanin.err);
  CHECK(fanin.exit_code == 0);

  auto big = run_limited(kTwoGiB, "validate ten.toml", dir.path());
  INFO(big.out << big.err);
  CHECK(big.exit_code == 2);
  CHECK(big.err.find("ten.toml:11:10") != std::string::npos);
  CHECK(big.err.find("more than 2000000 tasks") != std::string::npos);
  CHECK(big.err.find("max_tasks = N") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / ".sluice"));
}

// a.0 a.1 a.2
//     \ | /  x     every b after every a: one barrier
//    b.0  b.1
TEST_CASE("a matrix after a matrix waits for the whole group and gets its inputs in order",
          "[integration][limits]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", R"(
[workflow]
name = "fanin"
[tasks.a]
shell = "sluice put v {i}"
matrix = { i = [0, 1, 2] }
[tasks.b]
after = ["a"]
shell = "echo $SLUICE_INPUTS; sluice inputs v"
matrix = { j = ["x", "y"] }
)");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const auto id = run_id_of(r);
  const auto run_dir = fs::canonical(dir.path()).string() + "/.sluice/runs/" + id;
  // Packed values (docs/artifacts.md): the parents' groups in one value segment.
  const std::string segment = run_dir + "/values/0000.h5";
  const std::string paths = segment + "#/a.0:" + segment + "#/a.1:" + segment + "#/a.2\n";
  for (const char* b : {"b.0", "b.1"}) {
    auto logs = run_sluice({"logs", id, b}, dir.path()).out;
    INFO(b << ": " << logs);
    CHECK(logs.rfind(paths, 0) == 0);
  }
}

TEST_CASE("a failed instance skips every task after its group", "[integration][limits]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", R"(
[workflow]
name = "fanin_fails"
[tasks.a]
shell = "test {i} != 1"
matrix = { i = [0, 1, 2] }
[tasks.b]
after = ["a"]
shell = "true"
matrix = { j = ["x", "y"] }
)");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 1);
  auto run = get_json(run_id_of(r), dir.path());
  CHECK(task_named(run, "a.1")["state"] == "failed");
  for (const char* b : {"b.0", "b.1"}) {
    CHECK(task_named(run, b)["state"] == "skipped");
    CHECK(task_named(run, b)["reason"] == "dependency 'a.1' failed");
  }
}
