// The MPI backend's messages survive encoding, and malformed ones are refused.
#include <algorithm>

#include <catch2/catch.hpp>

#include "mpi_wire.hpp"

using namespace sluice;
using namespace sluice::mpi;

TEST_CASE("a launch request round-trips with the resolved command and both environments",
          "[mpi][wire]") {
  TaskSpec spec;
  spec.name = "train.3";
  spec.command = {"ignored"};
  spec.env = {{"A", "1"}, {"B", ""}};
  spec.workdir = "/work/x";
  spec.cpus = 2;
  spec.gpus = 1;
  std::vector<std::string> resolved{"python3", "train.py", "--lr", "0.1", std::string("a\0b", 3)};
  LaunchRequest req;
  req.task = 7;
  req.attempt = 2;
  req.spec = &spec;
  req.attempt_dir = "/home/.sluice/runs/R/tasks/train.3/2";
  req.env = {{"SLUICE_TASK", "train.3"}, {"SLUICE_ATTEMPT", "2"}};
  req.command = &resolved;

  auto bytes = encode_launch(req);
  auto l = decode_launch(bytes);
  REQUIRE(l);
  CHECK(l->task == 7);
  CHECK(l->attempt == 2);
  CHECK(l->name == "train.3");
  CHECK(l->command == resolved);
  CHECK(l->shell.empty());
  CHECK(l->function.empty());
  CHECK(l->spec_env == spec.env);
  CHECK(l->env == req.env);
  CHECK(l->workdir == "/work/x");
  CHECK(l->attempt_dir == req.attempt_dir);
  CHECK(l->cpus == 2);
  CHECK(l->gpus == 1);

  for (std::size_t cut = 0; cut < bytes.size(); ++cut)
    CHECK_FALSE(decode_launch(std::span<const char>(bytes.data(), cut)));
  bytes.push_back('x');
  CHECK_FALSE(decode_launch(bytes));
}

TEST_CASE("a function task carries its function and bound arguments", "[mpi][wire]") {
  TaskSpec spec;
  spec.name = "train.1";
  spec.command = {"/bin/app", "__sluice_worker", "train@1", std::string("x\0y", 3)};
  spec.function = "train@1";
  spec.arguments = std::string("x\0y", 3);
  LaunchRequest req;
  req.spec = &spec;
  auto l = decode_launch(encode_launch(req));
  REQUIRE(l);
  CHECK(l->function == "train@1");
  CHECK(l->arguments == spec.arguments);
  CHECK(l->command == spec.command);
}

TEST_CASE("a shell task keeps its script", "[mpi][wire]") {
  TaskSpec spec;
  spec.name = "s";
  spec.shell = "echo hi; exit 3";
  LaunchRequest req;
  req.spec = &spec;
  auto l = decode_launch(encode_launch(req));
  REQUIRE(l);
  CHECK(l->command.empty());
  CHECK(l->shell == "echo hi; exit 3");
}

TEST_CASE("hello, kill and completion batches round-trip", "[mpi][wire]") {
  WireHello h{"node07", 12, {"2", "3"}, 1};
  auto hb = decode_hello(encode_hello(h));
  REQUIRE(hb);
  CHECK(hb->host == "node07");
  CHECK(hb->cpus == 12);
  CHECK(hb->gpu_ids == std::vector<std::string>{"2", "3"});
  CHECK(hb->node_rank == 1);

  auto k = decode_kill(encode_kill(5, 9));
  REQUIRE(k);
  CHECK(k->first == 5);
  CHECK(k->second == 9);

  std::vector<Completion> in(3);
  in[0] = {1, 1, ExitKind::kExited, 0, "", 10, 20, "h", "", "xxh3:0123456789abcdef"};
  in[1] = {2, 3, ExitKind::kSignaled, 9, "killed by signal 9 (SIGKILL)", 11, 21, "h", "", ""};
  in[2] = {4, 1, ExitKind::kLaunchFailed, -1, "cannot start 'x': No such file", 12, 12, "", "", ""};
  std::vector<Completion> out{Completion{}};
  auto bytes = encode_completions(in);
  REQUIRE(decode_completions(bytes, out));
  REQUIRE(out.size() == 4);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(out[i + 1].task == in[i].task);
    CHECK(out[i + 1].attempt == in[i].attempt);
    CHECK(out[i + 1].kind == in[i].kind);
    CHECK(out[i + 1].code == in[i].code);
    CHECK(out[i + 1].reason == in[i].reason);
    CHECK(out[i + 1].started_us == in[i].started_us);
    CHECK(out[i + 1].ended_us == in[i].ended_us);
    CHECK(out[i + 1].content_hash == in[i].content_hash);
  }
  bytes.pop_back();
  CHECK_FALSE(decode_completions(bytes, out));
  CHECK(out.size() == 4);  // nothing appended from a bad batch
}

TEST_CASE("a launch message carries a batch of launches in order, a cut one is refused",
          "[mpi][wire]") {
  TaskSpec spec;
  spec.name = "f";
  spec.function = "f@1";
  std::vector<char> batch;
  std::vector<std::size_t> ends;  // where each framed launch ends
  for (TaskId t = 0; t < 3; ++t) {
    LaunchRequest req;
    req.task = t;
    req.attempt = 1;
    req.spec = &spec;
    req.attempt_dir = "/runs/R/tasks/f/" + std::to_string(t);
    append_launch(batch, req);
    ends.push_back(batch.size());
  }
  std::vector<WireLaunch> out;
  REQUIRE(decode_launches(batch, out));
  REQUIRE(out.size() == 3);
  for (TaskId t = 0; t < 3; ++t) {
    CHECK(out[t].task == t);
    CHECK(out[t].function == "f@1");
    CHECK(out[t].attempt_dir == "/runs/R/tasks/f/" + std::to_string(t));
  }
  for (std::size_t cut = 0; cut < batch.size(); ++cut) {
    const auto whole = std::find(ends.begin(), ends.end(), cut);
    if (whole != ends.end()) {  // the first launches alone are a batch too
      REQUIRE(decode_launches(std::span<const char>(batch.data(), cut), out));
      CHECK(out.size() == static_cast<std::size_t>(whole - ends.begin()) + 1);
      continue;
    }
    INFO("cut at " << cut);
    CHECK_FALSE(decode_launches(std::span<const char>(batch.data(), cut), out));
    CHECK(out.empty());
  }
  batch.push_back('x');
  CHECK_FALSE(decode_launches(batch, out));
}
