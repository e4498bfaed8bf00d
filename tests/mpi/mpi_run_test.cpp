// The `mpi` backend through real `mpirun` jobs (4-5 ranks oversubscribed on 2 cores):
// the same scenarios as on `local` (dynamic children, retries, timeouts), GPU binding,
// a 1,000-point sweep, and a job killed from outside then resumed.
#include <catch2/catch.hpp>

#include <signal.h>

#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string_view>

#include "support/attempt_files.hpp"
#include "support/run_queries.hpp"
#include "support/skip.hpp"

using nlohmann::json;
using namespace sluice::testing;
namespace fs = std::filesystem;

namespace {

// What CI needs for Open MPI (see /work/shared/notes/toolchain.md): root, more ranks
// than cores.
const bool kMpiEnv = [] {
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  ::setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
  return true;
}();

// The mpirun found when the build was configured: without it the tests that start MPI
// jobs cannot run here.
#define REQUIRE_MPIRUN()                                                 \
  do {                                                                   \
    if (::access(SLUICE_MPIRUN, X_OK) != 0)                              \
      SLUICE_SKIP("no mpirun here (configured as '" SLUICE_MPIRUN "')"); \
  } while (0)

// `mpirun -n RANKS PROGRAM ARGS…` with more ranks than cores and no binding: Open MPI
// needs --oversubscribe for that; MPICH's Hydra does it by default and has no such flag.
std::vector<std::string> mpirun_argv(int ranks, const std::string& program,
                                     const std::vector<std::string>& args) {
  std::vector<std::string> argv{SLUICE_MPIRUN};
  if (std::string_view(SLUICE_MPI_FLAVOR) == "openmpi") argv.push_back("--oversubscribe");
  argv.insert(argv.end(), {"--bind-to", "none", "-n", std::to_string(ranks), program});
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

std::vector<std::string> mpirun_argv(int ranks, const std::vector<std::string>& args) {
  return mpirun_argv(ranks, SLUICE_BINARY, args);
}

// A folder whose `mpirun` is the configured one, for what finds mpirun on PATH (a
// sub-workflow's job): as `module load` would put it first. Another implementation's
// mpirun (Debian's alternative may be Open MPI while the build uses MPICH) would start
// the ranks as singletons. A script that execs it, not a symlink: Hydra looks for its
// hydra_pmi_proxy next to the path it was started as.
std::string path_with_configured_mpirun(const ScratchDir& dir) {
  const fs::path bin = dir / "mpi-bin";
  fs::create_directories(bin);
  write_file(bin / "mpirun", "#!/bin/sh\nexec '" SLUICE_MPIRUN "' \"$@\"\n");
  fs::permissions(bin / "mpirun", fs::perms::owner_all | fs::perms::group_read |
                                      fs::perms::group_exec | fs::perms::others_read |
                                      fs::perms::others_exec);
  const char* path = std::getenv("PATH");
  return bin.string() + ":" + (path ? path : "/usr/bin:/bin");
}

// `sluice ARGS… --backend B`, under `mpirun -n RANKS` for "mpi".
CliResult run_on(const std::string& backend, const std::vector<std::string>& args,
                 const fs::path& cwd, int ranks = 4) {
  std::vector<std::string> full = args;
  full.insert(full.end(), {"--backend", backend});
  if (backend == "local") return run_sluice(full, cwd);
  return run_process(mpirun_argv(ranks, full), cwd);
}

json result_of(const json& results, const std::string& task, const std::string& key) {
  const auto& r = results["results"];
  if (!r.contains(task) || !r[task].contains(key))
    FAIL("no result " << task << " " << key << " in " << results.dump());
  return r[task][key];
}

std::size_t lines_in(const fs::path& p) {
  auto text = read_file(p);
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

}  // namespace

TEST_CASE("the seed's map-reduce adds children while it runs and reduces to 15 on local and mpi",
          "[integration][mpi][children]") {
  REQUIRE_MPIRUN();
  const std::string backend = GENERATE("local", "mpi");
  ScratchDir dir;
  auto r = run_on(backend, {"run", kExamples + "mapreduce.toml"}, dir.path());
  INFO(backend << "\n" << r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const std::string id = run_id_of(r);
  CHECK(result_of(results_json(id, dir.path()), "reduce", "total") == 15);
  auto run = get_json(id, dir.path());
  CHECK(run["task_list"].size() == 7);
  CHECK(task_named(run, "gen_nums_4")["state"] == "succeeded");
}

TEST_CASE("retries and a failing task behave the same on local and mpi",
          "[integration][mpi][retries]") {
  REQUIRE_MPIRUN();
  const std::string backend = GENERATE("local", "mpi");
  ScratchDir dir;
  auto r = run_on(backend, {"run", kExamples + "retries.toml"}, dir.path());
  INFO(backend << "\n" << r.out << r.err);
  REQUIRE(r.exit_code == 1);
  auto run = get_json(run_id_of(r), dir.path());
  CHECK(run["state"] == "failed");
  CHECK(task_named(run, "flaky")["state"] == "succeeded");
  CHECK(task_named(run, "flaky")["attempts"] == 2);
  CHECK(task_named(run, "always_fails")["state"] == "failed");
  CHECK(task_named(run, "always_fails")["attempts"] == 2);
  CHECK(task_named(run, "always_fails")["reason"] == "exit code 3");
  CHECK(task_named(run, "never_runs")["state"] == "skipped");
}

TEST_CASE("max_exec_time kills the attempt's process group and crashes fail only the attempt",
          "[integration][mpi][timeout]") {
  REQUIRE_MPIRUN();
  const std::string backend = GENERATE("local", "mpi");
  ScratchDir dir;
  write_file(dir / "wf.toml", R"(
[workflow]
name = "slow"
[tasks.slow]
max_exec_time = "1s"
shell = "sleep 30 & echo $! > child.pid; wait"
[tasks.crash]
shell = "kill -SEGV $$"
[tasks.fine]
shell = "echo fine"
)");
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run_on(backend, {"run", "wf.toml"}, dir.path());
  const auto took = std::chrono::steady_clock::now() - t0;
  INFO(backend << "\n" << r.out << r.err);
  REQUIRE(r.exit_code == 1);
  CHECK(took < std::chrono::seconds(20));
  auto run = get_json(run_id_of(r), dir.path());
  CHECK(task_named(run, "slow")["reason"] == "timed out after 1.0s");
  CHECK(task_named(run, "crash")["state"] == "failed");
  CHECK(task_named(run, "crash")["reason"].get<std::string>().find("SIGSEGV") != std::string::npos);
  CHECK(task_named(run, "fine")["state"] == "succeeded");
  const int child = std::stoi(read_file(dir / "child.pid"));
  CHECK(eventually([&] { return ::kill(child, 0) != 0; }, std::chrono::seconds(5)));
}

TEST_CASE("a 1,000-point sweep and its reduce run under mpirun -n 4", "[integration][mpi][sweep]") {
  REQUIRE_MPIRUN();
  ScratchDir dir;
  auto r = run_on("mpi", {"run", "-q", kExamples + "mpi/sweep1000.toml"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("(1001 tasks, backend mpi, ") != std::string::npos);
  CHECK(result_of(results_json(run_id_of(r), dir.path()), "total", "sum") == 332833500);
}

// Logs in spools, one per worker slot, and attempt directories removed when left empty:
// 2,000 tasks that each print to stdout and stderr add a few dozen inodes, not 8,000.
TEST_CASE("2,000 printing tasks under mpirun -n 3 add at most 50 inodes and their logs are exact",
          "[integration][mpi][spool]") {
  REQUIRE_MPIRUN();
  ScratchDir dir;
  std::string id;
  const std::size_t added = run_and_count_inodes(dir, [&] {
    write_file(dir / "many.toml", sweep_toml("many", 2000, "echo out{i}; echo err{i} >&2"));
    auto r = run_on("mpi", {"run", "-q", "many.toml"}, dir.path(), 3);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    id = run_id_of(r);
  });
  CHECK(added <= 50);
  for (int i : {0, 777, 1999}) {
    auto out = run_sluice({"logs", id, "t." + std::to_string(i)}, dir.path());
    CHECK(out.out == "out" + std::to_string(i) + "\n");
    CHECK(out.err == "err" + std::to_string(i) + "\n");
  }
}

// Each worker rank lends its attempts scratch folders of its own (RUN/scratch/rRANK.*),
// reused while they stay empty: 2,000 silent tasks make no directory per attempt, and
// one that writes into SLUICE_ATTEMPT_DIR finds its files at tasks/TASK/N afterwards.
TEST_CASE("2,000 silent tasks under mpirun -n 3 leave no attempt directory but a writer's",
          "[integration][mpi][spool]") {
  REQUIRE_MPIRUN();
  ScratchDir dir;
  std::string id;
  const std::size_t added = run_and_count_inodes(dir, [&] {
    std::string wf = sweep_toml("silent", 2000, "true");
    wf +=
        "[tasks.writes]\nshell = 'echo kept > \"$SLUICE_ATTEMPT_DIR/note\"; "
        "echo \"$SLUICE_ATTEMPT_DIR\" > \"$SLUICE_ATTEMPT_DIR/where\"'\n";
    write_file(dir / "wf.toml", wf);
    auto r = run_on("mpi", {"run", "-q", "wf.toml"}, dir.path(), 3);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    id = run_id_of(r);
  });
  CHECK(added <= 50);
  const fs::path run = dir / ".sluice" / "runs" / id;
  std::vector<std::string> task_dirs;
  for (const auto& e : fs::directory_iterator(run / "tasks"))
    task_dirs.push_back(e.path().filename());
  CHECK(task_dirs == std::vector<std::string>{"writes"});
  CHECK(read_file(run / "tasks/writes/1/note") == "kept\n");
  // It wrote into a folder a worker rank lent it; that name now links to its directory,
  // and the ranks removed their free folders when the job ended.
  const std::string where = read_file(run / "tasks/writes/1/where");
  CHECK(where.rfind((run / "scratch/r").string(), 0) == 0);
  std::size_t left = 0;
  for (const auto& e : fs::directory_iterator(run / "scratch")) {
    CHECK(fs::is_symlink(e.symlink_status()));
    CHECK(fs::equivalent(e.path(), run / "tasks/writes/1"));
    CHECK(e.path().string() + "\n" == where);
    ++left;
  }
  CHECK(left == 1);
}

// The folder an attempt wrote into is renamed to its directory and the worker lends a
// new one: a leftover process that writes by path reaches its own attempt's directory.
TEST_CASE("on mpi a process that outlives its attempt never writes into the next attempt's folder",
          "[integration][mpi][spool]") {
  REQUIRE_MPIRUN();
  ScratchDir dir;
  write_file(dir / "wf.toml", kLateWriterToml);
  auto r = run_on("mpi", {"run", "-q", "wf.toml"}, dir.path(), 2);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  check_late_writer(dir, run_id_of(r));
}

// 1,000 artifact paths under a home this deep make SLUICE_INPUTS longer than one
// environment string may be (> 100 KB): the list goes to the attempt's `inputs` file, which
// the coordinator must write even where the worker, not it, makes the attempt directory.
TEST_CASE("a reduce over 1,000 inputs whose list is too long for the environment sums them all",
          "[integration][mpi][sweep]") {
  REQUIRE_MPIRUN();
  ScratchDir dir;
  const fs::path deep = dir / std::string(120, 'd');
  fs::create_directories(deep);
  for (const std::string backend : {"mpi", "local"}) {
    auto r = run_on(backend, {"run", "-q", kExamples + "mpi/sweep1000.toml"}, deep);
    INFO(backend << "\n" << r.out << r.err);
    REQUIRE(r.exit_code == 0);
    const std::string run = run_id_of(r);
    CHECK(fs::file_size(deep / ".sluice/runs" / run / "tasks/total/1/inputs") > 100'000);
    CHECK(result_of(results_json(run, deep), "total", "sum") == 332833500);
  }
}

TEST_CASE("GPU tasks on different workers get distinct devices of their node",
          "[integration][mpi][gpu]") {
  REQUIRE_MPIRUN();
  ScratchDir dir;
  fs::create_directories(dir / "seen");
  write_file(dir / "wf.toml", R"(
[workflow]
name = "gpus"
[tasks.g]
matrix = { i = [0, 1, 2, 3] }
gpus = 1
shell = "echo $CUDA_VISIBLE_DEVICES > seen/g{i}; sleep 1"
[tasks.cpu_only]
shell = "echo \"[$CUDA_VISIBLE_DEVICES]\" > seen/cpu"
)");
  // 3 ranks: two workers, each with 2 cores and half of the node's 4 (fake) GPUs.
  ::setenv("SLUICE_GPUS", "4", 1);
  auto r = run_on("mpi", {"run", "wf.toml", "--cpus", "2"}, dir.path(), 3);
  ::unsetenv("SLUICE_GPUS");
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("backend mpi, 4 cpus, 4 gpus") != std::string::npos);
  std::set<std::string> devices;
  for (int i = 0; i < 4; ++i) {
    auto text = read_file(dir / ("seen/g" + std::to_string(i)));
    devices.insert(text.substr(0, text.find('\n')));
  }
  CHECK(devices == std::set<std::string>{"0", "1", "2", "3"});
  CHECK(read_file(dir / "seen/cpu") == "[]\n");
}

TEST_CASE("a task needing more GPUs than any one worker has is refused at validation",
          "[integration][mpi][gpu]") {
  REQUIRE_MPIRUN();
  ScratchDir dir;
  write_file(dir / "wf.toml", R"(
[workflow]
name = "big"
[tasks.g]
gpus = 3
shell = "true"
)");
  // Two workers with 2 of the node's 4 (fake) GPUs each: 4 in all, but 3 on no one worker.
  ::setenv("SLUICE_GPUS", "4", 1);
  auto v = run_on("mpi", {"validate", "wf.toml", "--cpus", "2"}, dir.path(), 3);
  ::unsetenv("SLUICE_GPUS");
  INFO(v.out << v.err);
  CHECK(v.exit_code == 2);  // was 0, and the run failed at launch
  CHECK(v.err.find("task 'g' needs 3 GPUs but no one worker has more than 2") != std::string::npos);
}

TEST_CASE("killing mpirun kills every attempt and resume in a new job reruns only what was lost",
          "[integration][mpi][crash]") {
  REQUIRE_MPIRUN();
  ScratchDir dir;
  fs::create_directories(dir / "executions");
  fs::create_directories(dir / "pids");
  // first ─┬─ long0 ─┬─ last
  //        ├─ long1 ─┤
  //        └─ long2 ─┘     long* wait until the test creates `resumed`
  write_file(dir / "wf.toml", R"(
[workflow]
name = "killed"
[tasks.first]
shell = "echo ran >> executions/first"
[tasks.long]
matrix = { i = [0, 1, 2] }
after = ["first"]
shell = '''
echo ran >> executions/long{i}
echo $$ > pids/long{i}
while [ ! -f resumed ]; do sleep 0.1; done
'''
[tasks.last]
after = ["long"]
shell = "echo ran >> executions/last"
)");
  auto argv = mpirun_argv(4, {"run", "wf.toml", "--backend", "mpi"});
  pid_t mpirun = spawn_process(argv, dir.path(), dir / "out", dir / "err");
  const std::string id = wait_for_run_id(dir / "out");
  REQUIRE(eventually([&] {
    return pid_written(dir / "pids/long0") && pid_written(dir / "pids/long1") &&
           pid_written(dir / "pids/long2");
  }));
  std::vector<int> pids;
  for (int i = 0; i < 3; ++i)
    pids.push_back(std::stoi(read_file(dir / ("pids/long" + std::to_string(i)))));
  ::kill(mpirun, SIGKILL);
  wait_exit(mpirun);

  // The workers kill their attempts when the job goes away; rank 0 dies with it.
  for (int pid : pids)
    CHECK(eventually([&] { return ::kill(pid, 0) != 0; }, std::chrono::seconds(10)));
  REQUIRE(eventually([&] { return get_json(id, dir.path())["coordinator_alive"] == false; }));
  auto before = get_json(id, dir.path());
  CHECK(task_state(before, "first") == "succeeded");
  CHECK(task_state(before, "last") != "succeeded");

  write_file(dir / "resumed", "");
  auto resumed = run_process(mpirun_argv(4, {"resume", id, "--backend", "mpi"}), dir.path());
  INFO(resumed.out << resumed.err);
  REQUIRE(resumed.exit_code == 0);
  auto after = get_json(id, dir.path());
  CHECK(after["state"] == "succeeded");
  CHECK(lines_in(dir / "executions/first") == 1);
  for (int i = 0; i < 3; ++i) {
    const std::string name = "long." + std::to_string(i);
    CHECK(task_state(after, name) == "succeeded");
    CHECK(task_named(after, name)["attempts"] == 2);
    CHECK(lines_in(dir / ("executions/long" + std::to_string(i))) == 2);
  }
  CHECK(lines_in(dir / "executions/last") == 1);
  // The folders the killed job's ranks had lent went (swept by the resumed rank 0 or
  // removed by the ranks themselves); no attempt wrote into one, so none stays.
  CHECK(!fs::exists(dir / ".sluice/runs" / id / "scratch"));
}

TEST_CASE("without mpirun the mpi backend says how to start it and other backends never load MPI",
          "[integration][mpi]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", "[workflow]\nname = \"w\"\n[tasks.a]\nshell = \"true\"\n");
  auto r = run_sluice({"run", "wf.toml", "--backend", "mpi"}, dir.path());
  INFO(r.out << r.err);
  CHECK(r.exit_code == 3);
  CHECK(r.err.find("at least 2 ranks") != std::string::npos);
  auto local = run_sluice({"run", "wf.toml"}, dir.path());
  CHECK(local.exit_code == 0);
  // `sluice` itself (what every task's `sluice put` starts) does not link libmpi.
  auto maps = run_process({"/usr/bin/ldd", SLUICE_BINARY}, dir.path());
  CHECK(maps.out.find("libmpi") == std::string::npos);
}

namespace {

// A 10-point sweep and its sum (1² + … + 10² = 385): what the sub-workflow tests run.
constexpr const char* kInnerSweep = R"toml([workflow]
name = "inner"
[tasks.sq]
matrix = { i = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }
shell = "sluice put v $(( {i} * {i} ))"
[tasks.sum]
after = ["sq"]
shell = "s=0; for v in $(sluice inputs v); do s=$((s + v)); done; sluice put sum $s"
)toml";

//   prep ──> group (inner.toml: 10 + 1 tasks in one MPI job of 3 ranks) ──> report
constexpr const char* kOuter = R"toml([workflow]
name = "outer"
[tasks.prep]
shell = "true"
[tasks.group]
after = ["prep"]
workflow = "inner.toml"
backend = "mpi"
ranks = 3
[tasks.report]
after = ["group"]
shell = "sluice put inner $(sluice get group run)"
)toml";

}  // namespace

TEST_CASE("a sub-workflow task with backend = mpi runs its tasks in one MPI job",
          "[integration][mpi][group]") {
  REQUIRE_MPIRUN();
  ScratchDir dir;
  write_file(dir / "inner.toml", kInnerSweep);
  write_file(dir / "outer.toml", kOuter);
  const std::string old_path = std::getenv("PATH") ? std::getenv("PATH") : "";
  ::setenv("PATH", path_with_configured_mpirun(dir).c_str(), 1);
  auto r = run_sluice({"run", "outer.toml", "--cpus", "2", "-q"}, dir.path());
  ::setenv("PATH", old_path.c_str(), 1);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const std::string id = run_id_of(r);
  auto res = results_json(id, dir.path());
  const std::string inner = result_of(res, "report", "inner").dump();
  CHECK(inner.size() > 2);
  auto logs = run_sluice({"logs", id, "group"}, dir.path());
  CHECK(logs.out.find("11 tasks, backend mpi") != std::string::npos);
  auto all = run_sluice({"results", id, "group", "--json"}, dir.path());
  INFO(all.out);
  CHECK(all.out.find("385") != std::string::npos);
}

TEST_CASE("a program built with the SDK runs its function tasks on MPI ranks",
          "[integration][mpi][sdk]") {
  REQUIRE_MPIRUN();
  ScratchDir dir;
  const std::string app = std::string(SDK_EXAMPLES_DIR) + "/train_and_pick_model";
  auto r = run_process(mpirun_argv(3, app, {"run", "--backend", "mpi"}), dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto local = run_process({app, "run", "--config", "inproc"}, dir.path());
  REQUIRE(local.exit_code == 0);
  // The same final results ("  pick_best = …" lines) on ranks as on threads.
  auto finals = [](const std::string& out) {
    std::string lines;
    std::istringstream in(out);
    for (std::string l; std::getline(in, l);)
      if (l.rfind("  ", 0) == 0) lines += l + "\n";
    return lines;
  };
  CHECK_FALSE(finals(r.out).empty());
  CHECK(finals(r.out) == finals(local.out));
  std::istringstream first(r.out);
  std::string word, id;
  first >> word >> id;
  auto logs = run_sluice({"logs", id, "pick_best"}, dir.path());
  CHECK(logs.out.find("best of 4") != std::string::npos);
}

TEST_CASE("an orchestration's calls run on MPI ranks and give the inproc answer",
          "[integration][mpi][sdk][orchestration]") {
  REQUIRE_MPIRUN();
  ScratchDir dir;
  // The coroutine runs in rank 0's coordinator; its 80 calls are function tasks that
  // the two worker ranks run.
  const std::string app = std::string(SDK_EXAMPLES_DIR) + "/bisection";
  auto r = run_process(mpirun_argv(3, app, {"run", "--backend", "mpi"}), dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto inproc = run_process({app, "run", "--config", "inproc", "--no-cache"}, dir.path());
  REQUIRE(inproc.exit_code == 0);
  auto answer = [](const std::string& out) {
    const std::string key = "  bisect.return = ";
    const auto at = out.find(key);
    return at == std::string::npos
               ? std::string()
               : out.substr(at + key.size(), out.find('\n', at) - at - key.size());
  };
  CHECK_FALSE(answer(r.out).empty());
  CHECK(answer(r.out) == answer(inproc.out));
  std::istringstream first(r.out);
  std::string word, id;
  first >> word >> id;
  auto got = run_sluice({"get", id, "--json"}, dir.path());
  REQUIRE(got.exit_code == 0);
  const json doc = json::parse(got.out);
  std::size_t calls = 0;
  for (const auto& t : doc["task_list"])
    if (t["name"].get<std::string>().find(".call-") != std::string::npos) {
      ++calls;
      CHECK(t["state"] == "succeeded");
    }
  CHECK(calls == 80);  // 20 rounds of 4
  CHECK(doc["backend"] == "mpi");
}
