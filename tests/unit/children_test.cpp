// Dynamic children below the CLI: request documents, request files, and the graph and
// scheduler growing while a run goes on.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "sluice/engine/child_request.hpp"
#include "sluice/engine/graph.hpp"
#include "sluice/engine/scheduler.hpp"
#include "support/scratch_dir.hpp"
#include "support/workflow_builder.hpp"

using namespace sluice;
namespace fs = std::filesystem;

TEST_CASE("a child request survives the round trip through its TOML text", "[children]") {
  ChildRequest c;
  c.before = "reduce";
  c.spec.name = "square.3";
  c.spec.version = "2.1";
  c.spec.command = {"sh", "-c", "echo \"$1\" 'quoted'", "x y"};
  c.spec.cpus = 3;
  c.spec.gpus = 1;
  c.spec.memory_mib = 2048;
  c.spec.executor = "gpu";
  c.spec.retries = 2;
  c.spec.max_exec_time = std::chrono::milliseconds(90'500);
  c.spec.max_wait_time = std::chrono::minutes(5);
  c.spec.env = {{"A", "1"}, {"B", "two words"}};
  c.spec.workdir = "/data/run";

  auto parsed = parse_child_requests(child_request_text(c), "req.toml", "/base");
  REQUIRE(parsed);
  REQUIRE(parsed->size() == 1);
  const ChildRequest& r = parsed->front();
  CHECK(r.before == "reduce");
  CHECK(r.spec.name == "square.3");
  CHECK(r.spec.version == "2.1");
  CHECK(r.spec.command == c.spec.command);
  CHECK(r.spec.cpus == 3);
  CHECK(r.spec.gpus == 1);
  CHECK(r.spec.memory_mib == 2048);
  CHECK(r.spec.executor == "gpu");
  CHECK(r.spec.retries == 2);
  CHECK(r.spec.max_exec_time == c.spec.max_exec_time);
  CHECK(r.spec.max_wait_time == c.spec.max_wait_time);
  CHECK(r.spec.env == c.spec.env);
  CHECK(r.spec.workdir == "/data/run");

  ChildRequest shell;
  shell.spec.name = "s";
  shell.spec.shell = "echo hi | wc -c";
  auto p2 = parse_child_requests(child_request_text(shell), "req.toml", "/base");
  REQUIRE(p2);
  CHECK(p2->front().spec.shell == "echo hi | wc -c");
  CHECK(p2->front().spec.workdir == "/base");
  CHECK(p2->front().before.empty());
}

TEST_CASE("a child request's text keeps every byte of its strings", "[children]") {
  // The text is written by hand (it is on an orchestration's path for every call):
  // quotes, backslashes, control characters, UTF-8, a key that TOML cannot leave bare.
  const std::string nasty = std::string("q\"b\\s/t\tn\nr\rf\fb\bz") + "\x01\x1f\x7f é ∑ '";
  ChildRequest c;
  c.before = "a \"b\"";
  c.spec.name = "orch.call-12-f";
  c.spec.version = "1\\2";
  c.spec.command = {"prog", nasty, "", "{not a placeholder", "QUJD+/="};
  c.spec.env = {{"PLAIN", nasty}, {"B_2", "\""}, {"A", "1"}, {"PLAIN", "last wins"}};
  c.spec.workdir = "/data/with space/\"q\"";
  c.spec.cache = false;
  c.spec.outputs = {"out \"1\".txt", "a\\b"};

  const std::string text = child_request_text(c);
  auto parsed = parse_child_requests(text, "req.toml", "/base");
  INFO(text);
  INFO((parsed ? std::string() : parsed.error().front().format()));
  REQUIRE(parsed);
  REQUIRE(parsed->size() == 1);
  const ChildRequest& r = parsed->front();
  CHECK(r.before == c.before);
  CHECK(r.spec.name == c.spec.name);
  CHECK(r.spec.version == c.spec.version);
  CHECK(r.spec.command == c.spec.command);
  CHECK(r.spec.workdir == c.spec.workdir);
  CHECK_FALSE(r.spec.cache);
  CHECK(r.spec.outputs == c.spec.outputs);
  using Env = std::vector<std::pair<std::string, std::string>>;
  // The loader reads the env table in key order.
  CHECK(r.spec.env == Env{{"A", "1"}, {"B_2", "\""}, {"PLAIN", "last wins"}});

  ChildRequest shell;
  shell.spec.name = "s";
  shell.spec.shell = nasty;
  auto p2 = parse_child_requests(child_request_text(shell), "req.toml", "/base");
  REQUIRE(p2);
  CHECK(p2->front().spec.shell == nasty);
}

TEST_CASE("a child request document may hold several tasks and matrices", "[children]") {
  auto parsed = parse_child_requests(R"([tasks.a]
command = ["echo", "{x}"]
before = "sink"
matrix = { x = [1, 2, 3] }
[tasks.b]
shell = "true"
)",
                                     "req.toml", "/base");
  REQUIRE(parsed);
  REQUIRE(parsed->size() == 4);
  CHECK((*parsed)[0].spec.name == "a.0");
  CHECK((*parsed)[2].spec.command == std::vector<std::string>{"echo", "3"});
  CHECK((*parsed)[2].before == "sink");
  CHECK((*parsed)[3].spec.name == "b");
  CHECK((*parsed)[3].before.empty());
}

TEST_CASE("bad child requests are reported at their line and column", "[children]") {
  auto first = [](const char* text) {
    auto parsed = parse_child_requests(text, "req.toml", "/base");
    REQUIRE_FALSE(parsed);
    std::string all;
    for (const auto& d : parsed.error()) all += (all.empty() ? "" : "\n") + d.format();
    return all;
  };
  CHECK(first("[tasks.a]\ncommand = [\"true\"]\nafter = [\"x\"]\n") ==
        "req.toml:3:1: error: a child task depends on the task that adds it: 'after' cannot be "
        "set (use 'before' to name the task it must finish before)");
  CHECK(first("[tasks.a]\ncommand = [\"true\"]\nbefor = \"x\"\n")
            .find("req.toml:3:1: error: unknown key 'befor' in task 'a' (did you mean "
                  "'before'?)") == 0);
  CHECK(first("[tasks.a]\ncpus = 2\n").find("needs a 'command'") != std::string::npos);
  CHECK(first("[workflow]\nname = \"x\"\n").find("unknown top-level key 'workflow'") !=
        std::string::npos);
  CHECK(first("[tasks.\"../etc\"]\ncommand = [\"true\"]\n").find("not a safe identifier") !=
        std::string::npos);
  CHECK(first("").find("child request has no [tasks.NAME] table") != std::string::npos);
}

TEST_CASE("request files are listed in the order they were written", "[children]") {
  sluice::testing::ScratchDir dir;
  auto none = list_child_requests(dir.path().string());
  REQUIRE(none);
  CHECK(none->empty());
  std::vector<std::string> written;
  for (int i = 0; i < 12; ++i) {
    auto path = write_child_request(dir.path().string(), "# " + std::to_string(i) + "\n");
    REQUIRE(path);
    written.push_back(*path);
  }
  auto listed = list_child_requests(dir.path().string());
  REQUIRE(listed);
  CHECK(*listed == written);
  // Temporary files never show up; only the numbered requests do.
  for (const auto& e : fs::directory_iterator(dir.path() / "children"))
    CHECK(e.path().filename().string().rfind(".tmp.", 0) != 0);
}

TEST_CASE("several processes writing requests at once lose none", "[children]") {
  sluice::testing::ScratchDir dir;
  constexpr int kWriters = 4, kEach = 40;
  std::vector<pid_t> pids;
  for (int w = 0; w < kWriters; ++w) {
    pid_t pid = ::fork();
    if (pid == 0) {
      for (int i = 0; i < kEach; ++i)
        if (!write_child_request(dir.path().string(), std::to_string(w * 1000 + i))) _exit(1);
      _exit(0);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  auto listed = list_child_requests(dir.path().string());
  REQUIRE(listed);
  CHECK(listed->size() == kWriters * kEach);
  std::set<std::string> contents;
  for (const auto& p : *listed) {
    std::ifstream in(p);
    std::string s;
    in >> s;
    contents.insert(s);
  }
  CHECK(contents.size() == kWriters * kEach);
}

TEST_CASE("add_child outside an attempt is refused", "[children]") {
  ::unsetenv("SLUICE_ATTEMPT_DIR");
  ChildRequest c;
  c.spec.name = "x";
  c.spec.command = {"true"};
  auto r = add_child(c);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("SLUICE_ATTEMPT_DIR") != std::string::npos);

  sluice::testing::ScratchDir dir;
  ::setenv("SLUICE_ATTEMPT_DIR", dir.path().c_str(), 1);
  ChildRequest bad;
  bad.spec.name = "has space";
  bad.spec.command = {"true"};
  CHECK_FALSE(add_child(bad));
  auto ok = add_child(c);
  REQUIRE(ok);
  CHECK(fs::exists(*ok));
  ::unsetenv("SLUICE_ATTEMPT_DIR");
}

TEST_CASE("the graph grows: added tasks and edges show in both directions", "[children]") {
  Graph g(std::vector<std::vector<TaskId>>{{}, {0}, {1}});  // t0 -> t1 -> t2
  const TaskId parent = 1;
  const TaskId c = g.add_task(std::span<const TaskId>(&parent, 1));
  CHECK(c == 3);
  CHECK(g.size() == 4);
  g.add_edge(c, 2);
  CHECK(std::vector<TaskId>(g.children(1).begin(), g.children(1).end()) ==
        std::vector<TaskId>{2, 3});
  CHECK(std::vector<TaskId>(g.parents(2).begin(), g.parents(2).end()) == std::vector<TaskId>{1, 3});
  CHECK(std::vector<TaskId>(g.parents(3).begin(), g.parents(3).end()) == std::vector<TaskId>{1});
  CHECK(std::vector<TaskId>(g.children(3).begin(), g.children(3).end()) == std::vector<TaskId>{2});
  CHECK(g.children(0).size() == 1);  // untouched nodes keep their CSR lists
  CHECK_FALSE(g.find_cycle());
  CHECK(g.topological_order().size() == 4);
}

TEST_CASE("the scheduler holds the downstream task until every added child finished",
          "[children]") {
  Workflow wf = testing::make_workflow({{}, {0}});  // map (t0) -> reduce (t1)
  Graph graph(wf);
  Scheduler s(wf, graph, Capacity{4, 0, {}});
  TimePoint now{};
  s.start(now);
  auto l = s.take_launches();
  REQUIRE(l.size() == 1);
  s.on_attempt_started(0, 1, now);

  // While map runs, two children are added in front of reduce (as the coordinator does).
  std::vector<TaskId> kids;
  for (int i = 0; i < 2; ++i) {
    TaskSpec spec = wf.tasks[0];
    spec.name = "kid" + std::to_string(i);
    spec.after = {0};
    const TaskId parent = 0;
    const TaskId id = graph.add_task(std::span<const TaskId>(&parent, 1));
    wf.tasks.push_back(spec);
    s.on_task_added(id);
    graph.add_edge(id, 1);
    wf.tasks[1].after.push_back(id);
    s.on_dependency_added(id, 1);
    kids.push_back(id);
  }
  s.check_invariants();
  Completion done;
  done.task = 0;
  done.attempt = 1;
  s.on_attempt_finished(done, now);
  auto next = s.take_launches();
  REQUIRE(next.size() == 2);  // the children, not reduce
  for (auto& n : next) CHECK((n.task == kids[0] || n.task == kids[1]));
  s.check_invariants();
  for (auto& n : next) {
    s.on_attempt_started(n.task, n.attempt, now);
    done.task = n.task;
    done.attempt = n.attempt;
    CHECK(s.state(1) == TaskState::kWaiting);
    s.on_attempt_finished(done, now);
  }
  auto last = s.take_launches();
  REQUIRE(last.size() == 1);
  CHECK(last[0].task == 1);
  s.on_attempt_started(1, 1, now);
  done.task = 1;
  done.attempt = 1;
  s.on_attempt_finished(done, now);
  CHECK(s.done());
  CHECK(s.run_state() == RunState::kSucceeded);
  s.check_invariants();
}
