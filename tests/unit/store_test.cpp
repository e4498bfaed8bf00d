#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "sluice/engine/run_id.hpp"
#include "sluice/engine/store.hpp"
#include "support/store_fixtures.hpp"

namespace fs = std::filesystem;
using sluice::AttemptRecord;
using sluice::ErrorCode;
using sluice::RunState;
using sluice::RunStore;
using sluice::RunUpdate;
using sluice::StateChange;
using sluice::TaskState;
using sluice::Workflow;
using namespace sluice::testing;

namespace {

// CPU time of this process: steadier than wall time on a busy build machine.
double cpu_us() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

}  // namespace

TEST_CASE("Registering the same content again keeps its revision and new content gets the next",
          "[store]") {
  TempHome home;
  auto store = open_rw(home);

  auto r1 = store->register_workflow(make_workflow("proj", "sweep", "aaaa", 3));
  require_ok(r1);
  CHECK(*r1 == 1);
  auto again = store->register_workflow(make_workflow("proj", "sweep", "aaaa", 3));
  require_ok(again);
  CHECK(*again == 1);
  auto r2 = store->register_workflow(make_workflow("proj", "sweep", "bbbb", 4));
  require_ok(r2);
  CHECK(*r2 == 2);
  // Going back to the first content is its old revision, not a third one.
  auto back = store->register_workflow(make_workflow("proj", "sweep", "aaaa", 3));
  require_ok(back);
  CHECK(*back == 1);
  // Another project (and another name) count their own revisions.
  auto other = store->register_workflow(make_workflow("other", "sweep", "bbbb", 4));
  require_ok(other);
  CHECK(*other == 1);
  auto other_name = store->register_workflow(make_workflow("proj", "train", "bbbb", 4));
  require_ok(other_name);
  CHECK(*other_name == 1);

  auto revs = store->revisions("proj", "sweep");
  require_ok(revs);
  CHECK(*revs == std::vector<int>{1, 2});
  auto none = store->revisions("proj", "nothing");
  require_ok(none);
  CHECK(none->empty());

  // Revisions survive reopening, and a reader sees them too.
  store.reset();
  auto reader = open_ro(home);
  auto revs2 = reader->revisions("proj", "sweep");
  require_ok(revs2);
  CHECK(*revs2 == std::vector<int>{1, 2});
}

TEST_CASE("A created run has a waiting row per task, a directory and a submitted event",
          "[store]") {
  TempHome home;
  auto store = open_rw(home);
  Workflow wf = make_workflow("proj", "sweep", "aaaa", 5);
  auto run = start_run(*store, wf);

  CHECK(sluice::is_run_id(run.id));
  CHECK(run.project == "proj");
  CHECK(run.workflow == "sweep");
  CHECK(run.revision == 1);
  CHECK(run.content_hash == "aaaa");
  CHECK(run.workflow_id() == "proj:sweep:1");
  CHECK(run.state == RunState::kSubmitted);
  CHECK(run.backend == "local");
  CHECK(run.source_path == "/somewhere/sweep.toml");
  CHECK(run.base_dir == "/somewhere");
  CHECK_FALSE(run.host.empty());
  CHECK(run.created_us > 0);
  CHECK(run.started_us == 0);
  CHECK(run.ended_us == 0);
  CHECK(run.task_count == 5);

  CHECK(store->run_dir(run.id) == (home.path / "runs" / run.id).string());
  CHECK(fs::is_directory(store->run_dir(run.id)));
  CHECK(store->attempt_dir(run.id, "even.0", 2) ==
        (home.path / "runs" / run.id / "tasks" / "even.0" / "2").string());
  CHECK_FALSE(fs::exists(store->attempt_dir(run.id, "even.0", 2)));

  auto tasks = store->list_tasks(run.id);
  require_ok(tasks);
  REQUIRE(tasks->size() == 5);
  for (std::size_t i = 0; i < 5; ++i) {
    CHECK((*tasks)[i].index == i);
    CHECK((*tasks)[i].name == wf.tasks[i].name);
    CHECK((*tasks)[i].group == wf.tasks[i].group);
    CHECK((*tasks)[i].state == TaskState::kWaiting);
    CHECK((*tasks)[i].attempts == 0);
  }
  auto events = store->list_events(run.id);
  require_ok(events);
  REQUIRE(events->size() == 1);
  CHECK((*events)[0].kind == "run:submitted");
  CHECK_FALSE((*events)[0].task.has_value());

  auto def = store->run_definition(run.id);
  require_ok(def);
  CHECK(*def == wf.text);

  // The same id twice is a conflict, not a second run.
  auto dup = store->create_run(wf, 1, run.id, "local");
  REQUIRE_FALSE(dup);
  CHECK(dup.error().code == ErrorCode::kConflict);
  // An unregistered revision is refused.
  auto unknown = store->create_run(wf, 7, sluice::new_run_id(), "local");
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().code == ErrorCode::kNotFound);
}

TEST_CASE("Applied state changes can be read back as tasks, attempts, events and run state",
          "[store]") {
  TempHome home;
  auto store = open_rw(home);
  auto run = start_run(*store, make_workflow("proj", "sweep", "aaaa", 3));

  RunUpdate u1;
  u1.now_us = 1000;
  u1.run_state = RunState::kRunning;
  u1.changes = {{0, TaskState::kReady, 0, 0, ""},
                {0, TaskState::kRunning, 1, 0, ""},
                {1, TaskState::kReady, 0, 0, ""},
                {1, TaskState::kRunning, 1, 0, ""}};
  AttemptRecord a0;
  a0.task = 0;
  a0.attempt = 1;
  a0.host = "node1";
  a0.handle = "pid:42";
  AttemptRecord a1 = a0;
  a1.task = 1;
  a1.handle = "pid:43";
  u1.attempt_starts = {a0, a1};
  require_ok(store->apply(run.id, u1));

  RunUpdate u2;
  u2.now_us = 2000;
  u2.changes = {{0, TaskState::kSucceeded, 1, 0, ""},
                {1, TaskState::kReady, 1, 3, "exit code 3"},
                {1, TaskState::kRunning, 2, 0, ""}};
  AttemptRecord e0 = a0;
  e0.state = TaskState::kSucceeded;
  AttemptRecord e1 = a1;
  e1.state = TaskState::kFailed;
  e1.exit_code = 3;
  e1.reason = "exit code 3";
  AttemptRecord s2 = a1;
  s2.attempt = 2;
  s2.handle = "pid:44";
  u2.attempt_ends = {e0, e1};
  u2.attempt_starts = {s2};
  require_ok(store->apply(run.id, u2));

  RunUpdate u3;
  u3.now_us = 3000;
  u3.changes = {{1, TaskState::kFailed, 2, 1, "timed out"},
                {2, TaskState::kSkipped, 0, 0, "failed dependency"}};
  AttemptRecord e2 = s2;
  e2.state = TaskState::kFailed;
  e2.exit_code = 1;
  e2.reason = "timed out";
  u3.attempt_ends = {e2};
  u3.run_state = RunState::kFailed;
  require_ok(store->apply(run.id, u3));

  // Read back through a separate read-only connection: it is all in the file.
  auto reader = open_ro(home);
  auto tasks = reader->list_tasks(run.id);
  require_ok(tasks);
  REQUIRE(tasks->size() == 3);
  const auto& t0 = (*tasks)[0];
  CHECK(t0.state == TaskState::kSucceeded);
  CHECK(t0.attempts == 1);
  CHECK(t0.exit_code == 0);
  CHECK(t0.started_us == 1000);
  CHECK(t0.ended_us == 2000);
  const auto& t1 = (*tasks)[1];
  CHECK(t1.state == TaskState::kFailed);
  CHECK(t1.attempts == 2);
  CHECK(t1.exit_code == 1);
  CHECK(t1.reason == "timed out");
  CHECK(t1.started_us == 2000);  // the latest attempt's start
  CHECK(t1.ended_us == 3000);
  const auto& t2 = (*tasks)[2];
  CHECK(t2.state == TaskState::kSkipped);
  CHECK(t2.attempts == 0);
  CHECK(t2.reason == "failed dependency");
  CHECK(t2.started_us == 0);
  CHECK(t2.ended_us == 3000);

  auto attempts = reader->list_attempts(run.id);
  require_ok(attempts);
  REQUIRE(attempts->size() == 3);
  CHECK((*attempts)[0].task == 0);
  CHECK((*attempts)[0].attempt == 1);
  CHECK((*attempts)[0].state == TaskState::kSucceeded);
  CHECK((*attempts)[0].started_us == 1000);
  CHECK((*attempts)[0].ended_us == 2000);
  CHECK((*attempts)[0].host == "node1");
  CHECK((*attempts)[0].handle == "pid:42");
  CHECK((*attempts)[1].task == 1);
  CHECK((*attempts)[1].attempt == 1);
  CHECK((*attempts)[1].state == TaskState::kFailed);
  CHECK((*attempts)[1].exit_code == 3);
  CHECK((*attempts)[1].reason == "exit code 3");
  CHECK((*attempts)[2].task == 1);
  CHECK((*attempts)[2].attempt == 2);
  CHECK((*attempts)[2].state == TaskState::kFailed);
  CHECK((*attempts)[2].reason == "timed out");
  CHECK((*attempts)[2].handle == "pid:44");
  CHECK((*attempts)[2].started_us == 2000);
  CHECK((*attempts)[2].ended_us == 3000);
  auto only1 = reader->list_attempts(run.id, sluice::TaskId{1});
  require_ok(only1);
  REQUIRE(only1->size() == 2);
  CHECK((*only1)[0].attempt == 1);
  CHECK((*only1)[1].attempt == 2);

  auto events = reader->list_events(run.id);
  require_ok(events);
  std::vector<std::string> kinds;
  for (std::size_t i = 0; i < events->size(); ++i) {
    kinds.push_back((*events)[i].kind);
    if (i > 0) CHECK((*events)[i - 1].seq < (*events)[i].seq);
  }
  CHECK(kinds == std::vector<std::string>{"run:submitted", "run:running", "task:ready",
                                          "task:running", "task:ready", "task:running",
                                          "task:succeeded", "task:ready", "task:running",
                                          "task:failed", "task:skipped", "run:failed"});
  CHECK((*events)[2].task == sluice::TaskId{0});
  CHECK((*events)[7].detail == "exit code 3");
  CHECK((*events)[9].detail == "timed out");
  CHECK((*events)[9].time_us == 3000);
  CHECK_FALSE((*events)[11].task.has_value());

  auto got = reader->get_run(run.id);
  require_ok(got);
  CHECK(got->state == RunState::kFailed);
  CHECK(got->started_us == 1000);
  CHECK(got->ended_us == 3000);

  // A change for a task the run does not have is refused, and nothing of it is kept.
  RunUpdate bad;
  bad.changes = {{0, TaskState::kFailed, 1, 0, "x"}, {99, TaskState::kRunning, 1, 0, ""}};
  auto r = store->apply(run.id, bad);
  REQUIRE_FALSE(r);
  auto after = reader->list_tasks(run.id);
  require_ok(after);
  CHECK((*after)[0].state == TaskState::kSucceeded);
  auto unknown = store->apply(sluice::new_run_id(), u1);
  REQUIRE_FALSE(unknown);
  CHECK(unknown.error().code == ErrorCode::kNotFound);

  // A reader cannot write.
  auto ro_write = reader->apply(run.id, u1);
  REQUIRE_FALSE(ro_write);
  CHECK(ro_write.error().code == ErrorCode::kStore);
}

TEST_CASE("Runs are listed newest first and can be filtered by state", "[store]") {
  TempHome home;
  auto store = open_rw(home);
  Workflow wf = make_workflow("proj", "sweep", "aaaa", 2);
  auto old_run = start_run(*store, wf, 1700000000000ull);
  auto mid_run = start_run(*store, wf, 1700000001000ull);
  auto new_run = start_run(*store, wf, 1700000002000ull);
  RunUpdate u;
  u.run_state = RunState::kRunning;
  require_ok(store->apply(mid_run.id, u));

  auto all = store->list_runs({});
  require_ok(all);
  REQUIRE(all->size() == 3);
  CHECK((*all)[0].id == new_run.id);
  CHECK((*all)[1].id == mid_run.id);
  CHECK((*all)[2].id == old_run.id);
  CHECK((*all)[1].state == RunState::kRunning);
  CHECK((*all)[1].workflow_id() == "proj:sweep:1");

  std::vector<RunState> running{RunState::kRunning};
  auto r = store->list_runs(running);
  require_ok(r);
  REQUIRE(r->size() == 1);
  CHECK((*r)[0].id == mid_run.id);

  std::vector<RunState> two{RunState::kSubmitted, RunState::kSucceeded};
  auto s = store->list_runs(two);
  require_ok(s);
  REQUIRE(s->size() == 2);
  CHECK((*s)[0].id == new_run.id);
  CHECK((*s)[1].id == old_run.id);

  std::vector<RunState> none{RunState::kCancelled};
  auto n = store->list_runs(none);
  require_ok(n);
  CHECK(n->empty());
}

TEST_CASE("Run ids resolve from a unique prefix and refuse ambiguous or unknown ones", "[store]") {
  TempHome home;
  auto store = open_rw(home);
  Workflow wf = make_workflow("proj", "sweep", "aaaa", 1);
  // Same millisecond: the first 10 characters are shared.
  auto a = start_run(*store, wf, 1700000000000ull);
  auto b = start_run(*store, wf, 1700000000000ull);
  auto c = start_run(*store, wf, 1800000000000ull);

  auto exact = store->resolve_run_id(a.id);
  require_ok(exact);
  CHECK(*exact == a.id);

  // The shortest prefix that tells a from b.
  std::size_t n = 0;
  while (a.id[n] == b.id[n]) ++n;
  auto unique = store->resolve_run_id(a.id.substr(0, n + 1));
  require_ok(unique);
  CHECK(*unique == a.id);
  auto upper = a.id.substr(0, n + 1);
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  auto from_upper = store->resolve_run_id(upper);
  require_ok(from_upper);
  CHECK(*from_upper == a.id);
  auto only_c = store->resolve_run_id(c.id.substr(0, 4));
  require_ok(only_c);
  CHECK(*only_c == c.id);

  std::string shared = a.id.substr(0, n);
  auto ambiguous = store->resolve_run_id(shared);
  REQUIRE_FALSE(ambiguous);
  CHECK(ambiguous.error().code == ErrorCode::kInvalidInput);
  CHECK(ambiguous.error().message ==
        "run id prefix '" + shared + "' is ambiguous (matches 2 runs)");

  auto missing = store->resolve_run_id("zzzz");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == ErrorCode::kNotFound);
  CHECK(missing.error().message == "no run matches 'zzzz'");
  // LIKE wildcards are not wildcards here.
  auto wildcard = store->resolve_run_id("%");
  REQUIRE_FALSE(wildcard);
  CHECK(wildcard.error().code == ErrorCode::kNotFound);
  auto empty = store->resolve_run_id("");
  REQUIRE_FALSE(empty);

  auto gone = store->get_run("0000000000zzzzzzzzzzzzzzzz");
  REQUIRE_FALSE(gone);
  CHECK(gone.error().code == ErrorCode::kNotFound);
}

TEST_CASE("Removing a run deletes its rows and its directory and nothing else", "[store]") {
  TempHome home;
  auto store = open_rw(home);
  Workflow wf = make_workflow("proj", "sweep", "aaaa", 4);
  auto keep = start_run(*store, wf);
  auto drop = start_run(*store, wf);
  for (const auto& id : {keep.id, drop.id}) {
    RunUpdate u;
    u.run_state = RunState::kRunning;
    u.changes = {{0, TaskState::kRunning, 1, 0, ""}};
    AttemptRecord a;
    a.task = 0;
    a.attempt = 1;
    u.attempt_starts = {a};
    require_ok(store->apply(id, u));
  }
  fs::create_directories(store->attempt_dir(drop.id, "even.0", 1));
  {
    std::FILE* f = std::fopen((store->attempt_dir(drop.id, "even.0", 1) + "/stdout").c_str(), "w");
    REQUIRE(f);
    std::fputs("hello\n", f);
    std::fclose(f);
  }

  require_ok(store->remove_run(drop.id));
  CHECK_FALSE(fs::exists(store->run_dir(drop.id)));
  CHECK(fs::is_directory(store->run_dir(keep.id)));

  auto reader = open_ro(home);
  for (RunStore* s : {store.get(), reader.get()}) {
    auto g = s->get_run(drop.id);
    REQUIRE_FALSE(g);
    CHECK(g.error().code == ErrorCode::kNotFound);
    auto t = s->list_tasks(drop.id);
    REQUIRE_FALSE(t);
    CHECK(t.error().code == ErrorCode::kNotFound);
    auto all = s->list_runs({});
    require_ok(all);
    REQUIRE(all->size() == 1);
    CHECK((*all)[0].id == keep.id);
    auto kt = s->list_tasks(keep.id);
    require_ok(kt);
    CHECK(kt->size() == 4);
    auto ka = s->list_attempts(keep.id);
    require_ok(ka);
    CHECK(ka->size() == 1);
    auto ke = s->list_events(keep.id);
    require_ok(ke);
    CHECK(ke->size() == 3);
  }
  // Nothing of the dropped run is left in any table (a new run never inherits it).
  auto again = store->remove_run(drop.id);
  REQUIRE_FALSE(again);
  CHECK(again.error().code == ErrorCode::kNotFound);
  auto cannot = store->apply(drop.id, RunUpdate{});
  REQUIRE_FALSE(cannot);
  CHECK(cannot.error().code == ErrorCode::kNotFound);
}

TEST_CASE("Opening a home with no store read-only says nothing has run there", "[store]") {
  TempHome home;
  auto missing = RunStore::open(home.str(), RunStore::Mode::kReadOnly);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == ErrorCode::kNotFound);
  CHECK(missing.error().message ==
        "no Sluice store in " + home.str() + " (nothing has run here yet)");
  CHECK_FALSE(fs::exists(home.path));  // a reader creates nothing

  // Read-write creates the home (and its parents) and the database.
  TempHome parent;
  fs::path nested = parent.path / "a" / "b";
  auto rw = RunStore::open(nested.string(), RunStore::Mode::kReadWrite);
  require_ok(rw);
  CHECK(fs::exists(nested / "store.db"));
  auto ro = RunStore::open(nested.string(), RunStore::Mode::kReadOnly);
  require_ok(ro);
  auto runs = (*ro)->list_runs({});
  require_ok(runs);
  CHECK(runs->empty());
}

TEST_CASE("Processes that open a new store at the same moment all succeed", "[store]") {
  // Each opener reads the new file, then needs the exclusive lock of the switch to WAL,
  // which SQLite refuses at once to all but one (two `sluice run` in a fresh directory
  // failed 3 times in 40 with "setting WAL mode: database is locked").
  constexpr int kRounds = 20;
  constexpr int kOpeners = 6;
  int failures = 0;
  for (int round = 0; round < kRounds; ++round) {
    TempHome home;
    int go[2];
    REQUIRE(pipe(go) == 0);
    std::vector<pid_t> pids;
    for (int i = 0; i < kOpeners; ++i) {
      pid_t pid = fork();
      REQUIRE(pid >= 0);
      if (pid == 0) {
        ::close(go[1]);
        char c;
        (void)!::read(go[0], &c, 1);  // returns when the parent closes the pipe
        auto store = RunStore::open(home.str(), RunStore::Mode::kReadWrite);
        if (!store) std::fprintf(stderr, "%s\n", store.error().message.c_str());
        ::_exit(store ? 0 : 1);
      }
      pids.push_back(pid);
    }
    ::close(go[0]);
    ::close(go[1]);  // every opener starts at once
    for (pid_t pid : pids) {
      int status = 0;
      ::waitpid(pid, &status, 0);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failures;
    }
  }
  CHECK(failures == 0);
}

TEST_CASE("A reader in another process never fails while the coordinator writes", "[store]") {
  TempHome home;
  constexpr std::size_t kTasks = 10000;
  constexpr int kBatches = 200;
  constexpr std::size_t kPerBatch = kTasks / kBatches;

  // Fork before this process opens the database: SQLite connections must not cross fork().
  int go[2], ready[2], stop[2], result[2];
  REQUIRE(pipe(go) == 0);
  REQUIRE(pipe(ready) == 0);
  REQUIRE(pipe(stop) == 0);
  REQUIRE(pipe(result) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // Reader: wait for the run id, then poll until told to stop.
    char id[27] = {};
    if (read(go[0], id, 26) != 26) _exit(3);
    fcntl(stop[0], F_SETFL, O_NONBLOCK);
    long stats[4] = {0, 0, 0, 0};  // reads, errors, regressions, last succeeded count
    auto store = RunStore::open(home.str(), RunStore::Mode::kReadOnly);
    if (!store) _exit(4);
    std::size_t last = 0;
    bool signalled = false;
    char byte;
    // The read that follows the stop byte starts after every write has committed, so it is
    // the one that must see them all: no sleep decides what "the end" is.
    for (bool stopping = false; !stopping;) {
      stopping = read(stop[0], &byte, 1) == 1;
      auto runs = (*store)->list_runs({});
      auto tasks = (*store)->list_tasks(id);
      if (!runs || !tasks || runs->size() != 1) {
        ++stats[1];
        if (!runs) std::fprintf(stderr, "reader: %s\n", runs.error().message.c_str());
        if (!tasks) std::fprintf(stderr, "reader: %s\n", tasks.error().message.c_str());
        continue;
      }
      std::size_t succeeded = 0;
      for (const auto& t : *tasks) succeeded += t.state == TaskState::kSucceeded;
      if (succeeded < last) ++stats[2];
      last = succeeded;
      ++stats[0];
      if (!signalled) {
        signalled = write(ready[1], "r", 1) == 1;
      }
    }
    stats[3] = static_cast<long>(last);
    if (write(result[1], stats, sizeof stats) != sizeof stats) _exit(5);
    _exit(0);
  }

  auto store = open_rw(home);
  auto run = start_run(*store, make_workflow("proj", "big", "aaaa", kTasks));
  REQUIRE(write(go[1], run.id.data(), 26) == 26);
  char byte;
  REQUIRE(read(ready[0], &byte, 1) == 1);  // the reader is reading

  std::size_t write_errors = 0;
  for (int b = 0; b < kBatches; ++b) {
    RunUpdate u;
    if (b == 0) u.run_state = RunState::kRunning;
    for (std::size_t i = b * kPerBatch; i < (b + 1) * kPerBatch; ++i) {
      u.changes.push_back({static_cast<sluice::TaskId>(i), TaskState::kRunning, 1, 0, ""});
      u.changes.push_back({static_cast<sluice::TaskId>(i), TaskState::kSucceeded, 1, 0, ""});
    }
    if (b == kBatches - 1) u.run_state = RunState::kSucceeded;
    if (!store->apply(run.id, u)) ++write_errors;
    // Like a coordinator between batches: gives the reader time to interleave.
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  REQUIRE(write(stop[1], "s", 1) == 1);
  long stats[4] = {};
  REQUIRE(read(result[0], stats, sizeof stats) == sizeof stats);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  for (int fd : {go[0], go[1], ready[0], ready[1], stop[0], stop[1], result[0], result[1]}) {
    close(fd);
  }

  INFO("reads " << stats[0] << ", errors " << stats[1] << ", regressions " << stats[2]
                << ", last succeeded " << stats[3]);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(write_errors == 0);
  CHECK(stats[0] > 0);
  CHECK(stats[1] == 0);
  CHECK(stats[2] == 0);
  CHECK(stats[3] == static_cast<long>(kTasks));
  std::cout << "concurrent reader: " << stats[0] << " consistent reads during " << kBatches
            << " write batches\n";
}

TEST_CASE("Creating 100000 tasks and applying 100000 state changes is fast", "[store]") {
  TempHome home;
  auto store = open_rw(home);
  constexpr std::size_t kTasks = 100000;
  constexpr std::size_t kBatch = 1000;
  Workflow wf = make_workflow("proj", "huge", "aaaa", kTasks);
  auto rev = store->register_workflow(wf);
  require_ok(rev);
  const std::string id = sluice::new_run_id();

  auto t0 = std::chrono::steady_clock::now();
  double c0 = cpu_us();
  auto run = store->create_run(wf, *rev, id, "inproc");
  double c1 = cpu_us();
  auto t1 = std::chrono::steady_clock::now();
  require_ok(run);
  double create_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();

  // Realistic mix: every task goes running then succeeded (two changes per task), with
  // an attempt row started and ended for each.
  std::vector<RunUpdate> updates;
  for (std::size_t first = 0; first < kTasks / 2; first += kBatch / 2) {
    RunUpdate u;
    for (std::size_t i = first; i < first + kBatch / 2; ++i) {
      auto t = static_cast<sluice::TaskId>(i);
      u.changes.push_back({t, TaskState::kRunning, 1, 0, ""});
      u.changes.push_back({t, TaskState::kSucceeded, 1, 0, ""});
    }
    updates.push_back(std::move(u));
  }
  auto t2 = std::chrono::steady_clock::now();
  double c2 = cpu_us();
  for (const auto& u : updates) require_ok(store->apply(id, u));
  double c3 = cpu_us();
  auto t3 = std::chrono::steady_clock::now();
  double us_per_change =
      std::chrono::duration<double, std::micro>(t3 - t2).count() / static_cast<double>(kTasks);

  // The same volume with attempt bookkeeping as the coordinator writes it.
  std::vector<RunUpdate> with_attempts;
  for (std::size_t first = kTasks / 2; first < kTasks; first += kBatch / 2) {
    RunUpdate u;
    for (std::size_t i = first; i < first + kBatch / 2; ++i) {
      auto t = static_cast<sluice::TaskId>(i);
      u.changes.push_back({t, TaskState::kRunning, 1, 0, ""});
      u.changes.push_back({t, TaskState::kSucceeded, 1, 0, ""});
      AttemptRecord a;
      a.task = t;
      a.attempt = 1;
      a.host = "node1";
      u.attempt_starts.push_back(a);
      a.state = TaskState::kSucceeded;
      u.attempt_ends.push_back(a);
    }
    with_attempts.push_back(std::move(u));
  }
  auto t4 = std::chrono::steady_clock::now();
  double c4 = cpu_us();
  for (const auto& u : with_attempts) require_ok(store->apply(id, u));
  double c5 = cpu_us();
  auto t5 = std::chrono::steady_clock::now();
  double us_per_change_attempts =
      std::chrono::duration<double, std::micro>(t5 - t4).count() / static_cast<double>(kTasks);

  // The worst case for batching: every change in a batch is for a different task.
  Workflow wf2 = make_workflow("proj", "huge", "aaaa", kTasks);
  const std::string id2 = sluice::new_run_id();
  require_ok(store->create_run(wf2, *rev, id2, "inproc"));
  std::vector<RunUpdate> spread;
  for (std::size_t first = 0; first < kTasks; first += kBatch) {
    RunUpdate u;
    for (std::size_t i = first; i < first + kBatch; ++i) {
      u.changes.push_back({static_cast<sluice::TaskId>(i), TaskState::kReady, 0, 0, ""});
    }
    spread.push_back(std::move(u));
  }
  auto t6 = std::chrono::steady_clock::now();
  double c6 = cpu_us();
  for (const auto& u : spread) require_ok(store->apply(id2, u));
  double c7 = cpu_us();
  auto t7 = std::chrono::steady_clock::now();

  const double n = static_cast<double>(kTasks);
  std::cout << "store: create_run with " << kTasks << " tasks: " << create_ms << " ms wall, "
            << (c1 - c0) / 1e3 << " ms cpu\n"
            << "store: apply, batches of " << kBatch << ": " << us_per_change << " us wall, "
            << (c3 - c2) / n << " us cpu per state change\n"
            << "store: apply with attempt start+end per task: " << us_per_change_attempts
            << " us wall, " << (c5 - c4) / n << " us cpu per state change\n"
            << "store: apply, one change per task per batch: "
            << std::chrono::duration<double, std::micro>(t7 - t6).count() / n << " us wall, "
            << (c7 - c6) / n << " us cpu per state change\n";

  auto tasks = store->list_tasks(id);
  require_ok(tasks);
  REQUIRE(tasks->size() == kTasks);
  std::size_t succeeded = 0;
  for (const auto& t : *tasks) succeeded += t.state == TaskState::kSucceeded;
  CHECK(succeeded == kTasks);
  auto attempts = store->list_attempts(id);
  require_ok(attempts);
  REQUIRE(attempts->size() == kTasks / 2);
  CHECK(attempts->back().state == TaskState::kSucceeded);
  auto events = store->list_events(id);
  require_ok(events);
  REQUIRE(events->size() == 2 * kTasks + 1);
  for (std::size_t i = 1; i < events->size(); ++i) {
    const auto& e = (*events)[i];
    // In order: task i/2 running, then succeeded.
    if (e.task != sluice::TaskId((i - 1) / 2) ||
        e.kind != (i % 2 ? "task:running" : "task:succeeded")) {
      FAIL("event " << i << " is " << e.kind << " of task " << e.task.value_or(~0u));
    }
  }
  auto ready = store->list_tasks(id2);
  require_ok(ready);
  std::size_t n_ready = 0;
  for (const auto& t : *ready) n_ready += t.state == TaskState::kReady;
  CHECK(n_ready == kTasks);
}

TEST_CASE("Several changes to one task in a batch leave the same row as one batch each",
          "[store]") {
  TempHome home;
  auto store = open_rw(home);
  Workflow wf = make_workflow("proj", "fold", "aaaa", 3);
  auto folded = start_run(*store, wf);
  auto stepped = start_run(*store, wf);

  // Task 0: a failed attempt with a retry, then success; task 1: runs and stays running;
  // task 2: skipped. Attempt 1 of task 0 starts and ends within the batch.
  std::vector<StateChange> changes = {
      {0, TaskState::kReady, 0, 0, ""},     {0, TaskState::kRunning, 1, 0, ""},
      {1, TaskState::kRunning, 1, 0, ""},   {0, TaskState::kReady, 1, 2, "exit code 2"},
      {0, TaskState::kRunning, 2, 0, ""},   {2, TaskState::kSkipped, 0, 0, "failed dependency"},
      {0, TaskState::kSucceeded, 2, 0, ""},
  };
  AttemptRecord start;
  start.task = 0;
  start.attempt = 1;
  start.host = "node7";
  start.handle = "pid:1";
  AttemptRecord end = start;
  end.state = TaskState::kFailed;
  end.exit_code = 2;
  end.reason = "exit code 2";

  RunUpdate all;
  all.now_us = 5000;
  all.changes = changes;
  all.attempt_starts = {start};
  all.attempt_ends = {end};
  require_ok(store->apply(folded.id, all));
  for (std::size_t i = 0; i < changes.size(); ++i) {
    RunUpdate one;
    one.now_us = 5000;
    one.changes = {changes[i]};
    if (i == 1) one.attempt_starts = {start};
    if (i == 3) one.attempt_ends = {end};
    require_ok(store->apply(stepped.id, one));
  }

  // Later (a resumed run): the skipped task runs after all; it is no longer ended.
  std::vector<StateChange> again = {{2, TaskState::kReady, 0, 0, ""},
                                    {2, TaskState::kRunning, 1, 0, ""}};
  RunUpdate later;
  later.now_us = 6000;
  later.changes = again;
  require_ok(store->apply(folded.id, later));
  for (const auto& c : again) {
    RunUpdate one;
    one.now_us = 6000;
    one.changes = {c};
    require_ok(store->apply(stepped.id, one));
  }

  auto a = store->list_tasks(folded.id);
  auto b = store->list_tasks(stepped.id);
  require_ok(a);
  require_ok(b);
  REQUIRE(a->size() == b->size());
  for (std::size_t i = 0; i < a->size(); ++i) {
    INFO("task " << i);
    CHECK((*a)[i].state == (*b)[i].state);
    CHECK((*a)[i].attempts == (*b)[i].attempts);
    CHECK((*a)[i].exit_code == (*b)[i].exit_code);
    CHECK((*a)[i].reason == (*b)[i].reason);
    CHECK((*a)[i].started_us == (*b)[i].started_us);
    CHECK((*a)[i].ended_us == (*b)[i].ended_us);
  }
  CHECK((*a)[0].state == TaskState::kSucceeded);
  CHECK((*a)[0].attempts == 2);
  CHECK((*a)[0].ended_us == 5000);
  CHECK((*a)[1].state == TaskState::kRunning);
  CHECK((*a)[1].started_us == 5000);
  CHECK((*a)[1].ended_us == 0);
  CHECK((*a)[2].state == TaskState::kRunning);
  CHECK((*a)[2].started_us == 6000);
  CHECK((*a)[2].ended_us == 0);

  auto aa = store->list_attempts(folded.id);
  auto ba = store->list_attempts(stepped.id);
  require_ok(aa);
  require_ok(ba);
  REQUIRE(aa->size() == 1);
  REQUIRE(ba->size() == 1);
  for (const auto* v : {&*aa, &*ba}) {
    const AttemptRecord& r = v->front();
    CHECK(r.state == TaskState::kFailed);
    CHECK(r.exit_code == 2);
    CHECK(r.reason == "exit code 2");
    CHECK(r.started_us == 5000);
    CHECK(r.ended_us == 5000);
    CHECK(r.host == "node7");
    CHECK(r.handle == "pid:1");
  }

  auto ae = store->list_events(folded.id);
  auto be = store->list_events(stepped.id);
  require_ok(ae);
  require_ok(be);
  REQUIRE(ae->size() == changes.size() + again.size() + 1);
  REQUIRE(ae->size() == be->size());
  for (std::size_t i = 0; i < ae->size(); ++i) {
    CHECK((*ae)[i].kind == (*be)[i].kind);
    CHECK((*ae)[i].task == (*be)[i].task);
    CHECK((*ae)[i].detail == (*be)[i].detail);
  }

  // An attempt that ends without a recorded start is still recorded.
  RunUpdate lone;
  AttemptRecord orphan;
  orphan.task = 1;
  orphan.attempt = 1;
  orphan.state = TaskState::kCancelled;
  orphan.reason = "cancelled";
  lone.attempt_ends = {orphan};
  require_ok(store->apply(folded.id, lone));
  auto only = store->list_attempts(folded.id, sluice::TaskId{1});
  require_ok(only);
  REQUIRE(only->size() == 1);
  CHECK(only->front().state == TaskState::kCancelled);
  CHECK(only->front().ended_us > 0);
}
