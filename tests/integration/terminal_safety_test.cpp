// What a task or a workflow file writes cannot hurt the terminal or the store of whoever
// looks at it: control characters are escaped in human-readable output, a stored reason
// is bounded (the full text stays in the attempt's stderr), a NUL in a command is bad
// input, and a store lost beside its runs is an error, never silently replaced.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/cli_runner.hpp"
#include "support/run_queries.hpp"

using namespace sluice::testing;
namespace fs = std::filesystem;

namespace {

bool has_control(const std::string& s) {
  for (char c : s)
    if (c == '\x1b' || c == '\x07') return true;
  return false;
}

}  // namespace

TEST_CASE("a reason longer than 4 KiB is cut in the store, and escaped when printed",
          "[integration][terminal]") {
  ScratchDir dir;
  // Too long for one exec argument (128 KiB on Linux): the launch fails, and its reason
  // quotes the command, which starts by retitling the terminal.
  const std::string shell = "echo '\\u001b]0;pwned\\u0007' # " + std::string(300 * 1024, 'x');
  write_file(dir / "wf.toml", "[workflow]\nname = \"x\"\n[tasks.a]\nshell = \"" + shell + "\"\n");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  INFO(r.err.substr(0, 2000));
  CHECK(r.exit_code == 1);

  const std::string id = run_id_of(r);
  auto json = nlohmann::json::parse(run_sluice({"get", "--json", id}, dir.path()).out);
  const std::string reason = json["task_list"][0]["reason"];
  CHECK(reason.size() <= 4096);
  CHECK(reason.find("more bytes cut") != std::string::npos);

  auto text = run_sluice({"get", id}, dir.path());
  CHECK(text.exit_code == 0);
  CHECK(text.out.size() < 16 * 1024);
  CHECK_FALSE(has_control(text.out));
  CHECK(text.out.find("\\x1b]0;pwned\\x07") != std::string::npos);

  // The whole reason is kept with the attempt, and the store stays small.
  const fs::path attempt = dir / ".sluice" / "runs" / id / "tasks" / "a" / "1";
  CHECK(read_file(attempt / "stderr").find(std::string(300 * 1024, 'x')) != std::string::npos);
  CHECK(fs::file_size(dir / ".sluice" / "store.db") < 1024 * 1024);
}

TEST_CASE("validate escapes control characters from a command path", "[integration][terminal]") {
  ScratchDir dir;
  write_file(
      dir / "wf.toml",
      "[workflow]\nname = \"x\"\n[tasks.a]\ncommand = [\"/no/such\\u001b]0;pwned\\u0007\"]\n");
  auto r = run_sluice({"validate", "wf.toml"}, dir.path());
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("wf.toml:4:") != std::string::npos);
  CHECK_FALSE(has_control(r.err));
  CHECK(r.err.find("\\x1b]0;pwned\\x07") != std::string::npos);
}

TEST_CASE("a NUL inside a command or shell string is bad input", "[integration][terminal]") {
  ScratchDir dir;
  for (const char* task : {"command = [\"echo\", \"a\\u0000b\"]", "shell = \"echo a\\u0000b\""}) {
    write_file(dir / "wf.toml", std::string("[workflow]\nname = \"x\"\n[tasks.a]\n") + task + "\n");
    for (const char* verb : {"validate", "run"}) {
      auto r = run_sluice({verb, "wf.toml"}, dir.path());
      INFO(task << " (" << verb << "): " << r.err);
      CHECK(r.exit_code == 2);
      CHECK(r.err.find("wf.toml:4:") != std::string::npos);
      CHECK(r.err.find("NUL") != std::string::npos);
      CHECK_FALSE(fs::exists(dir / ".sluice"));
    }
  }
}

TEST_CASE("an empty store beside recorded runs is an error, never replaced",
          "[integration][terminal]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", "[workflow]\nname = \"x\"\n[tasks.a]\nshell = \"true\"\n");
  REQUIRE(run_sluice({"run", "wf.toml"}, dir.path()).exit_code == 0);
  const fs::path home = dir / ".sluice";
  for (const char* f : {"store.db-wal", "store.db-shm"}) fs::remove(home / f);
  fs::resize_file(home / "store.db", 0);

  for (auto args : {std::vector<std::string>{"ps"}, {"run", "wf.toml"}}) {
    auto r = run_sluice(args, dir.path());
    INFO(args[0] << ": " << r.err);
    CHECK(r.exit_code == 3);
    CHECK(r.err.find("missing or empty") != std::string::npos);
    CHECK(r.err.find("nothing has run here yet") == std::string::npos);
    CHECK(fs::file_size(home / "store.db") == 0);
  }
  // A store that is gone altogether is the same loss.
  fs::remove(home / "store.db");
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  CHECK(r.exit_code == 3);
  CHECK_FALSE(fs::exists(home / "store.db"));
}
