// Malformed workflows are rejected before anything runs (by run, validate and submit,
// which checks before detaching): file:line:col, exit code 2,
// and no store is created.
#include <catch2/catch.hpp>

#include "support/cli_runner.hpp"

using namespace sluice::testing;
namespace fs = std::filesystem;

namespace {

struct BadCase {
  const char* what;
  const char* toml;
  const char* where;    // "wf.toml:LINE:COL: error: "
  const char* message;  // substring of the message
};

const BadCase kCases[] = {
    {"syntax", "[workflow\nname = \"x\"\n", "wf.toml:1:", "syntax"},
    // Errors inside a value: TOML++ throws them from deeper in its parser (once an abort).
    {"unclosed array", "[workflow]\nname = \"x\"\n[tasks.a]\ncommand = [\"true\"\n",
     "wf.toml:4:", "error while parsing array"},
    {"unclosed string", "[workflow]\nname = \"x\"\n[tasks.a]\nshell = \"true\n",
     "wf.toml:4:", "error while parsing string"},
    // Non-ASCII where TOML++ 3.3.0 asks whether a character is whitespace (its
    // __builtin_unreachable for U+00A1..U+FEFF: see core/CMakeLists.txt).
    {"non-ASCII at a line's start", "[workflow]\nname = \"x\"\n\xd1\xa1\n",
     "wf.toml:3:1: error: ", "syntax"},
    {"non-ASCII after a value", "[workflow]\nname = \"x\" \xc3\xa9\n", "wf.toml:2:", "syntax"},
    {"integer out of range", "[workflow]\nname = \"x\"\n[tasks.a]\ncpus = 99999999999999999999\n",
     "wf.toml:4:", "not representable"},
    {"unknown key", "[workflow]\nname = \"x\"\n[tasks.a]\nshell = \"true\"\nretires = 2\n",
     "wf.toml:5:1: error: ", "did you mean 'retries'"},
    {"unknown dependency",
     "[workflow]\nname = \"x\"\n[tasks.a]\nshell = \"true\"\nafter = [\"b\"]\n",
     "wf.toml:5:", "unknown task 'b'"},
    {"cycle",
     "[workflow]\nname = \"x\"\n[tasks.a]\nshell = \"true\"\nafter = [\"b\"]\n[tasks.b]\nshell = "
     "\"true\"\nafter = [\"a\"]\n",
     "wf.toml:3:1: error: ", "cycle"},
    {"unsafe name", "[workflow]\nname = \"x\"\n[tasks.\"../evil\"]\nshell = \"true\"\n",
     "wf.toml:3:", "not a safe identifier"},
    {"negative cpus", "[workflow]\nname = \"x\"\n[tasks.a]\nshell = \"true\"\ncpus = -2\n",
     "wf.toml:5:", "'cpus' must be between"},
    {"missing executable",
     "[workflow]\nname = \"x\"\n[tasks.a]\ncommand = [\"no-such-program-sluice\"]\n",
     "wf.toml:4:", "not found"},
    {"empty matrix",
     "[workflow]\nname = \"x\"\n[tasks.a]\nshell = \"echo {p}\"\nmatrix = { p = [] }\n",
     "wf.toml:5:", "empty"},
    {"backend without a sub-workflow",
     "[workflow]\nname = \"x\"\n[tasks.a]\nshell = \"true\"\nbackend = \"mpi\"\n",
     "wf.toml:5:1: error: ", "'backend' applies to a sub-workflow"},
    {"missing sub-workflow",
     "[workflow]\nname = \"x\"\n[tasks.a]\nworkflow = \"nope.toml\"\nbackend = \"mpi\"\n",
     "wf.toml:4:", "sub-workflow 'nope.toml' is invalid"},
    {"more cpus than the backend has",
     "[workflow]\nname = \"x\"\n[tasks.a]\nshell = \"true\"\ncpus = 64\n",
     "wf.toml:5:", "needs 64 cpus"},
};

}  // namespace

TEST_CASE("bad workflows exit 2 with file:line:col and leave no store", "[integration][bad]") {
  for (const auto& c : kCases) {
    ScratchDir dir;
    write_file(dir / "wf.toml", c.toml);
    for (const char* verb : {"validate", "run", "submit"}) {
      auto r = run_sluice({verb, "--cpus", "2", "wf.toml"}, dir.path());
      INFO(c.what << " (" << verb << "): " << r.err);
      CHECK(r.exit_code == 2);
      CHECK(r.err.find(c.where) != std::string::npos);
      CHECK(r.err.find(c.message) != std::string::npos);
      CHECK_FALSE(fs::exists(dir / ".sluice"));
    }
  }
}

TEST_CASE("a missing workflow file or an unknown command exits 2", "[integration][bad]") {
  ScratchDir dir;
  CHECK(run_sluice({"run", "nope.toml"}, dir.path()).exit_code == 2);
  CHECK(run_sluice({"frobnicate"}, dir.path()).exit_code == 2);
  CHECK(run_sluice({"get", "abc"}, dir.path()).exit_code == 2);
  CHECK_FALSE(fs::exists(dir / ".sluice"));
}
