// Pilot mode (`--backend slurm -O mode=pilot`) against the real single-node cluster of
// scripts/slurm-up.sh: a big sweep through at most two allocations, an allocation
// scancelled mid-run, a worker with the wrong secret, idle workers leaving.
//
// Without a cluster every test is reported as skipped (SLUICE-SKIP), except under CI=true.
#include <catch2/catch.hpp>

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "support/attempt_files.hpp"
#include "support/run_queries.hpp"
#include "support/slurm.hpp"

using namespace sluice::testing;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> pilot_args(std::vector<std::string> extra) {
  std::vector<std::string> a{
      "--backend", "slurm",         "-O", "mode=pilot", "-O", "poll_interval=500ms",
      "-O",        "time_limit=10m"};
  for (auto& e : extra) {
    a.push_back("-O");
    a.push_back(std::move(e));
  }
  return a;
}

std::vector<std::string> run_args(const std::string& file, std::vector<std::string> extra) {
  std::vector<std::string> a{"run", file, "-q"};
  auto p = pilot_args(std::move(extra));
  a.insert(a.end(), p.begin(), p.end());
  return a;
}

nlohmann::json workers_json(const std::string& run, const fs::path& cwd) {
  auto r = run_sluice({"workers", run, "--json"}, cwd);
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  return j.is_discarded() ? nlohmann::json::object() : j;
}

nlohmann::json state_file(const fs::path& run_dir) {
  std::ifstream in(run_dir / "pilot/workers.json");
  if (!in) return nlohmann::json::object();
  auto j = nlohmann::json::parse(in, nullptr, false);
  return j.is_discarded() ? nlohmann::json::object() : j;
}

// The run directory of the only run in `dir`'s store, once it exists.
fs::path only_run_dir(const ScratchDir& dir) {
  fs::path runs = dir / ".sluice/runs";
  if (!fs::exists(runs)) return {};
  for (const auto& e : fs::directory_iterator(runs)) return e.path();
  return {};
}

}  // namespace

TEST_CASE("pilot: a 2,000-task sweep runs through at most 2 allocation jobs", "[slurm][pilot]") {
  REQUIRE_SLURM();
  ScratchDir dir;
  write_file(dir / "wf.toml", sweep_toml("pilot2000", 2000, "true"));
  auto r = run_sluice(run_args("wf.toml", {"max_allocations=2", "cpus=4", "idle_timeout=30s"}),
                      dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto run = get_json(run_id_of(r), dir.path());
  CHECK(run["backend"] == "pilot");
  int succeeded = 0;
  for (const auto& t : run["task_list"]) succeeded += t["state"] == "succeeded";
  CHECK(succeeded == 2000);
  auto w = workers_json(run_id_of(r), dir.path());
  INFO(w.dump(1));
  REQUIRE(w.contains("allocations"));
  CHECK(w["allocations"].size() >= 1);
  CHECK(w["allocations"].size() <= 2);
  std::uint64_t done = 0;
  for (const auto& x : w["workers"]) done += x.value("completed", std::uint64_t{0});
  CHECK(done == 2000);
  for (const auto& a : w["allocations"]) CHECK(a["state"] == "ended");
  // The text form lists the allocations too.
  auto text = run_sluice({"workers", run_id_of(r)}, dir.path());
  CHECK(text.out.find("ALLOCATION") != std::string::npos);
}

// Logs in the workers' spools and no attempt directory unless a task writes there: the
// run's home grows by a few dozen inodes (the allocations' own files included), not by
// four per task.
TEST_CASE("pilot: 2,000 printing tasks add at most 50 inodes to the home and logs are exact",
          "[slurm][pilot][spool]") {
  REQUIRE_SLURM();
  ScratchDir dir;
  std::string id;
  const std::size_t added = run_and_count_inodes(dir, [&] {
    write_file(dir / "wf.toml", sweep_toml("pilotlogs", 2000, "echo out{i}; echo err{i} >&2"));
    auto r = run_sluice(run_args("wf.toml", {"max_allocations=2", "cpus=4", "idle_timeout=30s"}),
                        dir.path());
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    id = run_id_of(r);
  });
  CHECK(added <= 50);
  for (int i : {0, 1234, 1999}) {
    auto out = run_sluice({"logs", id, "t." + std::to_string(i)}, dir.path());
    CHECK(out.out == "out" + std::to_string(i) + "\n");
    CHECK(out.err == "err" + std::to_string(i) + "\n");
  }
}

TEST_CASE("pilot: an allocation scancelled mid-run has its tasks retried elsewhere",
          "[slurm][pilot]") {
  REQUIRE_SLURM();
  ScratchDir dir;
  write_file(dir / "wf.toml", sweep_toml("pilotcancel", 24, "sleep 1"));
  pid_t pid = spawn_sluice(run_args("wf.toml", {"max_allocations=2", "cpus=2", "idle_timeout=30s"}),
                           dir.path(), dir / "out", dir / "err");
  // Wait for a worker that is running something, then cancel its allocation.
  std::string job;
  eventually(
      [&] {
        auto j = state_file(only_run_dir(dir));
        for (const auto& w : j.value("workers", nlohmann::json::array()))
          if (w.value("state", "") == "connected" && w.value("running", 0) > 0)
            job = w.value("job", "");
        return !job.empty();
      },
      std::chrono::seconds(60));
  REQUIRE(!job.empty());
  shell_output("scancel " + job);
  const int rc = wait_exit(pid);
  INFO(read_file(dir / "out") << read_file(dir / "err"));
  REQUIRE(rc == 0);
  auto j = state_file(only_run_dir(dir));
  INFO(j.dump(1));
  bool lost = false;
  for (const auto& w : j["workers"])
    if (w.value("job", "") == job) lost = lost || w.value("state", "") == "lost";
  CHECK(lost);
  // Lost attempts were retried without counting against retries (the tasks have none).
  const std::string lost_rows =
      shell_output("sqlite3 " + (dir / ".sluice/store.db").string() +
                   " \"select count(*) from attempts where reason like '%pilot worker on%'\"");
  CHECK(std::atoi(lost_rows.c_str()) >= 1);
  CHECK(j["allocations"].size() >= 2);  // the cancelled one was replaced
}

TEST_CASE("pilot: a worker connection with the wrong secret is refused", "[slurm][pilot]") {
  REQUIRE_SLURM();
  ScratchDir dir;
  write_file(dir / "wf.toml",
             "[workflow]\nname = \"pilotsecret\"\n[tasks.t]\nshell = \"sleep 4\"\n");
  pid_t pid = spawn_sluice(run_args("wf.toml", {"max_allocations=1", "cpus=1"}), dir.path(),
                           dir / "out", dir / "err");
  fs::path address;
  REQUIRE(eventually(
      [&] {
        fs::path rd = only_run_dir(dir);
        if (rd.empty() || !fs::exists(rd / "pilot/address")) return false;
        address = rd / "pilot/address";
        return true;
      },
      std::chrono::seconds(30)));
  fs::path secret = address.parent_path() / "secret";
  CHECK((fs::status(secret).permissions() & fs::perms::others_read) == fs::perms::none);
  write_file(dir / "wrong", std::string(64, 'a') + "\n");
  std::string addr = read_file(address);
  while (!addr.empty() && addr.back() == '\n') addr.pop_back();
  auto r = run_sluice({"worker", "--connect", addr, "--secret-file", (dir / "wrong").string(),
                       "--reconnect-timeout", "2s"},
                      dir.path());
  CHECK(r.exit_code == 3);
  CHECK(r.err.find("refused") != std::string::npos);
  const int rc = wait_exit(pid);
  INFO(read_file(dir / "out") << read_file(dir / "err"));
  CHECK(rc == 0);
  CHECK(read_file(dir / "err").find("refused a worker connection") != std::string::npos);
}

TEST_CASE("pilot: an idle worker is released while the run goes on", "[slurm][pilot]") {
  REQUIRE_SLURM();
  ScratchDir dir;
  // a and b start together on two one-core workers; c needs a, and runs long enough for
  // the other worker to sit idle past idle_timeout.
  write_file(dir / "wf.toml", R"([workflow]
name = "pilotidle"
[tasks.a]
shell = "sleep 1"
[tasks.b]
shell = "sleep 1"
[tasks.c]
shell = "sleep 10"
after = ["a"]
)");
  auto r = run_sluice(run_args("wf.toml", {"max_allocations=2", "cpus=1", "idle_timeout=2s"}),
                      dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto j = state_file(only_run_dir(dir));
  INFO(j.dump(1));
  bool released = false;
  std::int64_t released_at = 0;
  for (const auto& w : j["workers"]) {
    if (w.value("state", "") == "released (idle)") {
      released = true;
      released_at = w.value("left_us", std::int64_t{0});
    }
  }
  CHECK(released);
  // It left before the run ended (the run's last state update is later).
  CHECK(released_at + 3'000'000 < j.value("updated_us", std::int64_t{0}));
}

namespace {

// "task|state|handle|reason" of every attempt in the scratch directory's store.
std::vector<std::string> attempt_rows(const ScratchDir& dir) {
  std::istringstream in(shell_output(
      "sqlite3 -separator '|' " + (dir / ".sluice/store.db").string() +
      " \"select t.name, a.state, a.handle, a.reason from attempts a join tasks t on t.run = "
      "a.run and t.idx = a.task\""));
  std::vector<std::string> rows;
  for (std::string line; std::getline(in, line);) rows.push_back(line);
  return rows;
}

}  // namespace

TEST_CASE("pilot: dynamic children and artifacts work as on every backend", "[slurm][pilot]") {
  REQUIRE_SLURM();
  ScratchDir dir;
  auto r = run_sluice(run_args(kExamples + "mapreduce.toml", {"max_allocations=1", "cpus=2"}),
                      dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto res = run_sluice({"results", run_id_of(r)}, dir.path());
  CHECK(res.out.find("reduce  total  15") != std::string::npos);
}

TEST_CASE("pilot: a worker kills an attempt past its max_exec_time", "[slurm][pilot]") {
  REQUIRE_SLURM();
  ScratchDir dir;
  write_file(dir / "wf.toml", R"([workflow]
name = "pilottimeout"
[tasks.slow]
shell = "sleep 60"
max_exec_time = "2s"
)");
  auto r = run_sluice(run_args("wf.toml", {"max_allocations=1", "cpus=1"}), dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 1);
  auto rows = attempt_rows(dir);
  REQUIRE(rows.size() == 1);
  INFO(rows[0]);
  CHECK(rows[0].find("timed out after 2") != std::string::npos);
}

TEST_CASE("pilot: GPU tasks get distinct devices of the allocation", "[slurm][pilot]") {
  REQUIRE_SLURM();
  ScratchDir dir;
  write_file(dir / "wf.toml", R"([workflow]
name = "pilotgpu"
[tasks.g]
matrix = { i = [0, 1] }
gpus = 1
shell = "echo \"$CUDA_VISIBLE_DEVICES\" > {i}.dev && sleep 1"
)");
  auto r = run_sluice(run_args("wf.toml", {"max_allocations=1", "cpus=2", "gpus=2"}), dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const std::string a = read_file(dir / "0.dev"), b = read_file(dir / "1.dev");
  CHECK(a.size() > 1);
  CHECK(b.size() > 1);
  CHECK(a != b);
}

TEST_CASE("pilot: sluice cancel stops the tasks and releases the allocations", "[slurm][pilot]") {
  REQUIRE_SLURM();
  ScratchDir dir;
  write_file(dir / "wf.toml", sweep_toml("pilotcancelrun", 4, "sleep 60"));
  pid_t pid = spawn_sluice(run_args("wf.toml", {"max_allocations=1", "cpus=4"}), dir.path(),
                           dir / "out", dir / "err");
  const std::string id = wait_for_run_id(dir / "out");
  REQUIRE(eventually(
      [&] {
        auto j = state_file(only_run_dir(dir));
        return j.value("running", 0) == 4 && j["workers"].size() == 1;
      },
      std::chrono::seconds(60)));
  auto c = run_sluice({"cancel", id}, dir.path());
  INFO(c.out << c.err);
  CHECK(wait_exit(pid) == 1);
  CHECK(get_json(id, dir.path())["state"] == "cancelled");
  CHECK(eventually([&] { return shell_output("squeue -h -n sluice-pilot:" + id).empty(); },
                   std::chrono::seconds(20)));
}

TEST_CASE("pilot: resume after kill -9 reconnects the workers and reruns nothing that succeeded",
          "[slurm][pilot]") {
  REQUIRE_SLURM();
  ScratchDir dir;
  write_file(dir / "wf.toml", R"([workflow]
name = "pilotresume"
[tasks.s]
matrix = { i = [1, 2, 3, 4, 5, 6, 7, 8] }
shell = "sleep 1 && sluice put i {i}"
[tasks.last]
after = ["s"]
shell = "sluice put done 1"
)");
  const std::vector<std::string> opts{"max_allocations=1", "cpus=2", "idle_timeout=60s"};
  pid_t pid = spawn_sluice(run_args("wf.toml", opts), dir.path(), dir / "out", dir / "err");
  const std::string id = wait_for_run_id(dir / "out");
  REQUIRE(eventually(
      [&] {
        int ok = 0;
        for (const auto& row : attempt_rows(dir))
          ok += row.find("|succeeded|") != std::string::npos;
        return ok >= 2;
      },
      std::chrono::seconds(60)));
  ::kill(pid, SIGKILL);
  wait_exit(pid);
  std::set<std::string> done_before;
  for (const auto& row : attempt_rows(dir))
    if (row.find("|succeeded|") != std::string::npos)
      done_before.insert(row.substr(0, row.find('|')));
  std::vector<std::string> args{"resume", id, "-q"};
  for (const auto& o : pilot_args(opts)) args.push_back(o);
  args.erase(args.begin() + 3, args.begin() + 5);  // resume takes the run's backend
  auto r = run_sluice(args, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  std::map<std::string, int> succeeded;
  for (const auto& row : attempt_rows(dir))
    if (row.find("|succeeded|") != std::string::npos) succeeded[row.substr(0, row.find('|'))]++;
  CHECK(succeeded.size() == 9);
  for (const auto& [task, n] : succeeded) CHECK(n == 1);
  for (const auto& t : done_before) CHECK(succeeded.count(t) == 1);
  // The allocation of the first coordinator served the second one.
  auto j = state_file(only_run_dir(dir));
  INFO(j.dump(1));
  CHECK(j["allocations"].size() == 1);
}

TEST_CASE("pilot: mode auto sends long tasks to jobs and short ones to workers", "[slurm][pilot]") {
  REQUIRE_SLURM();
  ScratchDir dir;
  write_file(dir / "wf.toml", R"([workflow]
name = "pilotauto"
[tasks.short]
matrix = { i = [0, 1, 2] }
shell = "true"
[tasks.long]
shell = "true"
max_exec_time = "8m"
)");
  std::vector<std::string> args{"run",
                                "wf.toml",
                                "-q",
                                "--backend",
                                "slurm",
                                "-O",
                                "mode=auto",
                                "-O",
                                "time_limit=10m",
                                "-O",
                                "cpus=2",
                                "-O",
                                "poll_interval=500ms"};
  auto r = run_sluice(args, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  for (const auto& row : attempt_rows(dir)) {
    INFO(row);
    if (row.rfind("long|", 0) == 0)
      CHECK(row.find("|slurm:") != std::string::npos);
    else
      CHECK(row.find("|pilot:") != std::string::npos);
  }
}

TEST_CASE("pilot: an SDK program's allocations call its function tasks inside the worker",
          "[slurm][pilot][sdk]") {
  REQUIRE_SLURM();
  ScratchDir dir;
  fs::create_directories(dir / ".sluice/configs");
  write_file(dir / ".sluice/configs/pilotfn.toml", R"(backend = "slurm"
mode = "pilot"
max_allocations = "1"
cpus = "2"
time_limit = "10m"
poll_interval = "500ms"
)");
  const std::string out =
      shell_output("cd '" + dir.path().string() +
                   "' && " SDK_PILOT_APP " run --config pilotfn -q 2>&1; echo \"rc=$?\"");
  INFO(out);
  REQUIRE(out.find("rc=0") != std::string::npos);
  REQUIRE(out.rfind("run ", 0) == 0);
  const std::string id = out.substr(4, 26);
  std::set<std::int64_t> worker_pids;
  const auto workers = state_file(only_run_dir(dir)).value("workers", nlohmann::json::array());
  for (const auto& w : workers) worker_pids.insert(w.value("pid", std::int64_t{0}));
  INFO("worker pids: " << worker_pids.size());
  REQUIRE(!worker_pids.empty());
  const auto doc = results_json(id, dir.path());
  const auto& results = doc["results"];
  REQUIRE(results.size() == 6);
  for (const auto& [task, r] : results.items()) {
    INFO(task << ": " << r.dump());
    // A function started as `APP __sluice_worker …` would report a pid of its own.
    CHECK(worker_pids.count(r["result"].get<std::int64_t>()) == 1);
  }
}

TEST_CASE("pilot: a stopped worker is dropped after the heartbeat timeout and its tasks retried",
          "[slurm][pilot]") {
  REQUIRE_SLURM();
  ScratchDir dir;
  // retries = 0: the run can succeed only if the lost attempts use no retry.
  write_file(dir / "wf.toml", R"([workflow]
name = "pilotheartbeat"
[defaults]
retries = 0
[tasks.s]
matrix = { i = [1, 2, 3, 4, 5, 6] }
shell = "sleep 2"
)");
  pid_t pid = spawn_sluice(run_args("wf.toml", {"max_allocations=2", "cpus=2",
                                                "heartbeat_timeout=3s", "idle_timeout=60s"}),
                           dir.path(), dir / "out", dir / "err");
  const std::string id = wait_for_run_id(dir / "out");
  // A connected worker that runs something: stop it (as a node that hangs would).
  std::int64_t stopped = 0;
  REQUIRE(eventually(
      [&] {
        const auto workers =
            state_file(only_run_dir(dir)).value("workers", nlohmann::json::array());
        for (const auto& w : workers)
          if (w.value("state", "") == "connected" && w.value("running", 0) > 0)
            stopped = w.value("pid", std::int64_t{0});
        return stopped > 0;
      },
      std::chrono::seconds(60)));
  REQUIRE(::kill(static_cast<pid_t>(stopped), SIGSTOP) == 0);
  const auto t0 = std::chrono::steady_clock::now();
  bool dropped = eventually(
      [&] {
        const auto workers =
            state_file(only_run_dir(dir)).value("workers", nlohmann::json::array());
        for (const auto& w : workers)
          if (w.value("pid", std::int64_t{0}) == stopped && w.value("state", "") == "lost")
            return true;
        return false;
      },
      std::chrono::seconds(30));
  const auto waited = std::chrono::steady_clock::now() - t0;
  ::kill(static_cast<pid_t>(stopped), SIGCONT);
  REQUIRE(dropped);
  // 3s of silence, plus one poll of the state file (written at most once a second).
  CHECK(waited < std::chrono::seconds(10));
  const int rc = wait_exit(pid);
  INFO(read_file(dir / "out") << read_file(dir / "err"));
  REQUIRE(rc == 0);
  int lost = 0;
  for (const auto& row : attempt_rows(dir)) {
    INFO(row);
    if (row.find("no heartbeat") != std::string::npos) ++lost;
  }
  CHECK(lost >= 1);
  CHECK(get_json(id, dir.path())["state"] == "succeeded");
}

TEST_CASE("pilot: resume restores the run's backend options without --config or -O",
          "[slurm][pilot]") {
  REQUIRE_SLURM();
  ScratchDir dir;
  write_file(dir / "wf.toml", R"([workflow]
name = "pilotresumeopts"
[tasks.s]
matrix = { i = [1, 2, 3, 4, 5, 6] }
shell = "sleep 1"
)");
  pid_t pid = spawn_sluice(run_args("wf.toml", {"max_allocations=1", "cpus=2", "time_limit=7m"}),
                           dir.path(), dir / "out", dir / "err");
  const std::string id = wait_for_run_id(dir / "out");
  REQUIRE(eventually(
      [&] {
        for (const auto& row : attempt_rows(dir))
          if (row.find("|succeeded|") != std::string::npos) return true;
        return false;
      },
      std::chrono::seconds(60)));
  ::kill(pid, SIGKILL);
  wait_exit(pid);
  auto r = run_sluice({"resume", id, "-q"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  // Without the stored options, resume would make a `pilot` backend of the defaults
  // (4 allocations of 1h, whole nodes).
  auto j = state_file(only_run_dir(dir));
  INFO(j.dump(1));
  CHECK(j["max_allocations"] == 1);
  for (const auto& a : j["allocations"]) CHECK(a["time_limit_s"] == 420);
  CHECK(get_json(id, dir.path())["state"] == "succeeded");
}

TEST_CASE("pilot: gpus_per_worker starts one worker per GPU set, each with its own devices",
          "[slurm][pilot]") {
  REQUIRE_SLURM();
  ScratchDir dir;
  write_file(dir / "wf.toml", R"([workflow]
name = "pilotgpusets"
[tasks.g]
matrix = { i = [0, 1, 2, 3] }
gpus = 1
shell = "echo \"$CUDA_VISIBLE_DEVICES\" > {i}.dev && sleep 1"
)");
  auto r = run_sluice(
      run_args("wf.toml", {"max_allocations=1", "cpus=2", "gpus=2", "gpus_per_worker=1"}),
      dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const auto state = state_file(only_run_dir(dir));
  INFO(state.dump(1));
  REQUIRE(state["allocations"].size() == 1);
  std::set<std::string> devices;
  int workers = 0;
  for (const auto& w : state["workers"]) {
    ++workers;
    CHECK(w["cpus"] == 1);
    REQUIRE(w["gpus"].size() == 1);
    devices.insert(w["gpus"][0].get<std::string>());
  }
  CHECK(workers == 2);
  CHECK(devices.size() == 2);  // two workers, two different devices
  for (int i = 0; i < 4; ++i) {
    const std::string d = read_file(dir / (std::to_string(i) + ".dev"));
    CHECK(devices.count(d.substr(0, d.find('\n'))) == 1);
  }
}

TEST_CASE("pilot: an orchestration's calls run in pilot workers and give the inproc answer",
          "[slurm][pilot][sdk][orchestration]") {
  REQUIRE_SLURM();
  ScratchDir dir;
  fs::create_directories(dir / ".sluice/configs");
  write_file(dir / ".sluice/configs/pilotorch.toml", R"(backend = "slurm"
mode = "pilot"
max_allocations = "1"
cpus = "2"
time_limit = "10m"
poll_interval = "500ms"
)");
  // The coroutine runs in the coordinator; its 80 calls are function tasks the workers run.
  const std::string out = shell_output("cd '" + dir.path().string() +
                                       "' && " SDK_BISECTION_APP
                                       " run --config pilotorch --no-cache 2>&1; echo \"rc=$?\"");
  INFO(out);
  REQUIRE(out.find("rc=0") != std::string::npos);
  fs::create_directories(dir / "inproc");
  const std::string reference =
      shell_output("cd '" + (dir / "inproc").string() +
                   "' && " SDK_BISECTION_APP " run --config inproc --no-cache 2>&1");
  auto answer = [](const std::string& text) {
    const std::string key = "  bisect.return = ";
    const auto at = text.find(key);
    return at == std::string::npos
               ? std::string()
               : text.substr(at + key.size(), text.find('\n', at) - at - key.size());
  };
  CHECK_FALSE(answer(out).empty());
  CHECK(answer(out) == answer(reference));
  const auto workers = state_file(only_run_dir(dir)).value("workers", nlohmann::json::array());
  CHECK_FALSE(workers.empty());
}
