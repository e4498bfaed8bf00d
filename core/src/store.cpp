// RunStore over SQLite (WAL). One connection per RunStore; write transactions are short
// BEGIN IMMEDIATE ... COMMIT batches so that readers in other processes never wait long,
// and every connection waits (busy_timeout) instead of failing with "database is locked".
#include "sluice/store.hpp"

#include <sqlite3.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <climits>
#include <filesystem>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <utility>

namespace sluice {
namespace {

namespace fs = std::filesystem;

constexpr int kSchemaVersion = 1;

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS workflows (
  id           INTEGER PRIMARY KEY,
  project      TEXT NOT NULL,
  name         TEXT NOT NULL,
  revision     INTEGER NOT NULL,
  content_hash TEXT NOT NULL,
  definition   TEXT NOT NULL,
  source_path  TEXT NOT NULL DEFAULT '',
  created_us   INTEGER NOT NULL,
  UNIQUE (project, name, revision),
  UNIQUE (project, name, content_hash)
);
CREATE TABLE IF NOT EXISTS runs (
  rowid         INTEGER PRIMARY KEY AUTOINCREMENT,
  id            TEXT NOT NULL UNIQUE,
  workflow_rowid INTEGER NOT NULL REFERENCES workflows (id),
  state         TEXT NOT NULL,
  backend       TEXT NOT NULL DEFAULT '',
  source_path   TEXT NOT NULL DEFAULT '',
  base_dir      TEXT NOT NULL DEFAULT '',
  host          TEXT NOT NULL DEFAULT '',
  created_us    INTEGER NOT NULL,
  started_us    INTEGER NOT NULL DEFAULT 0,
  ended_us      INTEGER NOT NULL DEFAULT 0,
  task_count    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tasks (
  run        INTEGER NOT NULL REFERENCES runs (rowid),
  idx        INTEGER NOT NULL,
  name       TEXT NOT NULL,
  grp        TEXT NOT NULL DEFAULT '',
  state      TEXT NOT NULL,
  attempts   INTEGER NOT NULL DEFAULT 0,
  exit_code  INTEGER NOT NULL DEFAULT 0,
  reason     TEXT NOT NULL DEFAULT '',
  started_us INTEGER NOT NULL DEFAULT 0,
  ended_us   INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (run, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS attempts (
  run        INTEGER NOT NULL REFERENCES runs (rowid),
  task       INTEGER NOT NULL,
  attempt    INTEGER NOT NULL,
  state      TEXT NOT NULL,
  exit_code  INTEGER NOT NULL DEFAULT 0,
  reason     TEXT NOT NULL DEFAULT '',
  started_us INTEGER NOT NULL DEFAULT 0,
  ended_us   INTEGER NOT NULL DEFAULT 0,
  host       TEXT NOT NULL DEFAULT '',
  handle     TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (run, task, attempt)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
  seq     INTEGER PRIMARY KEY,
  run     INTEGER NOT NULL REFERENCES runs (rowid),
  time_us INTEGER NOT NULL,
  task    INTEGER,
  kind    TEXT NOT NULL,
  detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS events_by_run ON events (run);
)sql";

// ---- RAII over the C API ------------------------------------------------------------

struct DbClose {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbClose>;

struct StmtFinalize {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalize>;

// A borrowed prepared statement for one use: binds, steps, reads columns, and resets
// on destruction (which also ends the implicit read transaction of a SELECT, so
// readers never pin the WAL). Text is bound SQLITE_STATIC: the bound strings must
// outlive the Query, which is why binding an rvalue std::string is not allowed.
class Query {
 public:
  explicit Query(sqlite3_stmt* s) : s_(s) {}
  ~Query() { sqlite3_reset(s_); }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  Query& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Query& bind(int i, std::string_view v) {
    // A null data pointer would bind SQL NULL; an empty view is the empty string.
    sqlite3_bind_text(s_, i, v.data() ? v.data() : "", static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  Query& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
  Query& bind(int i, std::string&& v) = delete;
  Query& bind_null(int i) {
    sqlite3_bind_null(s_, i);
    return *this;
  }

  int step() { return sqlite3_step(s_); }
  void reset() { sqlite3_reset(s_); }

  std::int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  int i32(int c) const { return sqlite3_column_int(s_, c); }
  bool is_null(int c) const { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
  std::string text(int c) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, c));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, c)))
             : std::string();
  }

 private:
  sqlite3_stmt* s_;
};

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string host_name() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

// "task:<state>" / "run:<state>", built once.
const std::string& task_event_kind(TaskState s) {
  static const auto kinds = [] {
    std::array<std::string, kTaskStateCount> k;
    for (int i = 0; i < kTaskStateCount; ++i) {
      k[static_cast<std::size_t>(i)] = "task:" + std::string(to_string(static_cast<TaskState>(i)));
    }
    return k;
  }();
  return kinds[static_cast<std::size_t>(s)];
}

std::string run_event_kind(RunState s) {
  return "run:" + std::string(to_string(s));
}

Error store_error(sqlite3* db, std::string_view what) {
  return Error{ErrorCode::kStore,
               "store: " + std::string(what) + ": " + std::string(sqlite3_errmsg(db))};
}

Expected<void> exec(sqlite3* db, const char* sql, std::string_view what) {
  if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
    return tl::unexpected(store_error(db, what));
  }
  return {};
}

// A write transaction: BEGIN IMMEDIATE takes the write lock up front (waiting up to
// busy_timeout for another writer), so it never fails half-way on a lock upgrade.
// Rolled back unless committed.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) {}
  ~Transaction() {
    if (open_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  Expected<void> begin() {
    auto r = exec(db_, "BEGIN IMMEDIATE", "begin transaction");
    if (r) open_ = true;
    return r;
  }
  Expected<void> commit() {
    auto r = exec(db_, "COMMIT", "commit");
    if (r) open_ = false;
    return r;
  }

 private:
  sqlite3* db_;
  bool open_ = false;
};

}  // namespace

// ---- Impl ---------------------------------------------------------------------------

struct RunStore::Impl {
  DbPtr db;
  bool read_only = false;
  std::unordered_map<std::string, StmtPtr> stmts;  // keyed by SQL text
  std::unordered_map<std::string, std::int64_t> run_rowids;

  Error error(std::string_view what) const { return store_error(db.get(), what); }
  Expected<void> exec(const char* sql, std::string_view what) {
    return sluice::exec(db.get(), sql, what);
  }

  // A cached statement (persistent: it lives as long as the connection).
  Expected<sqlite3_stmt*> prepare(const std::string& sql) {
    auto it = stmts.find(sql);
    if (it != stmts.end()) return it->second.get();
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v3(db.get(), sql.c_str(), static_cast<int>(sql.size()),
                           SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
      return tl::unexpected(error("prepare"));
    }
    stmts.emplace(sql, StmtPtr(s));
    return s;
  }

  Expected<void> check_writable() const {
    if (read_only) {
      return make_error(ErrorCode::kStore, "store: opened read-only; cannot write");
    }
    return {};
  }

  // The rowid of a run, by full id. Cached only for a writer: a reader in another
  // process must notice a run that was removed meanwhile.
  Expected<std::int64_t> run_rowid(const std::string& run_id) {
    if (!read_only) {
      auto it = run_rowids.find(run_id);
      if (it != run_rowids.end()) return it->second;
    }
    auto s = prepare("SELECT rowid FROM runs WHERE id = ?1");
    if (!s) return tl::unexpected(s.error());
    Query q(*s);
    q.bind(1, run_id);
    int rc = q.step();
    if (rc == SQLITE_DONE) return make_error(ErrorCode::kNotFound, "no run '" + run_id + "'");
    if (rc != SQLITE_ROW) return tl::unexpected(error("looking up run " + run_id));
    std::int64_t rowid = q.i64(0);
    if (!read_only) run_rowids.emplace(run_id, rowid);
    return rowid;
  }
};

namespace {

constexpr const char* kRunColumns =
    "SELECT r.id, w.project, w.name, w.revision, w.content_hash, r.state, r.backend, "
    "r.source_path, r.base_dir, r.host, r.created_us, r.started_us, r.ended_us, r.task_count "
    "FROM runs r JOIN workflows w ON w.id = r.workflow_rowid ";

Expected<RunRecord> read_run(const Query& q) {
  RunRecord r;
  r.id = q.text(0);
  r.project = q.text(1);
  r.workflow = q.text(2);
  r.revision = q.i32(3);
  r.content_hash = q.text(4);
  std::string state = q.text(5);
  auto parsed = run_state_from_string(state);
  if (!parsed) {
    return make_error(ErrorCode::kStore,
                      "store: run " + r.id + " has an unknown state '" + state + "'");
  }
  r.state = *parsed;
  r.backend = q.text(6);
  r.source_path = q.text(7);
  r.base_dir = q.text(8);
  r.host = q.text(9);
  r.created_us = q.i64(10);
  r.started_us = q.i64(11);
  r.ended_us = q.i64(12);
  r.task_count = static_cast<std::size_t>(q.i64(13));
  return r;
}

Expected<TaskState> parse_task_state(const std::string& s, std::string_view where) {
  auto parsed = task_state_from_string(s);
  if (!parsed) {
    return make_error(ErrorCode::kStore,
                      "store: " + std::string(where) + " has an unknown state '" + s + "'");
  }
  return *parsed;
}

}  // namespace

std::string RunRecord::workflow_id() const {
  return project + ":" + workflow + ":" + std::to_string(revision);
}

// ---- open -----------------------------------------------------------------------------

Expected<std::unique_ptr<RunStore>> RunStore::open(const std::string& home, Mode mode) {
  const bool read_only = mode == Mode::kReadOnly;
  const fs::path db_path = fs::path(home) / "store.db";
  std::error_code ec;
  if (read_only) {
    if (!fs::exists(db_path, ec)) {
      return make_error(ErrorCode::kNotFound,
                        "no Sluice store in " + home + " (nothing has run here yet)");
    }
  } else {
    fs::create_directories(fs::path(home) / "runs", ec);
    if (ec) {
      return make_error(ErrorCode::kIo,
                        "cannot create the Sluice home " + home + ": " + ec.message());
    }
  }

  std::unique_ptr<RunStore> store(new RunStore());
  store->home_ = home;
  store->impl_ = std::make_unique<Impl>();
  Impl& impl = *store->impl_;
  impl.read_only = read_only;

  // One RunStore per thread, so the connection needs no mutex of its own.
  int flags = SQLITE_OPEN_NOMUTEX |
              (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(db_path.c_str(), &raw, flags, nullptr);
  impl.db.reset(raw);
  if (rc != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    return make_error(ErrorCode::kStore, "store: opening " + db_path.string() + ": " + msg);
  }
  sqlite3_extended_result_codes(raw, 1);

  // busy_timeout first, so that the other PRAGMAs wait for a busy writer too.
  if (auto r = impl.exec("PRAGMA busy_timeout = 10000", "setting busy_timeout"); !r) {
    return tl::unexpected(r.error());
  }
  if (!read_only) {
    // Persistent in the file: readers inherit it.
    if (auto r = impl.exec("PRAGMA journal_mode = WAL", "setting WAL mode"); !r) {
      return tl::unexpected(r.error());
    }
  }
  if (auto r = impl.exec(
          "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -65536",
          "setting PRAGMAs");
      !r) {
    return tl::unexpected(r.error());
  }

  int version = 0;
  {
    auto s = impl.prepare("PRAGMA user_version");
    if (!s) return tl::unexpected(s.error());
    Query q(*s);
    if (q.step() != SQLITE_ROW) return tl::unexpected(impl.error("reading the schema version"));
    version = q.i32(0);
  }
  if (version > kSchemaVersion) {
    return make_error(ErrorCode::kStore, "store: " + db_path.string() + " has schema version " +
                                             std::to_string(version) +
                                             ", newer than this sluice understands (" +
                                             std::to_string(kSchemaVersion) + ")");
  }
  if (version < kSchemaVersion) {
    if (read_only) {
      // A store still being created by its first writer: nothing in it yet.
      return make_error(ErrorCode::kNotFound,
                        "no Sluice store in " + home + " (nothing has run here yet)");
    }
    Transaction txn(impl.db.get());
    if (auto r = txn.begin(); !r) return tl::unexpected(r.error());
    if (auto r = impl.exec(kSchema, "creating the schema"); !r) return tl::unexpected(r.error());
    std::string set_version = "PRAGMA user_version = " + std::to_string(kSchemaVersion);
    if (auto r = impl.exec(set_version.c_str(), "setting the schema version"); !r) {
      return tl::unexpected(r.error());
    }
    if (auto r = txn.commit(); !r) return tl::unexpected(r.error());
  }
  return store;
}

RunStore::~RunStore() {
  if (impl_) {
    impl_->stmts.clear();  // finalize statements before closing the connection
  }
}

std::string RunStore::run_dir(const std::string& run_id) const {
  return (fs::path(home_) / "runs" / run_id).string();
}

std::string RunStore::attempt_dir(const std::string& run_id, const std::string& task,
                                  std::uint32_t attempt) const {
  return (fs::path(home_) / "runs" / run_id / "tasks" / task / std::to_string(attempt)).string();
}

// ---- writes ---------------------------------------------------------------------------

Expected<int> RunStore::register_workflow(const Workflow& workflow) {
  Impl& impl = *impl_;
  if (auto r = impl.check_writable(); !r) return tl::unexpected(r.error());
  Transaction txn(impl.db.get());
  if (auto r = txn.begin(); !r) return tl::unexpected(r.error());

  int revision = 0;
  {
    auto s = impl.prepare(
        "SELECT revision FROM workflows WHERE project = ?1 AND name = ?2 AND content_hash = ?3");
    if (!s) return tl::unexpected(s.error());
    Query q(*s);
    q.bind(1, workflow.project).bind(2, workflow.name).bind(3, workflow.content_hash);
    int rc = q.step();
    if (rc == SQLITE_ROW) return q.i32(0);  // known content: its revision (rolls back)
    if (rc != SQLITE_DONE) return tl::unexpected(impl.error("looking up workflow"));
  }
  {
    auto s = impl.prepare(
        "SELECT coalesce(max(revision), 0) + 1 FROM workflows WHERE project = ?1 AND name = ?2");
    if (!s) return tl::unexpected(s.error());
    Query q(*s);
    q.bind(1, workflow.project).bind(2, workflow.name);
    if (q.step() != SQLITE_ROW) return tl::unexpected(impl.error("numbering workflow revision"));
    revision = q.i32(0);
  }
  {
    auto s = impl.prepare(
        "INSERT INTO workflows (project, name, revision, content_hash, definition, source_path, "
        "created_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    if (!s) return tl::unexpected(s.error());
    Query q(*s);
    q.bind(1, workflow.project)
        .bind(2, workflow.name)
        .bind(3, std::int64_t{revision})
        .bind(4, workflow.content_hash)
        .bind(5, workflow.text)
        .bind(6, workflow.source_path)
        .bind(7, now_us());
    if (q.step() != SQLITE_DONE) return tl::unexpected(impl.error("registering workflow"));
  }
  if (auto r = txn.commit(); !r) return tl::unexpected(r.error());
  return revision;
}

Expected<RunRecord> RunStore::create_run(const Workflow& workflow, int revision,
                                         const std::string& run_id, const std::string& backend) {
  Impl& impl = *impl_;
  if (auto r = impl.check_writable(); !r) return tl::unexpected(r.error());
  if (run_id.empty()) return make_error(ErrorCode::kInvalidInput, "empty run id");
  const std::int64_t now = now_us();
  const std::string host = host_name();

  Transaction txn(impl.db.get());
  if (auto r = txn.begin(); !r) return tl::unexpected(r.error());

  std::int64_t workflow_rowid = 0;
  {
    auto s =
        impl.prepare("SELECT id FROM workflows WHERE project = ?1 AND name = ?2 AND revision = ?3");
    if (!s) return tl::unexpected(s.error());
    Query q(*s);
    q.bind(1, workflow.project).bind(2, workflow.name).bind(3, std::int64_t{revision});
    int rc = q.step();
    if (rc == SQLITE_DONE) {
      return make_error(ErrorCode::kNotFound, "workflow " + workflow.key() + ":" +
                                                  std::to_string(revision) + " is not registered");
    }
    if (rc != SQLITE_ROW) return tl::unexpected(impl.error("looking up workflow"));
    workflow_rowid = q.i64(0);
  }

  std::int64_t run_rowid = 0;
  {
    auto s = impl.prepare(
        "INSERT INTO runs (id, workflow_rowid, state, backend, source_path, base_dir, host, "
        "created_us, task_count) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    if (!s) return tl::unexpected(s.error());
    Query q(*s);
    q.bind(1, run_id)
        .bind(2, workflow_rowid)
        .bind(3, to_string(RunState::kSubmitted))
        .bind(4, backend)
        .bind(5, workflow.source_path)
        .bind(6, workflow.base_dir)
        .bind(7, host)
        .bind(8, now)
        .bind(9, static_cast<std::int64_t>(workflow.tasks.size()));
    int rc = q.step();
    if (rc == SQLITE_CONSTRAINT_UNIQUE) {
      return make_error(ErrorCode::kConflict, "run " + run_id + " already exists");
    }
    if (rc != SQLITE_DONE) return tl::unexpected(impl.error("creating run " + run_id));
    run_rowid = sqlite3_last_insert_rowid(impl.db.get());
  }
  {
    auto s =
        impl.prepare("INSERT INTO tasks (run, idx, name, grp, state) VALUES (?1, ?2, ?3, ?4, ?5)");
    if (!s) return tl::unexpected(s.error());
    Query q(*s);
    q.bind(1, run_rowid).bind(5, to_string(TaskState::kWaiting));
    for (std::size_t i = 0; i < workflow.tasks.size(); ++i) {
      const TaskSpec& t = workflow.tasks[i];
      q.bind(2, static_cast<std::int64_t>(i)).bind(3, t.name).bind(4, t.group);
      if (q.step() != SQLITE_DONE) {
        return tl::unexpected(impl.error("creating task " + t.name + " of run " + run_id));
      }
      q.reset();  // keeps the bindings
    }
  }
  {
    auto s = impl.prepare(
        "INSERT INTO events (run, time_us, task, kind, detail) VALUES (?1, ?2, NULL, ?3, '')");
    if (!s) return tl::unexpected(s.error());
    Query q(*s);
    const std::string kind = run_event_kind(RunState::kSubmitted);
    q.bind(1, run_rowid).bind(2, now).bind(3, kind);
    if (q.step() != SQLITE_DONE) return tl::unexpected(impl.error("recording run event"));
  }
  if (auto r = txn.commit(); !r) return tl::unexpected(r.error());
  impl.run_rowids[run_id] = run_rowid;

  std::error_code ec;
  fs::create_directories(run_dir(run_id), ec);
  if (ec) {
    return make_error(ErrorCode::kIo,
                      "cannot create run directory " + run_dir(run_id) + ": " + ec.message());
  }
  return get_run(run_id);
}

Expected<void> RunStore::apply(const std::string& run_id, const RunUpdate& update) {
  Impl& impl = *impl_;
  if (auto r = impl.check_writable(); !r) return tl::unexpected(r.error());
  auto rowid = impl.run_rowid(run_id);
  if (!rowid) return tl::unexpected(rowid.error());
  const std::int64_t run = *rowid;
  const std::int64_t now = update.now_us != 0 ? update.now_us : now_us();

  auto task_stmt = impl.prepare(
      "UPDATE tasks SET state = ?3, attempts = max(attempts, ?4), exit_code = ?5, reason = ?6, "
      "started_us = CASE WHEN ?7 THEN ?9 ELSE started_us END, "
      "ended_us = CASE WHEN ?7 THEN 0 WHEN ?8 THEN ?9 ELSE ended_us END "
      "WHERE run = ?1 AND idx = ?2");
  if (!task_stmt) return tl::unexpected(task_stmt.error());
  auto event_stmt = impl.prepare(
      "INSERT INTO events (run, time_us, task, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5)");
  if (!event_stmt) return tl::unexpected(event_stmt.error());

  Transaction txn(impl.db.get());
  if (auto r = txn.begin(); !r) return tl::unexpected(r.error());

  auto set_run_state = [&](RunState state) -> Expected<void> {
    auto s = impl.prepare(
        "UPDATE runs SET state = ?2, "
        "started_us = CASE WHEN ?3 AND started_us = 0 THEN ?5 ELSE started_us END, "
        "ended_us = CASE WHEN ?4 THEN ?5 ELSE 0 END WHERE rowid = ?1");
    if (!s) return tl::unexpected(s.error());
    {
      Query q(*s);
      q.bind(1, run)
          .bind(2, to_string(state))
          .bind(3, std::int64_t{state == RunState::kRunning})
          .bind(4, std::int64_t{is_terminal(state)})
          .bind(5, now);
      if (q.step() != SQLITE_DONE) return tl::unexpected(impl.error("updating run " + run_id));
    }
    Query e(*event_stmt);
    const std::string kind = run_event_kind(state);
    e.bind(1, run).bind(2, now).bind_null(3).bind(4, kind).bind(5, std::string_view(""));
    if (e.step() != SQLITE_DONE) return tl::unexpected(impl.error("recording run event"));
    return {};
  };

  // A run that starts does so before its tasks move; one that ends, after.
  const bool run_state_first = update.run_state && !is_terminal(*update.run_state);
  if (run_state_first) {
    if (auto r = set_run_state(*update.run_state); !r) return r;
  }

  if (!update.attempt_starts.empty()) {
    auto s = impl.prepare(
        "INSERT OR REPLACE INTO attempts (run, task, attempt, state, exit_code, reason, "
        "started_us, ended_us, host, handle) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
    if (!s) return tl::unexpected(s.error());
    Query q(*s);
    q.bind(1, run);
    for (const AttemptRecord& a : update.attempt_starts) {
      q.bind(2, std::int64_t{a.task})
          .bind(3, std::int64_t{a.attempt})
          .bind(4, to_string(a.state))
          .bind(5, std::int64_t{a.exit_code})
          .bind(6, a.reason)
          .bind(7, a.started_us != 0 ? a.started_us : now)
          .bind(8, a.ended_us)
          .bind(9, a.host)
          .bind(10, a.handle);
      if (q.step() != SQLITE_DONE) return tl::unexpected(impl.error("recording attempt start"));
      q.reset();
    }
  }

  {
    Query tq(*task_stmt);
    Query eq(*event_stmt);
    tq.bind(1, run).bind(9, now);
    eq.bind(1, run).bind(2, now);
    for (const StateChange& c : update.changes) {
      tq.bind(2, std::int64_t{c.task})
          .bind(3, to_string(c.state))
          .bind(4, std::int64_t{c.attempt})
          .bind(5, std::int64_t{c.exit_code})
          .bind(6, c.reason)
          .bind(7, std::int64_t{c.state == TaskState::kRunning})
          .bind(8, std::int64_t{is_terminal(c.state)});
      if (tq.step() != SQLITE_DONE) return tl::unexpected(impl.error("updating task"));
      if (sqlite3_changes(impl.db.get()) != 1) {
        return make_error(ErrorCode::kNotFound,
                          "store: run " + run_id + " has no task " + std::to_string(c.task));
      }
      tq.reset();
      eq.bind(3, std::int64_t{c.task}).bind(4, task_event_kind(c.state)).bind(5, c.reason);
      if (eq.step() != SQLITE_DONE) return tl::unexpected(impl.error("recording task event"));
      eq.reset();
    }
  }

  if (!update.attempt_ends.empty()) {
    auto s = impl.prepare(
        "UPDATE attempts SET state = ?4, exit_code = ?5, reason = ?6, ended_us = ?7 "
        "WHERE run = ?1 AND task = ?2 AND attempt = ?3");
    if (!s) return tl::unexpected(s.error());
    Query q(*s);
    q.bind(1, run);
    for (const AttemptRecord& a : update.attempt_ends) {
      q.bind(2, std::int64_t{a.task})
          .bind(3, std::int64_t{a.attempt})
          .bind(4, to_string(a.state))
          .bind(5, std::int64_t{a.exit_code})
          .bind(6, a.reason)
          .bind(7, a.ended_us != 0 ? a.ended_us : now);
      if (q.step() != SQLITE_DONE) return tl::unexpected(impl.error("recording attempt end"));
      q.reset();
    }
  }

  if (update.run_state && !run_state_first) {
    if (auto r = set_run_state(*update.run_state); !r) return r;
  }
  return txn.commit();
}

Expected<void> RunStore::remove_run(const std::string& run_id) {
  Impl& impl = *impl_;
  if (auto r = impl.check_writable(); !r) return tl::unexpected(r.error());
  Transaction txn(impl.db.get());
  if (auto r = txn.begin(); !r) return tl::unexpected(r.error());
  auto rowid = impl.run_rowid(run_id);
  if (!rowid) return tl::unexpected(rowid.error());
  impl.run_rowids.erase(run_id);
  for (const char* sql :
       {"DELETE FROM events WHERE run = ?1", "DELETE FROM attempts WHERE run = ?1",
        "DELETE FROM tasks WHERE run = ?1", "DELETE FROM runs WHERE rowid = ?1"}) {
    auto s = impl.prepare(sql);
    if (!s) return tl::unexpected(s.error());
    Query q(*s);
    q.bind(1, *rowid);
    if (q.step() != SQLITE_DONE) return tl::unexpected(impl.error("removing run " + run_id));
  }
  if (auto r = txn.commit(); !r) return r;

  std::error_code ec;
  fs::remove_all(run_dir(run_id), ec);
  if (ec) {
    return make_error(ErrorCode::kIo,
                      "cannot remove run directory " + run_dir(run_id) + ": " + ec.message());
  }
  return {};
}

// ---- reads ----------------------------------------------------------------------------

Expected<std::string> RunStore::resolve_run_id(const std::string& id_or_prefix) {
  Impl& impl = *impl_;
  if (id_or_prefix.empty()) return make_error(ErrorCode::kInvalidInput, "empty run id");
  // Ids are lowercase; accept what a user copied in capitals.
  std::string prefix = id_or_prefix;
  for (char& c : prefix) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  // Every id character is below 0x7f, so [p, p + "\x7f") holds exactly the ids that
  // start with p, and the UNIQUE index on id answers it as a range scan.
  const std::string upper = prefix + "\x7f";
  auto s = impl.prepare("SELECT id FROM runs WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT 2");
  if (!s) return tl::unexpected(s.error());
  std::string found;
  {
    Query q(*s);
    q.bind(1, prefix).bind(2, upper);
    int rc = q.step();
    if (rc == SQLITE_DONE) {
      return make_error(ErrorCode::kNotFound, "no run matches '" + id_or_prefix + "'");
    }
    if (rc != SQLITE_ROW) return tl::unexpected(impl.error("resolving run id"));
    found = q.text(0);
    if (found == prefix) return found;  // an exact id
    rc = q.step();
    if (rc == SQLITE_DONE) return found;
    if (rc != SQLITE_ROW) return tl::unexpected(impl.error("resolving run id"));
  }
  auto c = impl.prepare("SELECT count(*) FROM runs WHERE id >= ?1 AND id < ?2");
  if (!c) return tl::unexpected(c.error());
  Query q(*c);
  q.bind(1, prefix).bind(2, upper);
  if (q.step() != SQLITE_ROW) return tl::unexpected(impl.error("resolving run id"));
  return make_error(ErrorCode::kInvalidInput, "run id prefix '" + id_or_prefix +
                                                  "' is ambiguous (matches " +
                                                  std::to_string(q.i64(0)) + " runs)");
}

Expected<RunRecord> RunStore::get_run(const std::string& run_id) {
  Impl& impl = *impl_;
  auto s = impl.prepare(std::string(kRunColumns) + "WHERE r.id = ?1");
  if (!s) return tl::unexpected(s.error());
  Query q(*s);
  q.bind(1, run_id);
  int rc = q.step();
  if (rc == SQLITE_DONE) return make_error(ErrorCode::kNotFound, "no run '" + run_id + "'");
  if (rc != SQLITE_ROW) return tl::unexpected(impl.error("reading run " + run_id));
  return read_run(q);
}

Expected<std::vector<RunRecord>> RunStore::list_runs(std::span<const RunState> states) {
  Impl& impl = *impl_;
  std::string sql = kRunColumns;
  std::vector<std::string_view> names;
  if (!states.empty()) {
    sql += "WHERE r.state IN (";
    for (std::size_t i = 0; i < states.size(); ++i) {
      sql += (i ? ", ?" : "?") + std::to_string(i + 1);
      names.push_back(to_string(states[i]));
    }
    sql += ") ";
  }
  sql += "ORDER BY r.id DESC";
  auto s = impl.prepare(sql);  // at most a few distinct filters: cached like the rest
  if (!s) return tl::unexpected(s.error());
  Query q(*s);
  for (std::size_t i = 0; i < names.size(); ++i) q.bind(static_cast<int>(i + 1), names[i]);
  std::vector<RunRecord> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    auto r = read_run(q);
    if (!r) return tl::unexpected(r.error());
    out.push_back(std::move(*r));
  }
  if (rc != SQLITE_DONE) return tl::unexpected(impl.error("listing runs"));
  return out;
}

Expected<std::vector<TaskRecord>> RunStore::list_tasks(const std::string& run_id) {
  Impl& impl = *impl_;
  auto rowid = impl.run_rowid(run_id);
  if (!rowid) return tl::unexpected(rowid.error());
  auto s = impl.prepare(
      "SELECT idx, name, grp, state, attempts, exit_code, reason, started_us, ended_us "
      "FROM tasks WHERE run = ?1 ORDER BY idx");
  if (!s) return tl::unexpected(s.error());
  Query q(*s);
  q.bind(1, *rowid);
  std::vector<TaskRecord> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    TaskRecord t;
    t.index = static_cast<TaskId>(q.i64(0));
    t.name = q.text(1);
    t.group = q.text(2);
    auto state = parse_task_state(q.text(3), "task " + t.name);
    if (!state) return tl::unexpected(state.error());
    t.state = *state;
    t.attempts = static_cast<std::uint32_t>(q.i64(4));
    t.exit_code = q.i32(5);
    t.reason = q.text(6);
    t.started_us = q.i64(7);
    t.ended_us = q.i64(8);
    out.push_back(std::move(t));
  }
  if (rc != SQLITE_DONE) return tl::unexpected(impl.error("listing tasks of " + run_id));
  return out;
}

Expected<std::vector<AttemptRecord>> RunStore::list_attempts(const std::string& run_id,
                                                             std::optional<TaskId> task) {
  Impl& impl = *impl_;
  auto rowid = impl.run_rowid(run_id);
  if (!rowid) return tl::unexpected(rowid.error());
  auto s = impl.prepare(
      task ? "SELECT task, attempt, state, exit_code, reason, started_us, ended_us, host, handle "
             "FROM attempts WHERE run = ?1 AND task = ?2 ORDER BY task, attempt"
           : "SELECT task, attempt, state, exit_code, reason, started_us, ended_us, host, handle "
             "FROM attempts WHERE run = ?1 ORDER BY task, attempt");
  if (!s) return tl::unexpected(s.error());
  Query q(*s);
  q.bind(1, *rowid);
  if (task) q.bind(2, std::int64_t{*task});
  std::vector<AttemptRecord> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    AttemptRecord a;
    a.task = static_cast<TaskId>(q.i64(0));
    a.attempt = static_cast<std::uint32_t>(q.i64(1));
    auto state = parse_task_state(q.text(2), "an attempt");
    if (!state) return tl::unexpected(state.error());
    a.state = *state;
    a.exit_code = q.i32(3);
    a.reason = q.text(4);
    a.started_us = q.i64(5);
    a.ended_us = q.i64(6);
    a.host = q.text(7);
    a.handle = q.text(8);
    out.push_back(std::move(a));
  }
  if (rc != SQLITE_DONE) return tl::unexpected(impl.error("listing attempts of " + run_id));
  return out;
}

Expected<std::vector<EventRecord>> RunStore::list_events(const std::string& run_id) {
  Impl& impl = *impl_;
  auto rowid = impl.run_rowid(run_id);
  if (!rowid) return tl::unexpected(rowid.error());
  auto s = impl.prepare(
      "SELECT seq, time_us, task, kind, detail FROM events WHERE run = ?1 ORDER BY seq");
  if (!s) return tl::unexpected(s.error());
  Query q(*s);
  q.bind(1, *rowid);
  std::vector<EventRecord> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    EventRecord e;
    e.seq = q.i64(0);
    e.time_us = q.i64(1);
    if (!q.is_null(2)) e.task = static_cast<TaskId>(q.i64(2));
    e.kind = q.text(3);
    e.detail = q.text(4);
    out.push_back(std::move(e));
  }
  if (rc != SQLITE_DONE) return tl::unexpected(impl.error("listing events of " + run_id));
  return out;
}

Expected<std::string> RunStore::run_definition(const std::string& run_id) {
  Impl& impl = *impl_;
  auto s = impl.prepare(
      "SELECT w.definition FROM runs r JOIN workflows w ON w.id = r.workflow_rowid "
      "WHERE r.id = ?1");
  if (!s) return tl::unexpected(s.error());
  Query q(*s);
  q.bind(1, run_id);
  int rc = q.step();
  if (rc == SQLITE_DONE) return make_error(ErrorCode::kNotFound, "no run '" + run_id + "'");
  if (rc != SQLITE_ROW) return tl::unexpected(impl.error("reading definition of " + run_id));
  return q.text(0);
}

Expected<std::vector<int>> RunStore::revisions(const std::string& project,
                                               const std::string& name) {
  Impl& impl = *impl_;
  auto s = impl.prepare(
      "SELECT revision FROM workflows WHERE project = ?1 AND name = ?2 ORDER BY revision");
  if (!s) return tl::unexpected(s.error());
  Query q(*s);
  q.bind(1, project).bind(2, name);
  std::vector<int> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) out.push_back(q.i32(0));
  if (rc != SQLITE_DONE) return tl::unexpected(impl.error("listing revisions"));
  return out;
}

}  // namespace sluice
