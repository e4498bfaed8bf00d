// RunStore: opening the SQLite connection, the schema, and the statement cache. Every
// connection runs in WAL mode with busy_timeout, so a reader in another process waits
// for the coordinator's short write transactions instead of failing with "database is
// locked". Writes: store.cpp; reads: store_read.cpp.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

#include "sluice/engine/file_modes.hpp"
#include "store/home_check.hpp"
#include "store/store_internal.hpp"

namespace sluice {

namespace store_detail {

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

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace store_detail

using store_detail::MultiRowSql;
using store_detail::Query;
using store_detail::Transaction;

namespace {

namespace fs = std::filesystem;

// Two processes opening a new store at once (two `sluice run` in one directory) both read
// it, then both want the exclusive lock that the switch to WAL takes: SQLite answers one
// of them SQLITE_BUSY at once, without calling the busy handler (waiting could deadlock).
// Once the other has switched, the pragma succeeds: try again for as long as the busy
// timeout would have waited.
Expected<void> enable_wal(sqlite3* db) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (int wait_ms = 1;; wait_ms = std::min(2 * wait_ms, 50)) {
    const int rc = sqlite3_exec(db, "PRAGMA journal_mode = WAL", nullptr, nullptr, nullptr);
    if (rc == SQLITE_OK) return {};
    if ((rc & 0xff) != SQLITE_BUSY || std::chrono::steady_clock::now() >= until)
      return tl::unexpected(store_detail::store_error(db, "setting WAL mode"));
    std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
  }
}

constexpr int kSchemaVersion = 6;  // 2: dynamic_tasks, 3: cache, 4: runs.initiator, 5:
                                   // attempt_logs, 6: task_values

// Times are microseconds since the epoch (0: not yet). States are the names from
// state.hpp, so the file reads well in the sqlite3 shell. Events carry no foreign key:
// they are an append-only log written only with a run rowid just looked up, and the
// check would cost a lookup per event.
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
  rowid          INTEGER PRIMARY KEY AUTOINCREMENT,
  id             TEXT NOT NULL UNIQUE,
  workflow_rowid INTEGER NOT NULL REFERENCES workflows (id),
  state          TEXT NOT NULL,
  backend        TEXT NOT NULL DEFAULT '',
  source_path    TEXT NOT NULL DEFAULT '',
  base_dir       TEXT NOT NULL DEFAULT '',
  host           TEXT NOT NULL DEFAULT '',
  initiator      TEXT NOT NULL DEFAULT '',
  created_us     INTEGER NOT NULL,
  started_us     INTEGER NOT NULL DEFAULT 0,
  ended_us       INTEGER NOT NULL DEFAULT 0,
  task_count     INTEGER NOT NULL DEFAULT 0
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
  run     INTEGER NOT NULL,
  time_us INTEGER NOT NULL,
  task    INTEGER,
  kind    TEXT NOT NULL,
  detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS events_by_run ON events (run);
-- Tasks a running attempt added (dynamic children): who added them, the task they run
-- before (-1: none) and their definition as a child request (TOML), so that resume
-- rebuilds them without asking the parent again.
CREATE TABLE IF NOT EXISTS dynamic_tasks (
  run        INTEGER NOT NULL REFERENCES runs (rowid),
  idx        INTEGER NOT NULL,
  parent     INTEGER NOT NULL,
  before_idx INTEGER NOT NULL DEFAULT -1,
  spec       TEXT NOT NULL,
  PRIMARY KEY (run, idx)
) WITHOUT ROWID;
-- Successful attempts by cache key, per project: a later run whose task has the same
-- key reuses the attempt instead of running. `parts` (the key's parts) lets a dry run
-- say what changed; the latest entry per (project, workflow, task) is found by it.
CREATE TABLE IF NOT EXISTS cache (
  project     TEXT NOT NULL,
  key         TEXT NOT NULL,
  workflow    TEXT NOT NULL,
  task        TEXT NOT NULL,
  run_id      TEXT NOT NULL,
  attempt     INTEGER NOT NULL,
  attempt_dir TEXT NOT NULL,
  result_hash TEXT NOT NULL,
  parts       TEXT NOT NULL,
  created_us  INTEGER NOT NULL,
  PRIMARY KEY (project, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cache_by_task ON cache (project, workflow, task, created_us);
CREATE TABLE IF NOT EXISTS attempt_logs (
  run       INTEGER NOT NULL,
  task      INTEGER NOT NULL,
  attempt   INTEGER NOT NULL,
  spool     TEXT NOT NULL,
  offset    INTEGER NOT NULL,
  length    INTEGER NOT NULL,
  out_bytes INTEGER NOT NULL,
  err_bytes INTEGER NOT NULL,
  PRIMARY KEY (run, task, attempt)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS task_values (
  run      INTEGER NOT NULL,
  task     INTEGER NOT NULL,
  attempt  INTEGER NOT NULL,
  key      TEXT NOT NULL,
  encoding TEXT NOT NULL,
  bytes    BLOB NOT NULL,
  PRIMARY KEY (run, task, attempt, key)
) WITHOUT ROWID;
)sql";

}  // namespace

// ---- Impl -----------------------------------------------------------------------------

Expected<void> RunStore::Impl::check_writable() const {
  if (read_only) return make_error(ErrorCode::kStore, "store: opened read-only; cannot write");
  return {};
}

Expected<sqlite3_stmt*> RunStore::Impl::prepare(const std::string& sql) {
  auto it = stmts.find(sql);
  if (it != stmts.end()) return it->second.get();
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db.get(), sql.c_str(), static_cast<int>(sql.size()),
                         SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
    return tl::unexpected(error("prepare"));
  }
  stmts.emplace(sql, store_detail::StmtPtr(s));
  return s;
}

Expected<sqlite3_stmt*> RunStore::Impl::multi(const MultiRowSql& spec, int rows) {
  auto key = std::make_pair(spec.head, rows);
  auto it = multi_stmts.find(key);
  if (it != multi_stmts.end()) return it->second.get();
  std::string sql = spec.head;
  int param = spec.shared;
  for (int r = 0; r < rows; ++r) {
    if (r) sql += ", ";
    for (const char* p = spec.row; *p; ++p) {
      if (*p == '$') {
        sql += '?';
        sql += std::to_string(++param);
      } else {
        sql += *p;
      }
    }
  }
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db.get(), sql.c_str(), static_cast<int>(sql.size()),
                         SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
    return tl::unexpected(error("prepare"));
  }
  multi_stmts.emplace(key, store_detail::StmtPtr(s));
  return s;
}

// Cached only for a writer: a reader in another process must notice a run that was
// removed meanwhile (run rowids are AUTOINCREMENT, so never reused).
Expected<std::int64_t> RunStore::Impl::run_rowid(const std::string& run_id) {
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

// ---- open -----------------------------------------------------------------------------

namespace {

// Why a home whose runs/ holds run directories has no usable store.db (missing or
// empty, schema version 0), or "" when runs/ is empty: runs are created only in a store
// that has its schema, so such a store was lost (truncated, deleted, a full disk).
std::string lost_store(const std::string& home) {
  std::error_code ec;
  fs::directory_iterator it(fs::path(home) / "runs", ec);
  if (ec || it == fs::directory_iterator()) return {};
  return "the store " + (fs::path(home) / "store.db").string() + " is missing or empty, but " +
         (fs::path(home) / "runs").string() + " holds run directories (" +
         it->path().filename().string() +
         "...): the store was lost; Sluice will not start a new one over those runs (restore "
         "store.db, or move store.db and runs/ aside to start afresh)";
}

}  // namespace

int RunStore::schema_version() {
  return kSchemaVersion;
}

Expected<std::unique_ptr<RunStore>> RunStore::open(const std::string& home, Mode mode) {
  const bool read_only = mode == Mode::kReadOnly;
  const std::string nothing_here = "no Sluice store in " + home + " (nothing has run here yet)";
  std::error_code ec;
  // SQLite opens the canonical path with SQLITE_OPEN_NOFOLLOW, which refuses a link
  // anywhere in it: a store.db that is a link is refused, while a home reached through a
  // link of the user's own still opens.
  std::string real_home;
  if (read_only) {
    char buf[PATH_MAX];
    if (::realpath(home.c_str(), buf) == nullptr)
      return make_error(ErrorCode::kNotFound, nothing_here);
    real_home = buf;
    struct stat st;
    if (::lstat((fs::path(real_home) / "store.db").c_str(), &st) != 0) {
      if (auto lost = lost_store(home); !lost.empty()) return make_error(ErrorCode::kStore, lost);
      return make_error(ErrorCode::kNotFound, nothing_here);
    }
    if (S_ISLNK(st.st_mode))
      return make_error(ErrorCode::kIo, "the store " + home +
                                            "/store.db is a symbolic link; Sluice does not "
                                            "follow links in its home");
  } else {
    auto safe = store_detail::prepare_safe_home(home);
    if (!safe) return tl::unexpected(safe.error());
    real_home = std::move(*safe);
    // Checked before anything runs: SQLite would open a read-only store silently and
    // fail at the first write, and attempts could not create their directories.
    for (const fs::path& p : {fs::path(real_home), fs::path(real_home) / "runs"}) {
      if (::access(p.c_str(), W_OK) != 0) {
        return make_error(ErrorCode::kIo, "the Sluice home " + home + " is not writable (" +
                                              p.string() + ": " + std::strerror(errno) + ")");
      }
    }
    ::chmod((fs::path(real_home) / "runs").c_str(), file_modes().dir);
  }
  const fs::path db_path = fs::path(real_home) / "store.db";
  if (!read_only) {
    // A store lost beside the runs it recorded is never replaced by a new, empty one.
    if (!fs::exists(db_path, ec))
      if (auto lost = lost_store(home); !lost.empty()) return make_error(ErrorCode::kStore, lost);
    // The store is private (SQLite gives its -wal and -shm files the same mode). Only a
    // new file is created here: closing a descriptor of an existing store would drop
    // every POSIX lock this process holds on it, those of its other connections too (the
    // coordinator has two), and another process could then checkpoint and delete the WAL
    // under them.
    const int fd = ::open(db_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                          file_modes().file);
    if (fd >= 0) {
      ::close(fd);
    } else if (errno != EEXIST) {
      return make_error(ErrorCode::kIo,
                        "cannot open the store " + db_path.string() + ": " + std::strerror(errno));
    }
  }

  // Before SQLite touches it: a writer's first PRAGMA would give an empty file a header.
  if (struct stat st; ::stat(db_path.c_str(), &st) == 0 && st.st_size == 0)
    if (auto lost = lost_store(home); !lost.empty()) return make_error(ErrorCode::kStore, lost);

  std::unique_ptr<RunStore> store(new RunStore());
  store->home_ = home;
  store->impl_ = std::make_unique<Impl>();
  Impl& impl = *store->impl_;
  impl.read_only = read_only;

  // One RunStore per thread, so the connection needs no mutex of its own.
  int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW |
              (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(db_path.c_str(), &raw, flags, nullptr);
  impl.db.reset(raw);
  if (rc != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    return make_error(ErrorCode::kStore, "store: opening " + db_path.string() + ": " + msg);
  }
  sqlite3_extended_result_codes(raw, 1);
  if (!read_only && sqlite3_db_readonly(raw, "main") == 1)
    return make_error(ErrorCode::kIo, "the store " + db_path.string() + " is not writable");

  // busy_timeout first, so that the other PRAGMAs wait for a busy writer too.
  if (auto r = impl.exec("PRAGMA busy_timeout = 10000", "setting busy_timeout"); !r) {
    return tl::unexpected(r.error());
  }
  if (!read_only) {
    // Persistent in the file: readers inherit it.
    if (auto r = enable_wal(raw); !r) return tl::unexpected(r.error());
    // Checkpoint every 8,192 WAL pages (32 MiB) instead of SQLite's 1,000: under group
    // commit (a commit per 20 ms) the same pages (the tasks rows, the events' and
    // attempts' last pages, the cache's index) are written again by nearly every commit,
    // and a checkpoint copies each page once however often the WAL holds it.
    if (auto r = impl.exec("PRAGMA wal_autocheckpoint = 8192", "setting wal_autocheckpoint"); !r)
      return tl::unexpected(r.error());
  }
  // A 64 MiB page cache (allocated as used): a run of 100,000 tasks stays in memory.
  // Statement journals in memory: a multi-row INSERT OR REPLACE inside a transaction
  // otherwise creates and unlinks a file in /var/tmp (an inode each, ~7 per 100 tasks).
  if (auto r = impl.exec("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; "
                         "PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY",
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
  impl.schema_version = version;
  if (version < kSchemaVersion) {
    // An empty file beside recorded runs is a lost store, not a new one.
    if (version == 0)
      if (auto lost = lost_store(home); !lost.empty()) return make_error(ErrorCode::kStore, lost);
    // A reader finding an empty file: its first writer is still creating it. A reader of
    // an older home reads it as it is (store_read.cpp fills what it lacks); its next
    // writer upgrades it.
    if (read_only) {
      if (version == 0) return make_error(ErrorCode::kNotFound, nothing_here);
      return store;
    }
    Transaction txn(impl.db.get());
    if (auto r = txn.begin(); !r) return tl::unexpected(r.error());
    // The new tables come from kSchema (IF NOT EXISTS); new columns of old tables here.
    if (version > 0 && version < 4) {
      if (auto r = impl.exec("ALTER TABLE runs ADD COLUMN initiator TEXT NOT NULL DEFAULT ''",
                             "adding runs.initiator");
          !r)
        return tl::unexpected(r.error());
    }
    if (auto r = impl.exec(kSchema, "creating the schema"); !r) return tl::unexpected(r.error());
    impl.schema_version = kSchemaVersion;
    std::string set_version = "PRAGMA user_version = " + std::to_string(kSchemaVersion);
    if (auto r = impl.exec(set_version.c_str(), "setting the schema version"); !r) {
      return tl::unexpected(r.error());
    }
    if (auto r = txn.commit(); !r) return tl::unexpected(r.error());
  }
  return store;
}

RunStore::~RunStore() = default;

std::string RunStore::run_dir(const std::string& run_id) const {
  return (fs::path(home_) / "runs" / run_id).string();
}

std::string RunStore::attempt_dir(const std::string& run_id, const std::string& task,
                                  std::uint32_t attempt) const {
  // Plain concatenation: this runs once per attempt on the coordinator's hot path.
  return home_ + "/runs/" + run_id + "/tasks/" + task + "/" + std::to_string(attempt);
}

}  // namespace sluice
