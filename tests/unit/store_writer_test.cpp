// The coordinator's writer thread (core/src/store_writer.hpp), the store connections it
// relies on sharing one process, and the cache-key filter a run reads at its start.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "sluice/engine/cache_key.hpp"
#include "sluice/engine/store.hpp"
#include "store/store_writer.hpp"
#include "support/store_fixtures.hpp"

namespace fs = std::filesystem;
using sluice::AttemptRecord;
using sluice::RunState;
using sluice::RunStore;
using sluice::RunUpdate;
using sluice::TaskState;
using namespace sluice::testing;

namespace {

// Whether another process sees a lock held on `path` (fork: only the child asks, so
// the answer is about this process's locks; F_GETLK never reports the asker's own).
bool locked_for_others(const fs::path& path) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) _exit(3);
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;  // the whole file: SQLite's lock bytes lie past 1 GiB
    if (fcntl(fd, F_GETLK, &fl) != 0) _exit(4);
    _exit(fl.l_type == F_UNLCK ? 1 : 0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  INFO("probe exit " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1));
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) <= 1);
  return WEXITSTATUS(status) == 0;
}

}  // namespace

TEST_CASE("Opening a second connection keeps the locks of the first one in the same process",
          "[store][writer]") {
  // POSIX locks belong to the process: closing any descriptor of the file drops them all.
  // A coordinator holds two connections; had opening the second one dropped the first
  // one's shared lock, another process closing its own connection could checkpoint and
  // delete the WAL that this one still appends to, and its commits would be lost.
  TempHome home;
  auto first = open_rw(home);
  auto run = start_run(*first, make_workflow("proj", "locks", "aaaa", 1));
  const fs::path db = home.path / "store.db";
  REQUIRE(locked_for_others(db));  // WAL mode: an open connection holds a shared lock
  auto second = open_rw(home);
  CHECK(locked_for_others(db));
  auto reader = RunStore::open(home.str(), RunStore::Mode::kReadOnly);
  require_ok(reader);
  CHECK(locked_for_others(db));
  // Both write, and a fresh connection sees both.
  RunUpdate u;
  u.changes = {{0, TaskState::kRunning, 1, 0, ""}};
  require_ok(first->apply(run.id, u));
  u.changes = {{0, TaskState::kSucceeded, 1, 0, ""}};
  u.run_state = RunState::kSucceeded;
  require_ok(second->apply(run.id, u));
  auto fresh = open_ro(home);
  auto rec = fresh->get_run(run.id);
  require_ok(rec);
  CHECK(rec->state == RunState::kSucceeded);
}

TEST_CASE("The writer thread commits batches in the order handed over, on its own connection",
          "[store][writer]") {
  TempHome home;
  auto store = open_rw(home);
  constexpr std::size_t kTasks = 400;
  auto run = start_run(*store, make_workflow("proj", "bg", "aaaa", kTasks));
  auto conn = RunStore::open(home.str(), RunStore::Mode::kReadWrite);
  require_ok(conn);
  sluice::StoreWriter writer(std::move(*conn), run.id);

  // Each task runs and then succeeds, in two changes that may land in different
  // batches; a refused handoff keeps accumulating, as the coordinator does.
  RunUpdate pending;
  std::size_t handed = 0, refused = 0;
  for (std::size_t i = 0; i < kTasks; ++i) {
    const auto t = static_cast<sluice::TaskId>(i);
    pending.changes.push_back({t, TaskState::kRunning, 1, 0, ""});
    AttemptRecord a;
    a.task = t;
    a.attempt = 1;
    a.started_us = 1000 + static_cast<std::int64_t>(i);
    pending.attempt_starts.push_back(a);
    pending.changes.push_back({t, TaskState::kSucceeded, 1, 0, ""});
    a.state = TaskState::kSucceeded;
    a.ended_us = 2000 + static_cast<std::int64_t>(i);
    pending.attempt_ends.push_back(a);
    if (i % 7 != 6) continue;
    pending.now_us = 3000 + static_cast<std::int64_t>(i);
    auto taken = writer.try_submit(pending);
    require_ok(taken);
    if (*taken) {
      ++handed;
      // What was handed over is gone from here: nothing is committed twice.
      CHECK(pending.changes.empty());
      CHECK(pending.attempt_starts.empty());
      CHECK(pending.attempt_ends.empty());
    } else {
      ++refused;
    }
  }
  pending.run_state = RunState::kSucceeded;
  require_ok(writer.commit_now(pending));
  CHECK(handed > 0);
  CHECK(handed + refused == kTasks / 7);
  CHECK_FALSE(writer.busy());
  CHECK_FALSE(writer.success_in_flight());

  auto reader = open_ro(home);
  auto tasks = reader->list_tasks(run.id);
  require_ok(tasks);
  REQUIRE(tasks->size() == kTasks);
  for (const auto& t : *tasks) {
    INFO("task " << t.name);
    CHECK(t.state == TaskState::kSucceeded);
    CHECK(t.attempts == 1);
  }
  auto attempts = reader->list_attempts(run.id);
  require_ok(attempts);
  CHECK(attempts->size() == kTasks);
  auto rec = reader->get_run(run.id);
  require_ok(rec);
  CHECK(rec->state == RunState::kSucceeded);
  // Events keep the order in which the changes were made: each task ran, then succeeded.
  auto events = reader->list_events(run.id);
  require_ok(events);
  std::vector<int> seen(kTasks, 0);
  for (const auto& e : *events) {
    if (!e.task) continue;
    int& n = seen[*e.task];
    if (e.kind == "task:running") CHECK(n++ == 0);
    if (e.kind == "task:succeeded") CHECK(n++ == 1);
  }
  for (std::size_t i = 0; i < kTasks; ++i) CHECK(seen[i] == 2);
}

TEST_CASE("A batch the writer thread fails to commit is reported, and nothing later is taken",
          "[store][writer]") {
  TempHome home;
  auto store = open_rw(home);
  auto run = start_run(*store, make_workflow("proj", "bad", "aaaa", 2));
  auto conn = RunStore::open(home.str(), RunStore::Mode::kReadWrite);
  require_ok(conn);
  sluice::StoreWriter writer(std::move(*conn), run.id);

  RunUpdate bad;
  bad.changes.push_back({7, TaskState::kRunning, 1, 0, ""});  // the run has no task 7
  auto taken = writer.try_submit(bad);
  require_ok(taken);
  REQUIRE(*taken);
  auto waited = writer.wait();
  REQUIRE_FALSE(waited);
  CHECK(waited.error().message.find("has no task 7") != std::string::npos);

  RunUpdate good;
  good.changes.push_back({0, TaskState::kRunning, 1, 0, ""});
  CHECK_FALSE(writer.try_submit(good));
  CHECK(good.changes.size() == 1);  // not taken
  CHECK_FALSE(writer.commit_now(good));
  // The failed batch was rolled back as a whole, and the refused one never applied.
  auto tasks = store->list_tasks(run.id);
  require_ok(tasks);
  for (const auto& t : *tasks) CHECK(t.state == TaskState::kWaiting);
}

TEST_CASE("The cache key filter holds the keys filed before it was read, and only those",
          "[store][cache]") {
  TempHome home;
  auto store = open_rw(home);
  auto run = start_run(*store, make_workflow("proj", "cached", "aaaa", 1));
  sluice::CacheKeyParts parts;
  RunUpdate u;
  std::vector<std::string> filed;
  for (int i = 0; i < 50; ++i) {
    parts.command = "cmd" + std::to_string(i);
    sluice::CacheEntry e;
    e.project = i < 40 ? "proj" : "other";
    e.key = parts.key();
    e.workflow = "cached";
    e.task = "t";
    e.run_id = run.id;
    e.attempt = 1;
    e.attempt_dir = "/x";
    e.result_hash = "r";
    e.parts = parts.serialize();
    if (i < 40) filed.push_back(e.key);
    u.cache_entries.push_back(e);
  }
  sluice::CacheEntry odd = u.cache_entries.front();
  odd.key = "made-by-another-version";  // not "xxh3:<hex>": hashed, still held
  u.cache_entries.push_back(odd);
  require_ok(store->apply(run.id, u));

  auto filter = sluice::CacheKeyFilter::load(*store, "proj");
  require_ok(filter);
  REQUIRE(filter->has_value());
  for (const auto& k : filed) CHECK((*filter)->may_hold(k));
  CHECK((*filter)->may_hold("made-by-another-version"));
  int false_hits = 0;
  for (int i = 40; i < 50; ++i) {  // filed under another project
    parts.command = "cmd" + std::to_string(i);
    false_hits += (*filter)->may_hold(parts.key());
  }
  for (int i = 100; i < 1100; ++i) {  // never filed
    parts.command = "cmd" + std::to_string(i);
    false_hits += (*filter)->may_hold(parts.key());
  }
  CHECK(false_hits == 0);  // 64-bit digests of 1,010 keys: a collision would be news

  // Past its limit the filter is not built: every key is then looked up in the store.
  auto capped = sluice::CacheKeyFilter::load(*store, "proj", 10);
  require_ok(capped);
  CHECK_FALSE(capped->has_value());
}
