// `sluice run --backend slurm -O driver=cli` on a sick cluster, with fake sbatch, squeue
// and scancel first on PATH (no cluster needed): `sluice cancel` and SIGTERM take effect
// while an squeue hangs, well before its deadline; and a coordinator killed while sbatch
// had not answered yet does not run the task twice after `resume`.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support/fake_commands.hpp"
#include "support/run_queries.hpp"

using namespace sluice::testing;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// Jobs are numbered from 1001 in the order of the lines of `submitted` (their scripts).
// sbatch starts the script at once in a session of its own (pid in pid.ID), then answers,
// or hangs without answering while the file `sbatch_hangs` exists (slurmctld took the job,
// the answer is late). squeue hangs while `squeue_hangs` exists; otherwise it lists every
// job, RUNNING while its session lives, else COMPLETED, and with -n NAME the jobs of that
// name (from the script's --job-name line) with their script, or with their comment
// when asked for %k. scancel kills sessions.
class SickSlurm : public FakeCommands {
 public:
  explicit SickSlurm(const fs::path& where) : FakeCommands(where) {
    const std::string d = "D='" + dir().string() + "'\n";
    command("sbatch", d + "for a; do script=\"$a\"; done\n"
                          // No file named: the script comes on stdin, as Sluice sends it.
                          "if [ ! -f \"$script\" ]; then script=\"$D/script.$$\"; "
                          "cat > \"$script\"; fi\n"
                          "echo \"$script\" >> \"$D/submitted\"\n"
                          "id=$((1000 + $(wc -l < \"$D/submitted\")))\n"
                          "o=$(sed -n \"s/^#SBATCH --output='\\(.*\\)'$/\\1/p\" \"$script\")\n"
                          "e=$(sed -n \"s/^#SBATCH --error='\\(.*\\)'$/\\1/p\" \"$script\")\n"
                          "setsid /bin/bash \"$script\" >\"${o:-/dev/null}\" "
                          "2>\"${e:-/dev/null}\" </dev/null &\n"
                          "echo $! > \"$D/pid.$id\"\n"
                          "if [ -e \"$D/sbatch_hangs\" ]; then echo $$ > \"$D/sbatch.pid\"; "
                          "exec sleep 60; fi\n"
                          "echo \"$id\"");
    command("squeue",
            d + "echo \"$@\" >> \"$D/squeue_calls\"\n"
                "[ -e \"$D/squeue_hangs\" ] && exec sleep 1000\n"
                "name=; prev=\n"
                "for a; do [ \"$prev\" = -n ] && name=\"$a\"; prev=\"$a\"; done\n"
                "[ -e \"$D/submitted\" ] || exit 0\n"
                "id=1000\n"
                "while read -r script; do id=$((id + 1))\n"
                "  if [ -n \"$name\" ]; then\n"
                "    n=$(sed -n \"s/^#SBATCH --job-name='\\(.*\\)'$/\\1/p\" \"$script\")\n"
                "    c=$(sed -n \"s/^#SBATCH --comment='\\(.*\\)'$/\\1/p\" \"$script\")\n"
                "    case \"$*\" in *'%k'*) told=\"$c\" ;; *) told=\"$script\" ;; esac\n"
                "    [ \"$n\" = \"$name\" ] && echo \"$id|$told\"\n"
                "  elif kill -0 \"$(cat \"$D/pid.$id\")\" 2>/dev/null; then\n"
                "    echo \"$id|RUNNING|None|$id\"\n"
                "  else echo \"$id|COMPLETED|None|$id\"; fi\n"
                "done < \"$D/submitted\"\n"
                "exit 0");
    command("scancel", d + "echo \"$@\" >> \"$D/scancel_calls\"\n"
                           "for id; do [ -e \"$D/pid.$id\" ] && "
                           "kill -TERM -\"$(cat \"$D/pid.$id\")\" 2>/dev/null; done\n"
                           "exit 0");
    command("sacct", "exit 1");
    command("scontrol", "exit 1");
  }
  ~SickSlurm() {
    for (const auto& e : fs::directory_iterator(dir())) {
      const std::string n = e.path().filename().string();
      if (n.rfind("pid.", 0) == 0) ::kill(-std::stoi(read_file(e.path())), SIGKILL);
    }
    if (pid_written(dir() / "sbatch.pid"))
      ::kill(std::stoi(read_file(dir() / "sbatch.pid")), SIGKILL);
  }
  void set(const std::string& flag, bool on) {
    if (on)
      write_file(dir() / flag, "");
    else
      fs::remove(dir() / flag);
  }
  int submissions() const {
    std::istringstream in(read_file(dir() / "submitted"));
    int n = 0;
    for (std::string line; std::getline(in, line);) ++n;
    return n;
  }
};

// A deadline far longer than the test waits: what ends the wait is the signal or the
// cancel request, not the command's deadline.
const std::vector<std::string> kSlowSlurmCli = {
    "--backend",           "slurm", "-O",        "driver=cli", "-O", "command_timeout=60s", "-O",
    "poll_interval=200ms", "-O",    "arrays=off"};

pid_t start_run(const ScratchDir& dir, const std::string& shell) {
  write_file(dir / "wf.toml",
             "[workflow]\nname = \"w\"\n[tasks.long]\nshell = \"" + shell + "\"\n");
  std::vector<std::string> args{"run", "wf.toml"};
  args.insert(args.end(), kSlowSlurmCli.begin(), kSlowSlurmCli.end());
  return spawn_sluice(args, dir.path(), dir / "out", dir / "err");
}

}  // namespace

TEST_CASE("sluice cancel takes effect while squeue hangs", "[integration][slurm-cli]") {
  ScratchDir dir;
  SickSlurm fake(dir / "bin");
  pid_t pid = start_run(dir, "echo $$ > task.pid; sleep 60");
  const std::string id = wait_for_run_id(dir / "out");
  REQUIRE(eventually([&] { return pid_written(dir / "task.pid"); }));
  fake.set("squeue_hangs", true);
  REQUIRE(eventually([&] { return fake.called("squeue"); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // one is outstanding now
  const auto start = Clock::now();
  auto cancelled = run_sluice({"cancel", id}, dir.path());
  INFO(cancelled.out << cancelled.err << read_file(dir / "err"));
  CHECK(cancelled.exit_code == 0);
  // The outstanding squeue is given kStoppingGrace (2 s), then the scancel, then one more
  // squeue; not its 60 s deadline, nor 3 tries of it.
  CHECK(Clock::now() - start < std::chrono::seconds(15));
  CHECK(exit_within(pid, std::chrono::seconds(30)) == 1);
  CHECK(fake.called("scancel"));
  CHECK(read_file(fake.dir() / "scancel_calls").find("1001") != std::string::npos);
  CHECK(eventually([&] { return process_gone(std::stoi(read_file(dir / "task.pid"))); }));
  auto run = get_json(id, dir.path());
  CHECK(run["state"] == "cancelled");
  CHECK(task_state(run, "long") == "cancelled");
}

TEST_CASE("SIGTERM stops a run while squeue hangs, and leaves it resumable",
          "[integration][slurm-cli]") {
  ScratchDir dir;
  SickSlurm fake(dir / "bin");
  pid_t pid = start_run(dir, "echo $$ > task.pid; sleep 60");
  const std::string id = wait_for_run_id(dir / "out");
  REQUIRE(eventually([&] { return pid_written(dir / "task.pid"); }));
  fake.set("squeue_hangs", true);
  REQUIRE(eventually([&] { return fake.called("squeue"); }));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const auto start = Clock::now();
  ::kill(pid, SIGTERM);
  const int code = exit_within(pid, std::chrono::seconds(40));
  INFO(read_file(dir / "out") << read_file(dir / "err"));
  CHECK(code == 143);
  CHECK(Clock::now() - start < std::chrono::seconds(15));
  CHECK(read_file(dir / "out").find("stopped (SIGTERM)") != std::string::npos);
  CHECK(fake.called("scancel"));
  CHECK(get_json(id, dir.path())["state"] == "running");
}

// The coordinator dies (kill -9) after slurmctld took the job and before sbatch answered:
// nothing about the job is in the store. `resume` finds it by its name and script and
// watches it instead of submitting the task again.
TEST_CASE("a coordinator killed mid-submit: resume finds the job, the task runs once",
          "[integration][slurm-cli]") {
  ScratchDir dir;
  SickSlurm fake(dir / "bin");
  fake.set("sbatch_hangs", true);
  pid_t pid = start_run(dir, "echo x >> executions; sleep 1");
  const std::string id = wait_for_run_id(dir / "out");
  REQUIRE(eventually([&] { return pid_written(fake.dir() / "sbatch.pid"); }));
  ::kill(pid, SIGKILL);
  exit_within(pid, std::chrono::seconds(10));
  ::kill(std::stoi(read_file(fake.dir() / "sbatch.pid")), SIGKILL);
  fake.set("sbatch_hangs", false);
  REQUIRE(fake.submissions() == 1);

  auto resumed = run_sluice({"resume", id}, dir.path());
  INFO(read_file(dir / "err") << resumed.out << resumed.err);
  CHECK(resumed.exit_code == 0);
  CHECK(fake.submissions() == 1);  // not submitted again
  CHECK(read_file(dir / "executions") == "x\n");
  auto run = get_json(id, dir.path());
  CHECK(run["state"] == "succeeded");
  CHECK(task_named(run, "long")["attempts"] == 1);
}
