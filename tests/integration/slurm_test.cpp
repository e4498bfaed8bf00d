// The `slurm` backend against the real single-node cluster of scripts/slurm-up.sh (as
// scripts/test.sh brings it up): examples through both drivers, sweeps as job arrays,
// Slurm's own time limit, fake GPUs, cancel, and resume after kill -9 re-attaching to
// live jobs instead of submitting them again.
//
// Without a cluster every test is reported as skipped (SLUICE-SKIP), except under CI=true, where a
// missing cluster fails them.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "support/run_queries.hpp"
#include "support/slurm.hpp"

using namespace sluice::testing;
namespace fs = std::filesystem;

namespace {

struct AttemptRow {
  std::string task;
  int attempt = 0;
  std::string state, reason, handle;
};

// Every attempt of every run in the scratch directory's store.
std::vector<AttemptRow> attempts(const ScratchDir& dir) {
  const std::string out = shell_output(
      "sqlite3 -separator '|' " + (dir / ".sluice/store.db").string() +
      " \"select t.name, a.attempt, a.state, replace(a.reason, '|', '/'), a.handle from attempts "
      "a join tasks t on t.run = a.run and t.idx = a.task\"");
  std::vector<AttemptRow> rows;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    AttemptRow r;
    std::istringstream f(line);
    std::string attempt;
    std::getline(f, r.task, '|');
    std::getline(f, attempt, '|');
    std::getline(f, r.state, '|');
    std::getline(f, r.reason, '|');
    std::getline(f, r.handle);
    r.attempt = std::atoi(attempt.c_str());
    rows.push_back(r);
  }
  return rows;
}

// "slurm:123_4:/dir" -> "123"
std::string job_of(const std::string& handle) {
  std::string key = handle.substr(6, handle.find(':', 6) - 6);
  return key.substr(0, key.find('_'));
}

void run_examples(const std::string& driver) {
  ScratchDir dir;
  for (std::string ex : {"diamond.toml", "gen_sum.toml", "results_file.toml"}) {
    auto r = run_sluice({"run", kExamples + ex, "--backend", "slurm", "-O", "driver=" + driver,
                         "-O", "poll_interval=200ms", "-q"},
                        dir.path());
    INFO(ex << "\n" << r.out << r.err);
    REQUIRE(r.exit_code == 0);
    auto run = get_json(run_id_of(r), dir.path());
    CHECK(run["backend"] == "slurm");
    for (const auto& t : run["task_list"]) CHECK(t["state"] == "succeeded");
    if (ex == "gen_sum.toml") {
      auto res = run_sluice({"results", run_id_of(r)}, dir.path());
      CHECK(res.out.find("sum_nums  sum  3") != std::string::npos);
    }
    if (ex == "results_file.toml") {  // values passed through $SLUICE_RESULTS from the jobs
      auto res = results_json(run_id_of(r), dir.path());
      CHECK(res["results"]["summary"]["total"] == 30);
    }
  }
  for (const auto& a : attempts(dir)) CHECK(a.handle.rfind("slurm:", 0) == 0);
}

}  // namespace

TEST_CASE("examples run to correct results on Slurm through libslurm", "[slurm]") {
  REQUIRE_SLURM();
#ifndef SLUICE_WITH_LIBSLURM
  SLUICE_SKIP("this sluice was built without libslurm");
#endif
  // libslurm is opened on first use, never linked: no other command pays for loading it.
  CHECK(shell_output("ldd " SLUICE_BINARY).find("libslurm") == std::string::npos);
  run_examples("libslurm");
}

TEST_CASE("examples run to correct results on Slurm through the command-line tools", "[slurm]") {
  REQUIRE_SLURM();
  run_examples("cli");
}

TEST_CASE("a 200-instance sweep is submitted as job arrays, not 200 jobs", "[slurm]") {
  REQUIRE_SLURM();
  ScratchDir dir;
  std::string values;
  for (int i = 0; i < 200; ++i) values += (i ? ", " : "") + std::to_string(i);
  write_file(dir / "wf.toml", "[workflow]\nname = \"sweep200\"\n[tasks.t]\nmatrix = { i = [" +
                                  values + "] }\nshell = \"sluice put i {i}\"\n");
  auto r = run_sluice({"run", "wf.toml", "--backend", "slurm", "-q"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto rows = attempts(dir);
  REQUIRE(rows.size() == 200);
  std::set<std::string> jobs;
  for (const auto& a : rows) jobs.insert(job_of(a.handle));
  CHECK(jobs.size() <= 2);
  auto res = results_json(run_id_of(r), dir.path());
  CHECK(res.dump().find("\"t.199\"") != std::string::npos);
}

TEST_CASE("a sub-workflow marked backend = mpi runs as one Slurm job", "[slurm][mpi]") {
  REQUIRE_SLURM();
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  ScratchDir dir;
  // 40 sweep points and their sum inside; prep ──> group ──> report outside.
  std::string values;
  for (int i = 1; i <= 40; ++i) values += (i > 1 ? ", " : "") + std::to_string(i);
  write_file(dir / "inner.toml",
             "[workflow]\nname = \"inner\"\n[tasks.sq]\nmatrix = { i = [" + values +
                 "] }\nshell = 'echo v={i} >> \"$SLUICE_RESULTS\"'\n[tasks.sum]\nafter = "
                 "[\"sq\"]\n"
                 "shell = \"s=0; for v in $(sluice inputs v); do s=$((s + v)); done; sluice put "
                 "sum $s\"\n");
  write_file(dir / "outer.toml",
             "[workflow]\nname = \"outer_mpi_group\"\n[tasks.prep]\nshell = \"true\"\n"
             "[tasks.group]\nafter = [\"prep\"]\nworkflow = \"inner.toml\"\nbackend = "
             "\"mpi\"\nranks = 3\nnodes = 1\n[tasks.report]\nafter = [\"group\"]\nshell = \"sluice "
             "put inner $(sluice get group run)\"\n");
  auto r = run_sluice({"run", "outer.toml", "--backend", "slurm", "-q"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  // Three Slurm jobs in all: the 41 tasks inside the group cost the controller one.
  auto rows = attempts(dir);
  std::set<std::string> jobs;
  for (const auto& a : rows)
    if (a.handle.rfind("slurm:", 0) == 0) jobs.insert(job_of(a.handle));
  CHECK(rows.size() == 3);
  CHECK(jobs.size() == 3);
  auto group = run_sluice({"results", run_id_of(r), "group", "--json"}, dir.path());
  CHECK(group.out.find("820") != std::string::npos);  // 1 + 2 + … + 40
  auto logs = run_sluice({"logs", run_id_of(r), "group"}, dir.path());
  CHECK(logs.out.find("41 tasks, backend mpi") != std::string::npos);
}

TEST_CASE("a job past its time limit ends as TIMEOUT and is retried", "[slurm][slow]") {
  REQUIRE_SLURM();
  ScratchDir dir;
  write_file(dir / "wf.toml", R"([workflow]
name = "timeout"
[tasks.slow]
shell = "sleep 120"
max_exec_time = "1m"
retries = 1
)");
  auto r = run_sluice({"run", "wf.toml", "--backend", "slurm", "-q"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 1);
  auto rows = attempts(dir);
  REQUIRE(rows.size() == 2);
  for (const auto& a : rows) {
    INFO(a.reason);
    CHECK(a.state == "failed");
    CHECK(a.reason.find("TIMEOUT") != std::string::npos);
  }
}

TEST_CASE("a task asking for a GPU gets one from Slurm's GRES", "[slurm]") {
  REQUIRE_SLURM();
  ScratchDir dir;
  write_file(dir / "wf.toml", R"([workflow]
name = "gpu"
[tasks.g]
gpus = 1
shell = "test -n \"$CUDA_VISIBLE_DEVICES\" && sluice put devices \"$CUDA_VISIBLE_DEVICES\""
)");
  auto r = run_sluice({"run", "wf.toml", "--backend", "slurm", "-q"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  // The job's script is kept in the run's submission log, not in the attempt directory.
  auto script = run_sluice({"job-script", run_id_of(r), "g"}, dir.path());
  INFO(script.err);
  REQUIRE(script.exit_code == 0);
  const std::string& job = script.out;
  CHECK(job.find("#SBATCH --gres=gpu:1") != std::string::npos);
  auto res = run_sluice({"results", run_id_of(r)}, dir.path());
  CHECK(res.out.find("devices") != std::string::npos);
}

TEST_CASE("cancelling a run scancels every job it submitted", "[slurm]") {
  REQUIRE_SLURM();
  ScratchDir dir;
  write_file(dir / "wf.toml", R"([workflow]
name = "cancel"
[tasks.long]
matrix = { i = [1, 2, 3] }
shell = "sleep 100"
[tasks.big]
cpus = 8
shell = "sleep 100"
)");
  const pid_t pid = spawn_sluice({"run", "wf.toml", "--backend", "slurm", "-q"}, dir.path(),
                                 dir / "out", dir / "err");
  const std::string id = wait_for_run_id(dir / "out");
  REQUIRE(eventually([&] { return attempts(dir).size() == 4; }));
  std::set<std::string> jobs;
  for (const auto& a : attempts(dir)) jobs.insert(job_of(a.handle));
  auto c = run_sluice({"cancel", id}, dir.path());
  INFO(c.out << c.err);
  wait_exit(pid);
  std::string ids;
  for (const auto& j : jobs) ids += (ids.empty() ? "" : ",") + j;
  CHECK(eventually(
      [&] { return shell_output("squeue -h -t PD,R -j " + ids + " 2>/dev/null").empty(); }));
  CHECK(get_json(id, dir.path())["state"] == "cancelled");
}

TEST_CASE("resume after kill -9 re-attaches to queued and running jobs without resubmitting",
          "[slurm]") {
  REQUIRE_SLURM();
  ScratchDir dir;
  // Two sleepers fit on the 8-cpu test node at once, the other two queue behind them;
  // `last` starts only after all four, so the resumed coordinator must still launch it.
  write_file(dir / "wf.toml", R"([workflow]
name = "resume"
[tasks.s]
matrix = { i = [1, 2, 3, 4] }
cpus = 3
shell = "sleep 4 && sluice put i {i}"
[tasks.last]
after = ["s"]
shell = "sluice put done 1"
)");
  const pid_t pid = spawn_sluice({"run", "wf.toml", "--backend", "slurm", "-q"}, dir.path(),
                                 dir / "out", dir / "err");
  const std::string id = wait_for_run_id(dir / "out");
  REQUIRE(eventually([&] { return attempts(dir).size() == 4; }));
  REQUIRE(
      eventually([&] { return !shell_output("squeue -h -t R -n sluice:" + id + ":s").empty(); }));
  ::kill(pid, SIGKILL);
  wait_exit(pid);
  auto r = run_sluice({"resume", id, "-q"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto rows = attempts(dir);
  CHECK(rows.size() == 5);  // one attempt per task: nothing was submitted twice
  std::set<std::string> jobs;
  for (const auto& a : rows) {
    CHECK(a.attempt == 1);
    CHECK(a.state == "succeeded");
    jobs.insert(job_of(a.handle));
  }
  CHECK(jobs.size() == 2);  // the array of four and `last`
}

TEST_CASE("sluice sbatch runs the coordinator itself as a Slurm job", "[slurm]") {
  REQUIRE_SLURM();
  ScratchDir dir;
  auto dry = run_sluice({"sbatch", kExamples + "diamond.toml", "--dry-run"}, dir.path());
  REQUIRE(dry.exit_code == 0);
  CHECK(dry.out.find("--backend slurm") != std::string::npos);
  auto r = run_sluice({"sbatch", kExamples + "diamond.toml", "--", "--time=5"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const auto pos = r.out.find("run ");
  REQUIRE(pos != std::string::npos);
  const std::string id = r.out.substr(pos + 4, 26);
  CHECK(eventually(
      [&] {
        auto g = run_sluice({"get", id, "--json"}, dir.path());
        return g.exit_code == 0 && nlohmann::json::parse(g.out)["state"] == "succeeded";
      },
      std::chrono::seconds(60)));
}

TEST_CASE("the cross-platform example places tasks by executor and per-task partition",
          "[slurm][examples]") {
  REQUIRE_SLURM();
  ScratchDir dir;
  auto r = run_sluice({"run", kExamples + "slurm/cross_platform.toml", "--backend", "slurm", "-O",
                       "executor.cpu=debug", "-O", "executor.gpu=debug", "-q"},
                      dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto logs = run_sluice({"logs", run_id_of(r), "store"}, dir.path());
  CHECK(logs.out.find("stored on long") != std::string::npos);
  auto sweep = run_sluice({"run", kExamples + "slurm/sweep100.toml", "--backend", "slurm", "-q"},
                          dir.path());
  INFO(sweep.out << sweep.err);
  REQUIRE(sweep.exit_code == 0);
  auto res = run_sluice({"results", run_id_of(sweep)}, dir.path());
  CHECK(res.out.find("instances  100") != std::string::npos);
}

TEST_CASE("a job pending past max_wait_time is cancelled with Slurm's pending reason", "[slurm]") {
  REQUIRE_SLURM();
  ScratchDir dir;
  write_file(dir / "wf.toml", R"([workflow]
name = "held"
[tasks.held]
shell = "true"
max_wait_time = "3s"
[tasks.held.slurm]
extra = ["--hold"]
)");
  auto r = run_sluice({"run", "wf.toml", "--backend", "slurm", "-q"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 1);
  auto run = get_json(run_id_of(r), dir.path());
  const std::string reason = task_named(run, "held")["reason"];
  CHECK(reason.find("no slot: Slurm pending reason") != std::string::npos);
  CHECK(reason.find("Held") != std::string::npos);
}

TEST_CASE("max_queued holds requests in the backend and submits them as jobs finish", "[slurm]") {
  REQUIRE_SLURM();
  ScratchDir dir;
  write_file(dir / "wf.toml", R"([workflow]
name = "queued"
[tasks.t]
matrix = { i = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] }
shell = "sluice put i {i}"
)");
  auto r = run_sluice(
      {"run", "wf.toml", "--backend", "slurm", "-O", "max_queued=5", "-O", "driver=cli", "-q"},
      dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto rows = attempts(dir);
  REQUIRE(rows.size() == 12);
  int held = 0;
  for (const auto& a : rows) {
    CHECK(a.state == "succeeded");
    if (a.handle.rfind("slurm:held:", 0) == 0) ++held;
  }
  CHECK(held == 7);
  // Every attempt, held or not, ended up with a job id of its own (recorded in the run's
  // submission log: "K <tab> KEY <tab> DIR").
  const auto run_dir = dir / (".sluice/runs/" + run_id_of(r));
  std::map<std::string, std::string> job_of_dir;
  std::istringstream log(read_file(run_dir / "slurm" / "submissions"));
  for (std::string line; std::getline(log, line);)
    if (line.rfind("K\t", 0) == 0) {
      const auto tab = line.find('\t', 2);
      job_of_dir[line.substr(tab + 1)] = line.substr(2, tab - 2);
    }
  for (int i = 0; i < 12; ++i) {
    const std::string id =
        job_of_dir[(run_dir / "tasks" / ("t." + std::to_string(i)) / "1").string()];
    CHECK(!id.empty());
  }
}

namespace {

// Every file under `root`, directories included (each is an inode).
std::vector<fs::path> entries_under(const fs::path& root) {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) out.push_back(e.path());
  return out;
}

}  // namespace

// 50 tasks as 50 Slurm jobs, then as one array: per job the run gains Slurm's own two
// output files (the attempt's stdout and stderr) in the attempt's directory and nothing
// else of its own, so at most 4 inodes per task (task directory, attempt directory,
// stdout, stderr) and 20 for the run itself (store files, spools, slurm/submissions, the
// values file). Before, each attempt also had job.sh, exit_status, slurm_intent and
// slurm_job_id (8 per task), and each array element an empty %A_%a.out.
TEST_CASE("Slurm jobs add no file of their own beside Slurm's output files", "[slurm]") {
  REQUIRE_SLURM();
  ScratchDir dir;
  write_file(dir / "wf.toml", R"([workflow]
name = "files"
[tasks.t]
matrix = { i = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49] }
shell = "echo out{i}; printf 'err{i} no newline' >&2; test {i} -ne 7 || exit 3"
)");
  constexpr std::size_t kTasks = 50, kPerTask = 4, kPerRun = 20;
  for (const std::string arrays : {"off", "on"}) {
    INFO("arrays=" << arrays);
    auto r = run_sluice(
        {"run", "wf.toml", "--backend", "slurm", "-O", "arrays=" + arrays, "--no-cache", "-q"},
        dir.path());
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 1);  // t.7 exits 3
    const std::string id = run_id_of(r);
    const fs::path run_dir = dir / (".sluice/runs/" + id);
    const auto all = entries_under(run_dir);
    CHECK(all.size() <= kTasks * kPerTask + kPerRun);
    std::size_t outputs = 0;
    for (const auto& p : all) {
      const auto rel = p.lexically_relative(run_dir).string();
      if (rel.rfind("tasks/", 0) != 0 || !fs::is_regular_file(p)) continue;
      INFO(rel);
      CHECK((p.filename() == "stdout" || p.filename() == "stderr"));
      ++outputs;
    }
    CHECK(outputs == 2 * kTasks);
    CHECK_FALSE(fs::exists(run_dir / "slurm" / "array-t-1-1.sh"));
    // The exit status came from the job (t.7: 3) and every log reads as the task wrote
    // it: the job's exit-status record at the end of its stderr file is not shown.
    auto run = get_json(id, dir.path());
    CHECK(task_state(run, "t.7") == "failed");
    CHECK(task_state(run, "t.8") == "succeeded");
    auto err = run_sluice({"logs", id, "t.7", "--stderr"}, dir.path());
    CHECK(err.err == "err7 no newline");
    CHECK(read_file(run_dir / "tasks/t.7/1/stderr") == "err7 no newline\x1fsluice-exit-status 3\n");
    auto out = run_sluice({"logs", id, "t.12", "--stdout"}, dir.path());
    CHECK(out.out == "out12\n");
    // What ran can be seen and resubmitted.
    auto script = run_sluice({"job-script", id, "t.12"}, dir.path());
    CHECK(script.exit_code == 0);
    CHECK(script.out.rfind("#!/bin/bash\n#SBATCH --job-name=", 0) == 0);
    CHECK(script.out.find("echo out12") != std::string::npos);
    if (arrays == "on") CHECK(script.out.find("#SBATCH --array=12\n") != std::string::npos);
  }
}
