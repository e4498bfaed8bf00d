// `sluice run --backend slurm -O driver=cli` when squeue hangs for ever (a busy or
// restarting slurmctld): fake sbatch / squeue / scancel first on PATH, no cluster
// needed. The run must neither hang nor lose its attempts: jobs that recorded their
// exit status finish, and Ctrl-C still cancels.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "support/fake_commands.hpp"
#include "support/run_queries.hpp"

using namespace sluice::testing;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// Fake Slurm commands in a directory put first on PATH (inherited by the sluice
// processes this test starts). sbatch runs the job script (a file, or stdin) at once, in
// a session of its own, with the script's --output and --error, and records its pid;
// scancel kills those sessions; squeue never answers.
class FakeSlurm : public FakeCommands {
 public:
  explicit FakeSlurm(const fs::path& where) : FakeCommands(where) {
    const std::string d = dir().string();
    command("sbatch",
            "for a; do script=\"$a\"; done\n"
            // No file named: the script comes on stdin, as Sluice sends it.
            "if [ ! -f \"$script\" ]; then script='" +
                d +
                "/script.'$$; cat > \"$script\"; fi\n"
                "o=$(sed -n \"s/^#SBATCH --output='\\(.*\\)'$/\\1/p\" \"$script\")\n"
                "e=$(sed -n \"s/^#SBATCH --error='\\(.*\\)'$/\\1/p\" \"$script\")\n"
                "setsid /bin/bash \"$script\" >\"${o:-/dev/null}\" 2>\"${e:-/dev/null}\" "
                "</dev/null &\n"
                "echo $! >> '" +
                d +
                "/pids'\n"
                "echo \"$((1000 + $(wc -l < '" +
                d + "/pids')))\"");
    command("squeue", "echo called >> '" + d + "/squeue_calls'\nexec sleep 1000");
    command("scancel", "echo \"$@\" >> '" + d +
                           "/scancel_calls'\n"
                           "for p in $(cat '" +
                           d +
                           "/pids'); do kill -TERM -\"$p\" 2>/dev/null; done\n"
                           "exit 0");
    command("sacct", "exec sleep 1000");
    command("scontrol", "exec sleep 1000");
  }
  ~FakeSlurm() {
    std::istringstream pids(read_file(dir() / "pids"));
    for (std::string p; pids >> p;) ::kill(-std::stoi(p), SIGKILL);
  }
};

const std::vector<std::string> kSlurmCli = {
    "--backend",           "slurm", "-O",        "driver=cli", "-O", "command_timeout=500ms", "-O",
    "poll_interval=200ms", "-O",    "arrays=off"};

std::vector<std::string> run_args(const std::string& file) {
  std::vector<std::string> args{"run", file};
  args.insert(args.end(), kSlurmCli.begin(), kSlurmCli.end());
  return args;
}

}  // namespace

TEST_CASE("a run whose squeue hangs still finishes, from the jobs' own exit status",
          "[integration][slurm-cli]") {
  ScratchDir dir;
  FakeSlurm fake(dir / "bin");
  write_file(dir / "wf.toml",
             "[workflow]\nname = \"w\"\n"
             "[tasks.ok]\nshell = \"echo fine\"\n"
             "[tasks.bad]\nshell = \"exit 3\"\nretries = 0\n");
  const auto start = Clock::now();
  pid_t pid = spawn_sluice(run_args("wf.toml"), dir.path(), dir / "out", dir / "err");
  const int code =
      exit_within(pid, std::chrono::seconds(60), "sluice still running: it hangs on squeue");
  const std::string err = read_file(dir / "err");
  INFO(read_file(dir / "out") << err);
  CHECK(Clock::now() - start < std::chrono::seconds(30));
  CHECK(fake.called("squeue"));
  CHECK(code == 1);  // `bad` failed
  // Said once, naming the command and what happened.
  CHECK(err.find("squeue timed out after 500ms (killed) (tried 3 times)") != std::string::npos);
  const std::string id = wait_for_run_id(dir / "out");
  auto run = get_json(id, dir.path());
  CHECK(task_state(run, "ok") == "succeeded");
  CHECK(task_state(run, "bad") == "failed");
  CHECK(task_named(run, "bad")["exit_code"] == 3);
}

TEST_CASE("Ctrl-C cancels a run whose squeue hangs", "[integration][slurm-cli]") {
  ScratchDir dir;
  FakeSlurm fake(dir / "bin");
  write_file(dir / "wf.toml",
             "[workflow]\nname = \"w\"\n[tasks.long]\nshell = \"touch started; sleep 60\"\n");
  pid_t pid = spawn_sluice(run_args("wf.toml"), dir.path(), dir / "out", dir / "err");
  const std::string id = wait_for_run_id(dir / "out");
  REQUIRE(eventually([&] { return fs::exists(dir / "started"); }));
  ::kill(pid, SIGINT);
  const auto start = Clock::now();
  const int code =
      exit_within(pid, std::chrono::seconds(60), "sluice still running: it hangs on squeue");
  INFO(read_file(dir / "out") << read_file(dir / "err"));
  // At most one query in flight (3 x 500 ms + backoff) and the scancel after it.
  CHECK(Clock::now() - start < std::chrono::seconds(20));
  CHECK(code == 1);
  CHECK(fake.called("scancel"));
  auto run = get_json(id, dir.path());
  CHECK(run["state"] == "cancelled");
  CHECK(task_state(run, "long") == "cancelled");
}
