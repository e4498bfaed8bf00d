// The worker runtime the mpi and pilot workers share (backends/common): each worker's
// share of its node, the coordinator's placement rule, and the runtime's handling of
// attempts with real child processes but no MPI and no sockets.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "placement.hpp"
#include "sluice/engine/file_modes.hpp"
#include "support/scratch_dir.hpp"
#include "worker_runtime.hpp"
#include "worker_share.hpp"

using namespace sluice;
using sluice::testing::ScratchDir;
using Ids = std::vector<std::string>;

TEST_CASE("cpu_share: an explicit count, the bound cores, else an even share", "[worker]") {
  CHECK(worker::cpu_share(3, 64, 4, false) == 3);
  CHECK(worker::cpu_share(0, 64, 4, false) == 16);
  CHECK(worker::cpu_share(0, 64, 1, false) == 64);
  CHECK(worker::cpu_share(0, 6, 4, true) == 6);   // mpirun bound it to 6 cores
  CHECK(worker::cpu_share(0, 3, 4, false) == 1);  // never 0
  CHECK(worker::cpu_share(0, 8, 0, false) == 8);  // no count of workers: alone
}

TEST_CASE("gpu_block: contiguous blocks, the first ones one larger", "[worker]") {
  const Ids node{"0", "1", "2", "3", "4"};
  CHECK(worker::gpu_block(node, 2, 0) == Ids{"0", "1", "2"});
  CHECK(worker::gpu_block(node, 2, 1) == Ids{"3", "4"});
  CHECK(worker::gpu_block(node, 1, 0) == node);
  CHECK(worker::gpu_block(node, 5, 4) == Ids{"4"});
  CHECK(worker::gpu_block({"GPU-a", "GPU-b"}, 4, 1) == Ids{"GPU-b"});
  CHECK(worker::gpu_block({"GPU-a", "GPU-b"}, 4, 3).empty());
  CHECK(worker::gpu_block(node, 2, 7) == Ids{"3", "4"});  // index clamped
  CHECK(worker::gpu_block(node, 0, 0) == node);
  CHECK(worker::gpu_block({}, 3, 1).empty());
  // Every device in exactly one block.
  Ids all;
  for (int i = 0; i < 3; ++i)
    for (auto& id : worker::gpu_block(node, 3, i)) all.push_back(id);
  CHECK(all == node);
}

TEST_CASE("worker environment: MPI variables dropped, GPUs narrowed to the block", "[worker]") {
  Ids env{"PATH=/bin",     "OMPI_COMM_WORLD_RANK=1",       "PMIX_RANK=1",
          "SLUICE_GPUS=4", "CUDA_VISIBLE_DEVICES=0,1,2,3", "OMPI_X",
          "HOME=/h"};
  constexpr std::string_view kPrefixes[] = {"OMPI_", "PMIX_"};
  worker::drop_variables(env, kPrefixes);
  CHECK(env == Ids{"PATH=/bin", "SLUICE_GPUS=4", "CUDA_VISIBLE_DEVICES=0,1,2,3", "HOME=/h"});
  Ids block_env = env;
  worker::narrow_gpus(block_env, {"2", "3"}, true);
  CHECK(block_env == Ids{"PATH=/bin", "HOME=/h", "CUDA_VISIBLE_DEVICES=2,3"});
  Ids empty_block = env;
  worker::narrow_gpus(empty_block, {}, true);
  CHECK(empty_block == Ids{"PATH=/bin", "HOME=/h", "CUDA_VISIBLE_DEVICES="});
  Ids no_gpus{"PATH=/bin", "SLUICE_GPUS=0", "SLUICE_GPUS_X=1"};
  worker::narrow_gpus(no_gpus, {}, false);
  CHECK(no_gpus == Ids{"PATH=/bin", "SLUICE_GPUS_X=1"});
}

TEST_CASE("most_free_cores: the worker with the most free cores that holds the attempt",
          "[worker]") {
  struct W {
    worker::FreeSlots free;
    bool ready = true;
  };
  std::vector<W> ws{{{2, 0}}, {{8, 0}}, {{8, 2}}, {{4, 4}}};
  auto pick = [&](int cpus, int gpus) {
    auto it = worker::most_free_cores(ws.begin(), ws.end(), cpus, gpus,
                                      [](const W& w) { return w.ready ? &w.free : nullptr; });
    return it == ws.end() ? -1 : static_cast<int>(it - ws.begin());
  };
  CHECK(pick(1, 0) == 1);  // ties keep the first
  CHECK(pick(1, 1) == 2);
  CHECK(pick(1, 3) == 3);
  CHECK(pick(9, 0) == -1);
  CHECK(pick(1, 5) == -1);
  ws[1].ready = false;
  CHECK(pick(1, 0) == 2);
  ws[2].free.take(7, 2);
  CHECK(ws[2].free.cpus == 1);
  CHECK(ws[2].free.gpus == 0);
  CHECK(pick(1, 0) == 3);
  CHECK(pick(1, 1) == 3);
  ws[2].free.give_back(7, 2);
  CHECK(ws[2].free.holds(8, 2));
  CHECK_FALSE(ws[2].free.holds(9, 0));
  CHECK(pick(1, 0) == 2);
}

TEST_CASE("attempt_key: task and attempt in one key and back", "[worker]") {
  const auto k = worker::attempt_key(0xfffffffeu, 7);
  CHECK(worker::task_of_key(k) == 0xfffffffeu);
  CHECK(worker::attempt_of_key(k) == 7u);
  CHECK(worker::attempt_key(1, 2) != worker::attempt_key(2, 1));
}

namespace {

wire::Launch shell_launch(const std::filesystem::path& root, TaskId task, std::string shell) {
  wire::Launch l;
  l.task = task;
  l.attempt = 1;
  l.name = "t" + std::to_string(task);
  l.shell = std::move(shell);
  l.workdir = root.string();
  l.attempt_dir = (root / "tasks" / l.name / "1").string();
  std::filesystem::create_directories(root / "tasks");  // the run's; the runtime makes the rest
  return l;
}

// Collects until `n` completions arrived or 10 s passed.
std::vector<Completion> collect_n(worker::Runtime& r, std::size_t n) {
  std::vector<Completion> out;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (out.size() < n && std::chrono::steady_clock::now() < until)
    r.collect(out, std::chrono::milliseconds(5));
  return out;
}

std::string read_all(const std::filesystem::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("Runtime: attempts get the given environment and GPU ids, in private directories",
          "[worker]") {
  ScratchDir dir;
  std::filesystem::create_directories(dir / "tasks");
  worker::RuntimeOptions o;
  o.cpus = 2;
  o.gpu_ids = {"5", "7"};
  o.environment = {"PATH=/usr/bin:/bin", "MARK=given", "CUDA_VISIBLE_DEVICES=5,7"};
  o.make_attempt_dirs = true;
  worker::Runtime r(o);
  auto l = shell_launch(dir.path(), 1, "echo $MARK:$CUDA_VISIBLE_DEVICES:${HOME-none} > out1");
  l.gpus = 1;
  r.start(l);
  auto cpu = shell_launch(dir.path(), 2, "echo \"[$CUDA_VISIBLE_DEVICES]\" > out2");
  r.start(cpu);
  auto done = collect_n(r, 2);
  REQUIRE(done.size() == 2);
  for (const auto& c : done) CHECK(c.ok());
  CHECK(read_all(dir / "out1") == "given:5:none\n");
  CHECK(read_all(dir / "out2") == "[]\n");
  struct stat st {};
  REQUIRE(::stat(l.attempt_dir.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == file_modes().dir);
  REQUIRE(::stat((dir / "tasks" / "t1").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == file_modes().dir);
}

TEST_CASE("Runtime: a launch that cannot start is reported with the next batch", "[worker]") {
  ScratchDir dir;
  worker::RuntimeOptions o;
  o.environment = {"PATH=/usr/bin:/bin"};
  worker::Runtime r(o);
  auto l = shell_launch(dir.path(), 3, "");
  l.command = {"/nonexistent/program"};
  r.start(l);
  r.refuse(shell_launch(dir.path(), 4, "true"), ExitKind::kLost, "no time left");
  std::vector<Completion> out;
  r.collect(out, std::chrono::milliseconds(0));
  REQUIRE(out.size() == 2);
  CHECK(out[0].task == 3);
  CHECK(out[0].kind == ExitKind::kLaunchFailed);
  CHECK(out[1].task == 4);
  CHECK(out[1].kind == ExitKind::kLost);
  CHECK(out[1].reason == "no time left");
}

TEST_CASE("Runtime: function tasks inline, on threads, or refused without a runner", "[worker]") {
  ScratchDir dir;
  worker::RuntimeOptions o;
  o.environment = {"PATH=/usr/bin:/bin"};
  auto f = shell_launch(dir.path(), 5, "");
  f.function = "f";
  {
    worker::set_function_task_runner(nullptr);
    worker::Runtime r(o);
    r.start(f);
    std::vector<Completion> out;
    r.collect(out, std::chrono::milliseconds(0));
    REQUIRE(out.size() == 1);
    CHECK(out[0].kind == ExitKind::kLaunchFailed);
    CHECK(out[0].reason.find("no function runner") != std::string::npos);
  }
  std::thread::id ran_on;
  worker::set_function_task_runner([&](const wire::Launch& l, std::string& hash) {
    ran_on = std::this_thread::get_id();
    hash = "h" + l.name;
    return 3;
  });
  {
    worker::Runtime r(o);  // inline: done when start() returns
    r.start(f);
    CHECK(ran_on == std::this_thread::get_id());
    std::vector<Completion> out;
    r.collect(out, std::chrono::milliseconds(0));
    REQUIRE(out.size() == 1);
    CHECK(out[0].code == 3);
    CHECK(out[0].content_hash == "ht5");
  }
  {
    o.functions = worker::RuntimeOptions::Functions::kThreads;
    worker::Runtime r(o);
    ran_on = {};
    r.start(f);
    auto out = collect_n(r, 1);
    REQUIRE(out.size() == 1);
    CHECK(out[0].code == 3);
    CHECK(ran_on != std::this_thread::get_id());
    CHECK(r.functions_running() == 0);
  }
  worker::set_function_task_runner(nullptr);
}

TEST_CASE("Runtime: deadlines kill, failures nobody asked for are held back", "[worker]") {
  ScratchDir dir;
  worker::RuntimeOptions o;
  o.environment = {"PATH=/usr/bin:/bin"};
  o.make_attempt_dirs = true;
  o.enforce_exec_time = true;
  o.failure_grace = std::chrono::milliseconds(300);
  worker::Runtime r(o);
  auto slow = shell_launch(dir.path(), 6, "exec sleep 30");
  slow.max_exec_ms = 100;
  r.start(slow);
  auto out = collect_n(r, 1);
  REQUIRE(out.size() == 1);
  INFO(out[0].reason);
  CHECK(out[0].kind == ExitKind::kSignaled);
  CHECK(out[0].reason.rfind("timed out after", 0) == 0);

  const auto t0 = std::chrono::steady_clock::now();
  r.start(shell_launch(dir.path(), 7, "exit 2"));
  out = collect_n(r, 1);
  REQUIRE(out.size() == 1);
  CHECK(out[0].code == 2);
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(300));
  CHECK_FALSE(r.holding_failures());

  // Killed on request: reported at once.
  r.start(shell_launch(dir.path(), 8, "exec sleep 30"));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  r.kill(8, 1);
  const auto t1 = std::chrono::steady_clock::now();
  out = collect_n(r, 1);
  REQUIRE(out.size() == 1);
  CHECK(out[0].kind == ExitKind::kSignaled);
  CHECK(std::chrono::steady_clock::now() - t1 < std::chrono::milliseconds(300));
}

TEST_CASE("Runtime: reset kills what runs and forgets it", "[worker]") {
  ScratchDir dir;
  worker::RuntimeOptions o;
  o.environment = {"PATH=/usr/bin:/bin"};
  o.make_attempt_dirs = true;
  worker::Runtime r(o);
  r.start(shell_launch(dir.path(), 9, "exec sleep 30"));
  r.refuse(shell_launch(dir.path(), 10, "true"), ExitKind::kLost, "x");
  CHECK(r.processes_running() == 1);
  r.reset();
  CHECK(r.processes_running() == 0);
  std::vector<Completion> out;
  r.collect(out, std::chrono::milliseconds(50));
  CHECK(out.empty());
}

// What an MPI rank does (mpi_worker.cpp): an attempt whose logs go to spools borrows a
// scratch folder of the worker's own instead of a directory made and removed per attempt.
TEST_CASE("Runtime: spooled attempts borrow reused scratch folders, renamed into place when used",
          "[worker]") {
  ScratchDir dir;
  std::filesystem::create_directories(dir / "spools");
  worker::RuntimeOptions o;
  o.environment = {"PATH=/usr/bin:/bin"};
  o.make_attempt_dirs = true;
  o.scratch_prefix = "r1.";
  auto spooled = [&](TaskId task, std::string shell) {
    auto l = shell_launch(dir.path(), task, std::move(shell));
    l.spool_dir = (dir / "spools").string();
    l.env = {{"SLUICE_ATTEMPT_DIR", l.attempt_dir}, {"SLUICE_RESULTS", l.attempt_dir + "/results"}};
    return l;
  };
  {
    worker::Runtime r(o);
    r.start(spooled(1, "test -d \"$SLUICE_ATTEMPT_DIR\" && echo \"$SLUICE_ATTEMPT_DIR\" > where1"));
    REQUIRE(collect_n(r, 1).size() == 1);
    r.start(
        spooled(2, "echo kept > \"$SLUICE_ATTEMPT_DIR/note\"; echo \"$SLUICE_RESULTS\" > where2"));
    auto done = collect_n(r, 1);
    REQUIRE(done.size() == 1);
    CHECK(done[0].ok());
    // Renamed before the completion is handed back.
    CHECK(read_all(dir / "tasks" / "t2" / "1" / "note") == "kept\n");
    r.start(spooled(3, "echo \"$SLUICE_ATTEMPT_DIR\" > where3"));
    REQUIRE(collect_n(r, 1).size() == 1);
  }
  const std::string first = read_all(dir / "where1");
  CHECK(first.rfind((dir / "scratch" / "r1.0-").string(), 0) == 0);
  CHECK_FALSE(std::filesystem::exists(dir / "tasks" / "t1"));
  CHECK_FALSE(std::filesystem::exists(dir / "tasks" / "t3"));
  // The empty folder served the next attempt as it was; the used one's name is never lent
  // again, and stays a link to the attempt's directory.
  const std::string used = first.substr(0, first.size() - 1);
  CHECK(read_all(dir / "where2") == used + "/results\n");
  const std::string third = read_all(dir / "where3");
  CHECK(third.rfind((dir / "scratch" / "r1.0-").string(), 0) == 0);
  CHECK(third != first);
  std::size_t left = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir / "scratch")) {
    CHECK(e.path().string() == used);
    CHECK(std::filesystem::equivalent(e.path(), dir / "tasks" / "t2" / "1"));
    ++left;
  }
  CHECK(left == 1);  // the free folder went with the runtime
}
