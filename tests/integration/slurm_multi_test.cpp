// Past one node: pilot mode, an MPI sub-workflow, a node going DOWN and a coordinator
// killed with -9, on the emulated multi-node cluster of `scripts/slurm-up.sh --nodes 8`
// (emu1..emu8 on this host, one slurmd each; selected with SLURM_CONF, see
// support/slurm_emu.hpp). All its nodes share one host name, so placement is proven with
// the name of the node Slurm started each process on: SLURMD_NODENAME, which the node's
// slurmd puts in every step's environment and which a worker's (or an MPI rank's) tasks
// inherit. Label slurm-multi; ctest runs these one at a time (RESOURCE_LOCK slurm_emu).
// Without the emulated cluster every test is skipped, under CI=true too.
#include <catch2/catch.hpp>

#include <signal.h>

#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "support/run_queries.hpp"
#include "support/slurm_emu.hpp"

using namespace sluice::testing;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> pilot_args(const std::vector<std::string>& extra) {
  std::vector<std::string> a{"-O", "mode=pilot",    "-O", "poll_interval=500ms",
                             "-O", "time_limit=10m"};
  for (const auto& e : extra) {
    a.push_back("-O");
    a.push_back(e);
  }
  return a;
}

std::vector<std::string> run_args(const std::string& file, const std::vector<std::string>& extra) {
  std::vector<std::string> a{"run", file, "-q", "--backend", "slurm"};
  for (auto& o : pilot_args(extra)) a.push_back(std::move(o));
  return a;
}

nlohmann::json state_file(const ScratchDir& dir) {
  fs::path runs = dir / ".sluice/runs";
  if (!fs::exists(runs)) return nlohmann::json::object();
  for (const auto& e : fs::directory_iterator(runs)) {
    std::ifstream in(e.path() / "pilot/workers.json");
    auto j = nlohmann::json::parse(in, nullptr, false);
    return j.is_discarded() ? nlohmann::json::object() : j;
  }
  return nlohmann::json::object();
}

std::string sql(const ScratchDir& dir, const std::string& q) {
  return shell_output("sqlite3 -separator '|' " + (dir / ".sluice/store.db").string() + " \"" + q +
                      "\"");
}

// JOB -> NODE of every task that ran kRecord (below), from a run's results ("JOB:NODE").
std::multimap<std::string, std::string> placements(const std::string& results) {
  std::multimap<std::string, std::string> out;
  static const std::regex where(R"(([0-9]+):(emu[0-9]+))");
  for (std::sregex_iterator it(results.begin(), results.end(), where), end; it != end; ++it)
    out.emplace((*it)[1].str(), (*it)[2].str());
  return out;
}

// A task body that records where it ran: its Slurm job and the node Slurm started it on.
const char* const kRecord = "sluice put at $SLURM_JOB_ID:$SLURMD_NODENAME";

std::string sweep(const std::string& name, int n, const std::string& body) {
  std::string values;
  for (int i = 0; i < n; ++i) values += (i ? ", " : "") + std::to_string(i);
  return "[workflow]\nname = \"" + name + "\"\n[tasks.t]\nmatrix = { i = [" + values +
         "] }\nshell = \"" + body + "\"\n";
}

// Puts a node back after a test set it DOWN, however the test ends.
struct NodeResumer {
  std::string node;
  ~NodeResumer() {
    if (node.empty()) return;
    shell_output("scontrol update nodename=" + node + " state=resume");
    // Back in service before the next test counts the nodes that are up.
    eventually([&] { return shell_output("sinfo -h -n " + node + " -o %T") == "idle\n"; },
               std::chrono::seconds(30));
  }
};

}  // namespace

TEST_CASE("pilot: allocations of 4 nodes run one worker per node, tasks on all",
          "[slurm-multi][pilot]") {
  REQUIRE_SLURM_EMU(8);
  ScratchDir dir;
  write_file(dir / "wf.toml", sweep("multi_spread", 48, std::string("sleep 1; ") + kRecord));
  // Two allocations of 4 nodes x 4 CPUs: the whole 8-node cluster, 32 slots for 48 tasks.
  auto r = run_sluice(
      run_args("wf.toml", {"nodes=4", "cpus=4", "max_allocations=2", "idle_timeout=30s"}),
      dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const auto res = results_json(run_id_of(r), dir.path()).dump();
  const auto at = placements(res);
  INFO(res);
  REQUIRE(at.size() == 48);
  auto j = state_file(dir);
  INFO(j.dump(1));
  REQUIRE(j["allocations"].size() >= 1);
  std::set<std::string> all_nodes;
  for (const auto& a : j["allocations"]) {
    const std::string job = a.value("job", "");
    CHECK(a.value("nodes", 0) == 4);
    // One worker per node of the allocation, and its tasks ran on those nodes, all of them.
    int workers = 0;
    for (const auto& w : j["workers"]) workers += w.value("job", "") == job;
    const auto nodes = job_nodes(job);
    CHECK(nodes.size() == 4);
    std::set<std::string> used;
    for (auto [it, end] = at.equal_range(job); it != end; ++it) used.insert(it->second);
    if (used.empty()) continue;  // a second allocation that came too late for any task
    CHECK(workers == 4);
    CHECK(used == nodes);
    all_nodes.insert(used.begin(), used.end());
  }
  CHECK(all_nodes.size() >= 4);
}

TEST_CASE("mpi: a sub-workflow over 4 nodes places its ranks on them", "[slurm-multi][mpi]") {
  REQUIRE_SLURM_EMU(8);
  if (shell_output("command -v mpirun").empty()) SLUICE_SKIP("no mpirun on PATH");
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
  ScratchDir dir;
  // 5 ranks on 4 nodes: rank 0 coordinates, ranks 1-4 run the 40 tasks. mpirun starts
  // its daemons with srun inside the job, one per node of the allocation.
  write_file(dir / "inner.toml", sweep("inner_at", 40, std::string("sleep 0.2; ") + kRecord));
  write_file(dir / "outer.toml",
             "[workflow]\nname = \"outer_multi_mpi\"\n[tasks.group]\nworkflow = \"inner.toml\"\n"
             "backend = \"mpi\"\nranks = 5\nnodes = 4\n");
  auto r = run_sluice({"run", "outer.toml", "--backend", "slurm", "-q"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto group = run_sluice({"results", run_id_of(r), "group", "--json"}, dir.path());
  INFO(group.out);
  const auto at = placements(group.out);
  REQUIRE(at.size() == 40);
  // One Slurm job for all 40 tasks, over 4 nodes; the tasks ran on the worker ranks'
  // nodes, and those are the allocation's (Slurm puts ranks 0 and 1 on its first node).
  std::set<std::string> jobs, used;
  for (const auto& [job, node] : at) {
    jobs.insert(job);
    used.insert(node);
  }
  REQUIRE(jobs.size() == 1);
  const auto nodes = job_nodes(*jobs.begin());
  CHECK(nodes.size() == 4);
  CHECK(used == nodes);
}

TEST_CASE("pilot: a node set DOWN mid-run has its attempts retried elsewhere",
          "[slurm-multi][pilot]") {
  REQUIRE_SLURM_EMU(8);
  ScratchDir dir;
  // No retries: a lost attempt that counted against them would fail its task.
  write_file(dir / "wf.toml", sweep("multi_down", 48, std::string("sleep 3; ") + kRecord));
  pid_t pid = spawn_sluice(
      run_args("wf.toml", {"nodes=2", "cpus=4", "max_allocations=2", "idle_timeout=30s"}),
      dir.path(), dir / "out", dir / "err");
  // A worker running something: its allocation loses a node.
  std::string job;
  eventually(
      [&] {
        for (const auto& w : state_file(dir).value("workers", nlohmann::json::array()))
          if (w.value("state", "") == "connected" && w.value("running", 0) > 0)
            job = w.value("job", "");
        return !job.empty();
      },
      std::chrono::seconds(90));
  REQUIRE(!job.empty());
  const auto nodes = job_nodes(job);
  REQUIRE(nodes.size() == 2);
  NodeResumer resume{*nodes.rbegin()};
  shell_output("scontrol update nodename=" + resume.node + " state=down reason=sluice-test");
  const int rc = wait_exit(pid);
  INFO(read_file(dir / "out") << read_file(dir / "err"));
  REQUIRE(rc == 0);
  auto j = state_file(dir);
  INFO(j.dump(1));
  // The allocation ended with its node (NODE_FAIL: allocations are not requeued) and was
  // replaced by one on nodes that are up.
  std::string reason;
  for (const auto& a : j["allocations"])
    if (a.value("job", "") == job) reason = a.value("state", "") + " " + a.value("end_reason", "");
  CHECK(reason.find("ended") == 0);
  CHECK(reason.find("NODE_FAIL") != std::string::npos);
  CHECK(j["allocations"].size() >= 3);
  // Its attempts were lost and rerun without using up retries (there are none): every
  // task succeeded once, and after the failure never on the node that went down.
  const int lost = std::atoi(
      sql(dir, "select count(*) from attempts where reason like '%pilot worker on%'").c_str());
  CHECK(lost >= 1);
  CHECK(sql(dir, "select count(*) from attempts where state = 'succeeded'") == "48\n");
  const auto at = placements(results_json(wait_for_run_id(dir / "out"), dir.path()).dump());
  CHECK(at.size() == 48);
  std::set<std::string> jobs_after;
  for (const auto& [j2, node] : at)
    if (j2 != job) {
      jobs_after.insert(j2);
      CHECK(node != resume.node);
    }
  CHECK(jobs_after.size() >= 2);  // the other first allocation and the replacement
}

TEST_CASE("pilot: resume after kill -9 re-attaches to workers on several nodes",
          "[slurm-multi][pilot]") {
  REQUIRE_SLURM_EMU(8);
  ScratchDir dir;
  write_file(dir / "wf.toml", sweep("multi_resume", 24, std::string("sleep 1; ") + kRecord));
  const std::vector<std::string> opts{"nodes=3", "cpus=2", "max_allocations=1", "idle_timeout=60s"};
  pid_t pid = spawn_sluice(run_args("wf.toml", opts), dir.path(), dir / "out", dir / "err");
  const std::string id = wait_for_run_id(dir / "out");
  // Workers connected on all 3 nodes and some tasks done: kill the coordinator.
  std::string job;
  REQUIRE(eventually(
      [&] {
        auto j = state_file(dir);
        int connected = 0;
        for (const auto& w : j.value("workers", nlohmann::json::array()))
          if (w.value("state", "") == "connected") {
            ++connected;
            job = w.value("job", "");
          }
        return connected == 3 &&
               std::atoi(
                   sql(dir, "select count(*) from attempts where state = 'succeeded'").c_str()) >=
                   3;
      },
      std::chrono::seconds(90)));
  ::kill(pid, SIGKILL);
  wait_exit(pid);
  const std::string done_before =
      sql(dir, "select task from attempts where state = 'succeeded' order by task");
  std::vector<std::string> args{"resume", id, "-q"};
  for (auto& o : pilot_args(opts)) args.push_back(std::move(o));
  auto r = run_sluice(args, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  // No task ran twice, nothing that succeeded before the kill reran, and the first
  // coordinator's allocation, with its workers on 3 nodes, served the second one.
  CHECK(sql(dir, "select count(*) from attempts where state = 'succeeded'") == "24\n");
  CHECK(sql(dir,
            "select count(*) from (select task from attempts where state = 'succeeded' "
            "group by task having count(*) > 1)") == "0\n");
  const std::string after = sql(
      dir,
      "select task from attempts where state = 'succeeded' and "
      "task in (" +
          [&] {
            std::string l;
            std::istringstream in(done_before);
            for (std::string t; std::getline(in, t);) l += (l.empty() ? "" : ",") + t;
            return l.empty() ? std::string("-1") : l;
          }() +
          ") order by task");
  CHECK(after == done_before);
  auto j = state_file(dir);
  INFO(j.dump(1));
  REQUIRE(j["allocations"].size() == 1);
  CHECK(j["allocations"][0].value("job", "") == job);
  const auto at = placements(results_json(id, dir.path()).dump());
  CHECK(at.size() == 24);
  std::set<std::string> used;
  for (const auto& [jb, node] : at) {
    CHECK(jb == job);
    used.insert(node);
  }
  CHECK(used == job_nodes(job));
  CHECK(used.size() == 3);
}
