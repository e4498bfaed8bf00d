// Faults from outside: a full disk, a read-only Sluice home, SIGTERM to the coordinator
// (as Slurm sends at a time limit), and tasks that leave daemons behind.
#include <catch2/catch.hpp>

#include "support/reliability.hpp"
#include "support/run_queries.hpp"
#include "support/skip.hpp"

using nlohmann::json;
using namespace sluice::testing;
namespace fs = std::filesystem;

namespace {

std::string attempt_reasons(const fs::path& db, const std::string& task) {
  return sqlite_query(db, "SELECT a.attempt || ' ' || a.state || ' ' || a.reason FROM attempts a "
                          "JOIN tasks t ON t.run = a.run AND t.idx = a.task WHERE t.name = '" +
                              task + "' ORDER BY a.attempt");
}

}  // namespace

TEST_CASE("a full disk fails the attempt writing its artifact, resume finishes once space is back",
          "[reliability][fault][disk]") {
  if (!running_as_root()) {
    SLUICE_SKIP("mounting a small tmpfs needs root");
  }
  ScratchDir dir;
  Tmpfs disk(dir / "disk", "2m");
  REQUIRE(disk.mounted());
  // 500,000 numbers: an artifact of ~4 MB, more than the disk holds.
  std::string numbers;
  for (int i = 0; i < 500000; ++i) numbers += std::to_string(i % 10) + "\n";
  write_file(dir / "numbers.txt", numbers);
  write_file(dir / "wf.toml", R"TOML(
[workflow]
name = "disk_full"
[tasks.small]
shell = "sluice put v 1"
[tasks.big]
shell = "sluice put data --file numbers.txt"
[tasks.sum]
after = ["small", "big"]
shell = "sluice put n $(sluice get small v)"
)TOML");
  ScopedEnv home("SLUICE_HOME", (dir / "disk/home").string());
  auto r = run_sluice({"run", "-q", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 1);
  const std::string id = run_id_of(r);
  auto run = get_json(id, dir.path());
  CHECK(run["state"] == "failed");
  CHECK(task_state(run, "small") == "succeeded");
  CHECK(task_state(run, "big") == "failed");
  CHECK(task_state(run, "sum") == "skipped");
  // The reason is in the attempt's log; no temporary file is left taking the space.
  auto logs = run_sluice({"logs", id, "big", "--stderr"}, dir.path());
  INFO(logs.out << logs.err);
  CHECK((logs.out + logs.err).find("No space left on device") != std::string::npos);
  const fs::path db = dir / "disk/home/store.db";
  CHECK(sqlite_integrity(db) == "ok");

  REQUIRE(disk.remount("size=64m"));
  auto resumed = run_sluice({"resume", "-q", id}, dir.path());
  INFO(resumed.out << resumed.err);
  CHECK(resumed.exit_code == 0);
  run = get_json(id, dir.path());
  CHECK(run["state"] == "succeeded");
  CHECK(task_named(run, "small")["attempts"] == 1);
  CHECK(sqlite_integrity(db) == "ok");
}

TEST_CASE("a full disk under the store stops the coordinator with the reason, resume finishes",
          "[reliability][fault][disk]") {
  if (!running_as_root()) {
    SLUICE_SKIP("mounting a small tmpfs needs root");
  }
  ScratchDir dir;
  Tmpfs disk(dir / "disk", "4m");
  REQUIRE(disk.mounted());
  // `fill` takes every free byte of the home's disk (its write fails, the file stays),
  // then many tasks finish at once: the coordinator cannot commit their records.
  std::string wf = R"TOML(
[workflow]
name = "store_full"
[tasks.fill]
shell = "if [ ! -e no-fill ]; then head -c 8000000 /dev/zero > $SLUICE_HOME/filler; fi; true"
[tasks.many]
after = ["fill"]
matrix = { i = [)TOML";
  for (int i = 0; i < 50; ++i) wf += (i ? ", " : "") + std::to_string(i);
  wf += R"TOML(] }
shell = "echo {i}"
)TOML";
  write_file(dir / "wf.toml", wf);
  ScopedEnv home("SLUICE_HOME", (dir / "disk/home").string());
  auto r = run_sluice({"run", "-q", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  const std::string id = run_id_of(r);
  // The transaction recording fill's end is rolled back; the coordinator says why.
  CHECK(r.exit_code == 3);
  CHECK(r.err.find("sluice: store: commit: database or disk is full") != std::string::npos);
  CHECK(get_json(id, dir.path())["state"] == "running");  // resumable
  fs::remove(dir / "disk/home/filler");
  write_file(dir / "no-fill", "");
  const fs::path db = dir / "disk/home/store.db";
  CHECK(sqlite_integrity(db) == "ok");
  auto resumed = run_sluice({"resume", "-q", id}, dir.path());
  INFO(resumed.out << resumed.err);
  CHECK(resumed.exit_code == 0);
  CHECK(get_json(id, dir.path())["state"] == "succeeded");
  CHECK(sqlite_integrity(db) == "ok");
}

TEST_CASE("a read-only Sluice home is refused before anything runs", "[reliability][fault]") {
  ScratchDir dir;
  write_file(dir / "wf.toml",
             "[workflow]\nname = \"w\"\n[tasks.a]\nshell = \"touch ran\"\n");
  const fs::path home = dir / "ro/home";
  std::optional<Tmpfs> disk;
  if (running_as_root()) {
    disk.emplace(dir / "ro", "4m");
    REQUIRE(disk->mounted());
  }
  ScopedEnv env("SLUICE_HOME", home.string());
  {  // a home that already holds a store
    auto first = run_sluice({"run", "-q", "wf.toml"}, dir.path());
    INFO(first.out << first.err);
    REQUIRE(first.exit_code == 0);
    fs::remove(dir / "ran");
  }
  if (disk)
    REQUIRE(disk->remount("ro"));
  else
    fs::permissions(home, fs::perms::owner_read | fs::perms::owner_exec);
  auto r = run_sluice({"run", "-q", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  CHECK(r.exit_code == 3);
  CHECK(r.err.find("the Sluice home " + home.string() + " is not writable") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "ran"));
  // A home that does not exist yet under a read-only directory names the path too.
  ScopedEnv env2("SLUICE_HOME", (dir / "ro/new-home").string());
  auto fresh = run_sluice({"run", "-q", "wf.toml"}, dir.path());
  INFO(fresh.out << fresh.err);
  CHECK(fresh.exit_code == 3);
  CHECK(fresh.err.find("cannot create the Sluice home " + (dir / "ro/new-home").string()) !=
        std::string::npos);
  CHECK_FALSE(fs::exists(dir / "ran"));
  if (disk) disk->remount("rw");
  else fs::permissions(home, fs::perms::owner_all);
}

TEST_CASE("SIGTERM stops the attempts and leaves the run resumable, not cancelled",
          "[reliability][fault][sigterm]") {
  ScratchDir dir;
  fs::create_directories(dir / "executions");
  write_file(dir / "wf.toml", R"TOML(
[workflow]
name = "walltime"
[tasks.first]
shell = "echo x >> executions/$SLUICE_TASK; sluice put v 1"
[tasks.long]
after = ["first"]
shell = "echo x >> executions/$SLUICE_TASK; echo $$ > long.pid; if [ ! -e quick ]; then sleep 60; fi; sluice put v 2"
[tasks.last]
after = ["long"]
shell = "echo x >> executions/$SLUICE_TASK; sluice put v $(( $(sluice get long v) + 1 ))"
)TOML");
  pid_t pid = spawn_sluice({"run", "-q", "wf.toml"}, dir.path(), dir / "out", dir / "err");
  const std::string id = wait_for_run_id(dir / "out");
  REQUIRE(eventually([&] { return pid_written(dir / "long.pid"); },
                     std::chrono::seconds(60)));
  const pid_t task_pid = std::stoi(read_file(dir / "long.pid"));
  ::kill(pid, SIGTERM);
  CHECK(wait_exit(pid) == 143);
  CHECK(read_file(dir / "out").find("stopped (SIGTERM)") != std::string::npos);
  CHECK(::kill(task_pid, 0) != 0);  // the coordinator waited for it to end

  auto run = get_json(id, dir.path());
  CHECK(run["state"] == "running");
  CHECK(run["coordinator_alive"] == false);
  CHECK(task_state(run, "first") == "succeeded");
  CHECK(task_state(run, "last") == "waiting");
  CHECK(run_sluice({"ps"}, dir.path()).out.find("orphaned") != std::string::npos);
  CHECK(sqlite_integrity(dir / ".sluice/store.db") == "ok");

  write_file(dir / "quick", "");
  auto resumed = run_sluice({"resume", "-q", id}, dir.path());
  INFO(resumed.out << resumed.err);
  REQUIRE(resumed.exit_code == 0);
  run = get_json(id, dir.path());
  CHECK(run["state"] == "succeeded");
  CHECK(read_file(dir / "executions/first") == "x\n");
  CHECK(read_file(dir / "executions/long") == "x\nx\n");
  CHECK(results_json(id, dir.path())["results"]["last"]["v"] == 3);
  CHECK(attempt_reasons(dir / ".sluice/store.db", "long").find(
            "1 failed lost: the coordinator stopped while it ran") != std::string::npos);
}

TEST_CASE("Ctrl-C still cancels (SIGINT is not SIGTERM)", "[reliability][fault][sigterm]") {
  ScratchDir dir;
  write_file(dir / "wf.toml",
             "[workflow]\nname = \"w\"\n[tasks.a]\nshell = \"touch started; sleep 60\"\n");
  pid_t pid = spawn_sluice({"run", "-q", "wf.toml"}, dir.path(), dir / "out", dir / "err");
  const std::string id = wait_for_run_id(dir / "out");
  REQUIRE(eventually([&] { return fs::exists(dir / "started"); }, std::chrono::seconds(60)));
  ::kill(pid, SIGINT);
  CHECK(wait_exit(pid) == 1);
  CHECK(get_json(id, dir.path())["state"] == "cancelled");
}

TEST_CASE("daemons a task leaves in its process group are killed: on cancel and when it ends",
          "[reliability][fault][daemons]") {
  ScratchDir dir;
  const std::string marker = "sluice-daemon-marker-" + std::to_string(::getpid());
  // nohup + &, and a double fork: both stay in the attempt's process group.
  write_file(dir / "wf.toml", R"TOML(
[workflow]
name = "daemons"
[tasks.leaves_daemons]
shell = '''
nohup sh -c 'sleep 1000; true' MARKER-nohup >/dev/null 2>&1 &
( sh -c 'sleep 1000; true' MARKER-double-fork & ) &
sleep 0.2
'''
[tasks.cancelled]
shell = '''
nohup sh -c 'sleep 1000; true' MARKER-cancel >/dev/null 2>&1 &
( sh -c 'sleep 1000; true' MARKER-cancel-double & ) &
touch started
sleep 60
'''
)TOML");
  {
    std::string text = read_file(dir / "wf.toml");
    for (std::size_t p; (p = text.find("MARKER")) != std::string::npos;)
      text.replace(p, 6, marker);
    write_file(dir / "wf.toml", text);
  }
  pid_t pid = spawn_sluice({"run", "-q", "wf.toml"}, dir.path(), dir / "out", dir / "err");
  const std::string id = wait_for_run_id(dir / "out");
  REQUIRE(eventually([&] { return fs::exists(dir / "started"); }, std::chrono::seconds(60)));
  REQUIRE(eventually([&] { return task_state(get_json(id, dir.path()), "leaves_daemons") ==
                                  "succeeded"; },
                     std::chrono::seconds(60)));
  CHECK(eventually([&] { return processes_with_marker(marker + "-nohup").empty() &&
                                processes_with_marker(marker + "-double-fork").empty(); },
                   std::chrono::seconds(10)));
  CHECK_FALSE(processes_with_marker(marker + "-cancel").empty());
  auto c = run_sluice({"cancel", id}, dir.path());
  CHECK(c.exit_code == 0);
  CHECK(wait_exit(pid) == 1);
  CHECK(eventually([&] { return processes_with_marker(marker).empty(); },
                   std::chrono::seconds(10)));
}

TEST_CASE("a daemon that calls setsid leaves the process group and is not killed (documented)",
          "[reliability][fault][daemons]") {
  ScratchDir dir;
  const std::string marker = "sluice-setsid-marker-" + std::to_string(::getpid());
  write_file(dir / "wf.toml", "[workflow]\nname = \"w\"\n[tasks.a]\nshell = \"setsid sh -c 'sleep 1000; true' " +
                                  marker + " >/dev/null 2>&1 < /dev/null & sleep 0.2\"\n");
  auto r = run_sluice({"run", "-q", "wf.toml"}, dir.path());
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  auto left = processes_with_marker(marker);
  CHECK(left.size() == 1);  // README "Failure semantics": outside Sluice's reach
  for (pid_t p : left) ::kill(-p, SIGKILL);  // setsid made it the leader of its own group
}

// A closed terminal or SSH connection sends SIGHUP: for `sluice run` and for the
// coordinator `sluice submit` leaves behind, it stops the run as SIGTERM does. Left at its
// default, SIGHUP ended the coordinator (exit 129) and left the attempt running unwatched.
TEST_CASE("SIGHUP stops the attempts and leaves the run resumable, as SIGTERM does",
          "[reliability][fault][sighup]") {
  const bool detached = GENERATE(false, true);
  ScratchDir dir;
  write_file(dir / "wf.toml",
             "[workflow]\nname = \"hup\"\n[tasks.long]\n"
             "shell = \"echo x >> executions; echo $$ > task.pid; echo $PPID > coord.pid; "
             "if [ ! -e quick ]; then sleep 60; fi\"\n");
  std::string id;
  pid_t coordinator = -1;
  pid_t pid = -1;
  if (detached) {
    auto submitted = run_sluice({"submit", "wf.toml"}, dir.path());
    REQUIRE(submitted.exit_code == 0);
    id = submitted.out.substr(0, submitted.out.find('\n'));  // submit prints the id alone
  } else {
    pid = spawn_sluice({"run", "-q", "wf.toml"}, dir.path(), dir / "out", dir / "err");
    id = wait_for_run_id(dir / "out");
  }
  REQUIRE(
      eventually([&] { return pid_written(dir / "task.pid") && pid_written(dir / "coord.pid"); },
                 std::chrono::seconds(60)));
  const pid_t task_pid = std::stoi(read_file(dir / "task.pid"));
  coordinator = std::stoi(read_file(dir / "coord.pid"));
  if (!detached) CHECK(coordinator == pid);
  ::kill(coordinator, SIGHUP);
  if (detached) {
    REQUIRE(eventually([&] { return ::kill(coordinator, 0) != 0; }, std::chrono::seconds(40)));
    std::string log;
    for (const auto& e : fs::recursive_directory_iterator(dir.path()))
      if (e.path().filename() == "coordinator.log") log = read_file(e.path());
    CHECK(log.find("stopped (SIGHUP)") != std::string::npos);
  } else {
    CHECK(wait_exit(pid) == 129);
    CHECK(read_file(dir / "out").find("stopped (SIGHUP)") != std::string::npos);
  }
  CHECK(::kill(task_pid, 0) != 0);  // stopped, not left running unwatched

  auto run = get_json(id, dir.path());
  CHECK(run["state"] == "running");
  CHECK(run["coordinator_alive"] == false);
  write_file(dir / "quick", "");
  auto resumed = run_sluice({"resume", "-q", id}, dir.path());
  INFO(resumed.out << resumed.err);
  REQUIRE(resumed.exit_code == 0);
  CHECK(get_json(id, dir.path())["state"] == "succeeded");
  CHECK(read_file(dir / "executions") == "x\nx\n");
}
