// Private to the run store (store.cpp, store_read.cpp): RAII over the SQLite C API,
// the cached-statement connection behind RunStore, and a few helpers.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "sluice/engine/store.hpp"

namespace sluice::store_detail {

struct DbClose {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbClose>;

struct StmtFinalize {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalize>;

// A borrowed prepared statement for one use: binds, steps, reads columns, and resets
// on destruction (which also ends the implicit read transaction of a SELECT, so a
// reader never pins the WAL). Text is bound SQLITE_STATIC: the bound strings must
// outlive the Query, which is why binding an rvalue std::string does not compile.
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
  Query& bind_blob(int i, std::string_view v) {
    sqlite3_bind_blob(s_, i, v.data() ? v.data() : "", static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  Query& bind_null(int i) {
    sqlite3_bind_null(s_, i);
    return *this;
  }

  int step() { return sqlite3_step(s_); }
  void reset() { sqlite3_reset(s_); }  // keeps the bindings

  std::int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  int i32(int c) const { return sqlite3_column_int(s_, c); }
  bool is_null(int c) const { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
  std::string_view view(int c) const {  // valid until the next step or reset
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, c));
    return p ? std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, c)))
             : std::string_view();
  }
  std::string text(int c) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, c));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, c)))
             : std::string();
  }

 private:
  sqlite3_stmt* s_;
};

// "store: <what>: <sqlite message>".
Error store_error(sqlite3* db, std::string_view what);
Expected<void> exec(sqlite3* db, const char* sql, std::string_view what);
std::int64_t now_us();

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

// A multi-row INSERT: `head` then up to kMaxRows copies of `row` joined by ", ". In
// `row`, ?1..?shared are bound once per statement and each '$' becomes the next
// per-row parameter. One statement per 64 rows instead of one per row: the per-statement
// cost of SQLite is as large as the per-row one.
struct MultiRowSql {
  const char* head;
  const char* row;
  int shared;
  int per_row;
  static constexpr int kMaxRows = 64;  // a power of two: see insert_rows()
};

// Scratch for RunStore::apply: one tasks-row update per distinct task of a batch.
struct TaskRowUpdate {
  TaskId task = 0;
  TaskState state = TaskState::kWaiting;
  std::uint32_t attempt = 0;
  int exit_code = 0;
  const std::string* reason = nullptr;
  bool started = false;  // some change made it running: started_us = now
  int ended = 0;         // 0: keep ended_us, 1: set to 0 (running again), 2: set to now
};

struct PendingEvent {
  std::int64_t task = -1;  // -1: a run event
  const std::string* kind = nullptr;
  const std::string* detail = nullptr;
};

struct PendingAttempt {
  const AttemptRecord* start = nullptr;
  const AttemptRecord* end = nullptr;  // ended in the same batch
};

}  // namespace sluice::store_detail

namespace sluice {

struct RunStore::Impl {
  store_detail::DbPtr db;
  bool read_only = false;
  int schema_version = 0;  // of the file: a reader may open an older one (store_schema.cpp)
  std::unordered_map<std::string, store_detail::StmtPtr> stmts;  // keyed by SQL text
  std::map<std::pair<const char*, int>, store_detail::StmtPtr> multi_stmts;
  std::unordered_map<std::string, std::int64_t> run_rowids;

  // apply() scratch, kept to reuse its memory.
  std::unordered_map<TaskId, std::uint32_t> task_slot;
  std::vector<store_detail::TaskRowUpdate> task_rows;
  std::vector<store_detail::PendingEvent> events;
  std::unordered_map<std::uint64_t, std::uint32_t> attempt_slot;
  std::vector<store_detail::PendingAttempt> attempts;
  std::vector<const AttemptRecord*> lone_ends;
  std::unordered_map<std::uint64_t, std::int64_t> lone_end_time;  // (task, attempt) -> ended_us
  struct CacheKeyHash {
    std::size_t operator()(const std::pair<std::string_view, std::string_view>& k) const {
      return std::hash<std::string_view>{}(k.second) * 31 + std::hash<std::string_view>{}(k.first);
    }
  };
  std::vector<const CacheEntry*> cache_rows;  // the batch's entries less those replaced in it
  std::unordered_set<std::pair<std::string_view, std::string_view>, CacheKeyHash>
      cache_seen;  // (project, key) of cache_rows

  ~Impl() {
    stmts.clear();  // finalize statements before the connection closes
    multi_stmts.clear();
  }

  Error error(std::string_view what) const { return store_detail::store_error(db.get(), what); }
  Expected<void> exec(const char* sql, std::string_view what) {
    return store_detail::exec(db.get(), sql, what);
  }
  Expected<void> check_writable() const;

  // A cached statement (persistent: it lives as long as the connection).
  Expected<sqlite3_stmt*> prepare(const std::string& sql);
  // The statement of `spec` for `rows` rows (1..kMaxRows), cached.
  Expected<sqlite3_stmt*> multi(const store_detail::MultiRowSql& spec, int rows);

  // The rowid of a run, by full id. kNotFound for an unknown id.
  Expected<std::int64_t> run_rowid(const std::string& run_id);
};

}  // namespace sluice
