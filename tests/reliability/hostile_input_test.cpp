// Hostile input: names and values built to escape a directory or reach a shell,
// artifacts that are links to elsewhere, an enormous workflow file, and the permissions
// of what Sluice creates. Each case has its exact error.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <fstream>

#include "support/reliability.hpp"
#include "support/run_queries.hpp"

using nlohmann::json;
using namespace sluice::testing;
namespace fs = std::filesystem;

namespace {

std::string toml_task(const std::string& quoted_name) {
  return "[workflow]\nname = \"x\"\n[tasks." + quoted_name + "]\nshell = \"true\"\n";
}

}  // namespace

TEST_CASE("hostile task names are refused with the name escaped, nothing runs",
          "[reliability][hostile]") {
  struct Case {
    const char* what;
    std::string quoted;   // the TOML key
    std::string printed;  // how the error prints the name
  };
  const Case cases[] = {
      {"parent directory", "\"../evil\"", "'../evil' is not a safe identifier"},
      {"slash", "\"a/b\"", "'a/b' is not a safe identifier"},
      {"absolute path", "\"/etc/passwd\"", "'/etc/passwd' is not a safe identifier"},
      {"NUL", "\"a\\u0000b\"", "'a\\x00b' is not a safe identifier"},
      {"newline", "\"a\\nb\"", "'a\\x0ab' is not a safe identifier"},
      {"escape sequence", "\"a\\u001b[2Jb\"", "'a\\x1b[2Jb' is not a safe identifier"},
      {"shell", "\"a;rm -rf /\"", "'a;rm -rf /' is not a safe identifier"},
      {"very long", "a" + std::string(5000, 'b'),
       "'a" + std::string(63, 'b') + "...' is too long (at most 64 characters)"},
  };
  for (const auto& c : cases) {
    ScratchDir dir;
    write_file(dir / "wf.toml", toml_task(c.quoted));
    auto r = run_sluice({"run", "wf.toml"}, dir.path());
    INFO(c.what << ": " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("wf.toml:3:") != std::string::npos);
    CHECK(r.err.find("error: task name " + c.printed) != std::string::npos);
    CHECK_FALSE(fs::exists(dir / ".sluice"));
  }
}

TEST_CASE("a matrix value with shell syntax stays one argv element and never reaches a shell",
          "[reliability][hostile]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", R"TOML(
[workflow]
name = "inject"
[tasks.echo]
matrix = { v = ["; rm -rf / ; touch pwned", "$(touch pwned)", "`touch pwned`", "a b  c", "../../../etc/passwd", "x\ny", "--help", "' \" \\"] }
command = ["printf", "[%s]\n", "{v}"]
)TOML");
  auto r = run_sluice({"run", "-q", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const std::string id = run_id_of(r);
  const std::vector<std::string> expected = {
      "[; rm -rf / ; touch pwned]\n", "[$(touch pwned)]\n", "[`touch pwned`]\n", "[a b  c]\n",
      "[../../../etc/passwd]\n",      "[x\ny]\n",           "[--help]\n",        "[' \" \\]\n"};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    auto logs = run_sluice({"logs", id, "echo." + std::to_string(i)}, dir.path());
    CHECK(logs.out == expected[i]);
  }
  CHECK_FALSE(fs::exists(dir / "pwned"));
  // Instance names come from positions, never from values.
  const auto run = get_json(id, dir.path());
  REQUIRE(run["task_list"].size() == expected.size());
  for (const auto& t : run["task_list"]) CHECK(std::string(t["name"]).rfind("echo.", 0) == 0);
}

TEST_CASE("add-child refuses a child name that is a path", "[reliability][hostile]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", R"TOML(
[workflow]
name = "child_names"
[tasks.map]
shell = "sluice add-child --name ../evil --shell true 2> add-child.err; echo $? > add-child.rc"
)TOML");
  auto r = run_sluice({"run", "-q", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(read_file(dir / "add-child.rc") == "2\n");
  CHECK(read_file(dir / "add-child.err").find("'../evil' is not a safe identifier") !=
        std::string::npos);
  CHECK(get_json(run_id_of(r), dir.path())["task_list"].size() == 1);
}

TEST_CASE("an artifact that is a symbolic link is refused and its target left untouched",
          "[reliability][hostile]") {
  ScratchDir dir;
  // A valid HDF5 file outside the run, and a file standing for /etc/passwd.
  write_file(dir / "passwd", "root:x:0:0:root:/root:/bin/bash\n");
  write_file(dir / "make.toml",
             "[workflow]\nname = \"make\"\n[tasks.a]\nshell = \"sluice put --output $SLUICE_OUTPUT "
             "v 1\"\n");
  auto made =
      run_sluice({"run", "-q", "--home", (dir / "other").string(), "make.toml"}, dir.path());
  REQUIRE(made.exit_code == 0);
  fs::copy_file(dir / ("other/runs/" + run_id_of(made) + "/tasks/a/1/output.h5"),
                dir / "outside.h5");
  const std::string outside_before = read_file(dir / "outside.h5");

  write_file(dir / "wf.toml", R"TOML(
[workflow]
name = "links"
[tasks.to_passwd]
shell = "ln -s $PWD/passwd $SLUICE_OUTPUT"
[tasks.to_etc_passwd]
shell = "ln -s /etc/passwd $SLUICE_OUTPUT"
[tasks.to_hdf5]
shell = "ln -s $PWD/outside.h5 $SLUICE_OUTPUT"
[tasks.results_to_passwd]
shell = "ln -s $PWD/passwd $SLUICE_RESULTS"
[tasks.dir_swapped]
shell = "mkdir -p swapped && cp outside.h5 swapped/output.h5 && rm -rf $SLUICE_ATTEMPT_DIR && ln -s $PWD/swapped $SLUICE_ATTEMPT_DIR"
)TOML");
  struct stat etc_before {};
  ::stat("/etc/passwd", &etc_before);
  auto r = run_sluice({"run", "-q", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  const std::string id = run_id_of(r);
  auto run = get_json(id, dir.path());
  const std::string attempts = (dir / (".sluice/runs/" + id + "/tasks/")).string();
  for (const char* task : {"to_passwd", "to_etc_passwd", "to_hdf5"}) {
    auto t = task_named(run, task);
    CHECK(t["state"] == "failed");
    CHECK(t["reason"] == "bad artifact: " + attempts + task +
                             "/1/output.h5 is a symbolic link (refused: an artifact must be a "
                             "regular file inside the attempt directory)");
  }
  CHECK(task_named(run, "results_to_passwd")["reason"] ==
        "bad results: " + attempts +
            "results_to_passwd/1/results is not a regular file (refused: a link could point "
            "outside the attempt)");
  CHECK(task_named(run, "dir_swapped")["reason"] ==
        "bad artifact: the attempt directory " + attempts +
            "dir_swapped/1 was replaced (not a directory)");
  CHECK(read_file(dir / "passwd") == "root:x:0:0:root:/root:/bin/bash\n");
  CHECK(read_file(dir / "outside.h5") == outside_before);
  CHECK(read_file(dir / "swapped/output.h5") == outside_before);
  struct stat etc_after {};
  ::stat("/etc/passwd", &etc_after);
  CHECK(etc_after.st_mtime == etc_before.st_mtime);
  CHECK(etc_after.st_mode == etc_before.st_mode);
  CHECK_FALSE(fs::exists(dir / (".sluice/runs/" + id + "/run.h5")));
}

TEST_CASE("a 200 MB workflow file is refused quickly with its size limit",
          "[reliability][hostile]") {
  ScratchDir dir;
  {
    std::ofstream out(dir / "huge.toml", std::ios::binary);
    out << "[workflow]\nname = \"huge\"\n";
    const std::string line = "# " + std::string(1022, 'x') + "\n";
    for (int i = 0; i < 200 * 1024; ++i) out << line;
  }
  const auto start = std::chrono::steady_clock::now();
  auto r = run_sluice({"validate", "huge.toml"}, dir.path());
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("huge.toml: error: workflow file is too large (more than 128 MiB)") !=
        std::string::npos);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(60));
  auto endless = run_sluice({"validate", "/dev/zero"}, dir.path());
  CHECK(endless.exit_code == 2);
  CHECK(endless.err.find("workflow file is too large") != std::string::npos);
}

TEST_CASE("run and attempt directories, logs, artifacts and the store are private by default",
          "[reliability][hostile][permissions]") {
  ScratchDir dir;
  write_file(dir / "wf.toml",
             "[workflow]\nname = \"p\"\n[tasks.a]\nshell = \"sluice put --output $SLUICE_OUTPUT v "
             "1; echo hi\"\n");
  auto r = run_sluice({"run", "-q", "wf.toml"}, dir.path());
  REQUIRE(r.exit_code == 0);
  const fs::path home = dir / ".sluice";
  const fs::path run = home / ("runs/" + run_id_of(r));
  CHECK(mode_of(home / "runs") == 0700);
  CHECK(mode_of(run) == 0700);
  CHECK(mode_of(run / "tasks") == 0700);
  CHECK(mode_of(run / "tasks/a") == 0700);
  CHECK(mode_of(run / "tasks/a/1") == 0700);
  CHECK(mode_of(run / "tasks/a/1/output.h5") == 0600);
  // Logs go to the run's spools (one file per slot), as private as the rest.
  CHECK(mode_of(run / "spools") == 0700);
  for (const auto& spool : fs::directory_iterator(run / "spools"))
    CHECK(mode_of(spool.path()) == 0600);
  CHECK(mode_of(home / "store.db") == 0600);
  // A reader keeps the WAL files open; check them while one exists.
  run_sluice({"ps"}, dir.path());
  for (const char* f : {"store.db-wal", "store.db-shm"})
    if (fs::exists(home / f)) CHECK(mode_of(home / f) == 0600);
}

TEST_CASE("SLUICE_UMASK loosens the modes, e.g. to share a home with the group",
          "[reliability][hostile][permissions]") {
  ScratchDir dir;
  ScopedEnv umask("SLUICE_UMASK", "027");
  write_file(dir / "wf.toml",
             "[workflow]\nname = \"p\"\n[tasks.a]\nshell = \"sluice put --output $SLUICE_OUTPUT v "
             "1; echo hi\"\n");
  auto r = run_sluice({"run", "-q", "wf.toml"}, dir.path());
  REQUIRE(r.exit_code == 0);
  const fs::path run = dir / (".sluice/runs/" + run_id_of(r));
  CHECK(mode_of(run) == 0750);
  CHECK(mode_of(run / "tasks/a/1") == 0750);
  for (const auto& spool : fs::directory_iterator(run / "spools"))
    CHECK(mode_of(spool.path()) == 0640);
  CHECK(mode_of(run / "tasks/a/1/output.h5") == 0640);
  CHECK(mode_of(dir / ".sluice/store.db") == 0640);
}
