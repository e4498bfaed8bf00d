// RunStore reads: runs, tasks, attempts, events, definitions and revisions. Each call is
// one statement, so it sees one consistent snapshot while the coordinator writes.
#include <string>
#include <utility>
#include <vector>

#include "sluice/function_args.hpp"
#include "store/store_internal.hpp"

namespace sluice {

using store_detail::Query;

namespace {

// A home made before schema 4 has no initiator column: read as "" until a writer adds it.
std::string run_columns(int schema_version) {
  return std::string(
             "SELECT r.id, w.project, w.name, w.revision, w.content_hash, r.state, r.backend, "
             "r.source_path, r.base_dir, r.host, r.created_us, r.started_us, r.ended_us, "
             "r.task_count, ") +
         (schema_version >= 4 ? "r.initiator " : "'' ") +
         "FROM runs r JOIN workflows w ON w.id = r.workflow_rowid ";
}

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
  r.initiator = q.text(14);
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
  auto s = impl.prepare(run_columns(impl.schema_version) + "WHERE r.id = ?1");
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
  std::string sql = run_columns(impl.schema_version);
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
      "SELECT t.idx, t.name, t.grp, t.state, t.attempts, t.exit_code, t.reason, t.started_us, "
      "t.ended_us, coalesce(d.parent, -1) FROM tasks t LEFT JOIN dynamic_tasks d "
      "ON d.run = t.run AND d.idx = t.idx WHERE t.run = ?1 ORDER BY t.idx");
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
    t.parent = q.i64(9);
    out.push_back(std::move(t));
  }
  if (rc != SQLITE_DONE) return tl::unexpected(impl.error("listing tasks of " + run_id));
  return out;
}

Expected<std::vector<DynamicTaskRecord>> RunStore::list_dynamic_tasks(const std::string& run_id) {
  Impl& impl = *impl_;
  auto rowid = impl.run_rowid(run_id);
  if (!rowid) return tl::unexpected(rowid.error());
  auto s = impl.prepare(
      "SELECT d.idx, t.name, t.grp, d.parent, d.before_idx, d.spec FROM dynamic_tasks d "
      "JOIN tasks t ON t.run = d.run AND t.idx = d.idx WHERE d.run = ?1 ORDER BY d.idx");
  if (!s) return tl::unexpected(s.error());
  Query q(*s);
  q.bind(1, *rowid);
  std::vector<DynamicTaskRecord> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    DynamicTaskRecord d;
    d.index = static_cast<TaskId>(q.i64(0));
    d.name = q.text(1);
    d.group = q.text(2);
    d.parent = static_cast<TaskId>(q.i64(3));
    d.before = q.i64(4);
    d.spec = q.text(5);
    out.push_back(std::move(d));
  }
  if (rc != SQLITE_DONE) return tl::unexpected(impl.error("listing child tasks of " + run_id));
  return out;
}

Expected<std::optional<LogSpan>> RunStore::attempt_log(const std::string& run_id, TaskId task,
                                                       std::uint32_t attempt) {
  Impl& impl = *impl_;
  if (impl.schema_version < 5) return std::optional<LogSpan>();  // an older home: files only
  auto rowid = impl.run_rowid(run_id);
  if (!rowid) return tl::unexpected(rowid.error());
  auto s = impl.prepare(
      "SELECT spool, offset, length, out_bytes, err_bytes FROM attempt_logs "
      "WHERE run = ?1 AND task = ?2 AND attempt = ?3");
  if (!s) return tl::unexpected(s.error());
  Query q(*s);
  q.bind(1, *rowid).bind(2, std::int64_t{task}).bind(3, std::int64_t{attempt});
  const int rc = q.step();
  if (rc == SQLITE_DONE) return std::optional<LogSpan>();
  if (rc != SQLITE_ROW) return tl::unexpected(impl.error("reading an attempt's logs"));
  LogSpan span;
  span.spool = q.text(0);
  span.offset = static_cast<std::uint64_t>(q.i64(1));
  span.length = static_cast<std::uint64_t>(q.i64(2));
  span.out_bytes = static_cast<std::uint64_t>(q.i64(3));
  span.err_bytes = static_cast<std::uint64_t>(q.i64(4));
  return std::optional<LogSpan>(std::move(span));
}

namespace {

// Reads (task, attempt, key, bytes) rows in order into `out`, one entry per attempt.
template <class StoreImpl>  // RunStore::Impl, private: deduced, not named
Expected<void> read_value_rows(StoreImpl& impl, Query& q, std::vector<AttemptValues>& out) {
  Map* current = nullptr;
  for (int rc; (rc = q.step()) != SQLITE_DONE;) {
    if (rc != SQLITE_ROW) return tl::unexpected(impl.error("reading values"));
    const auto task = static_cast<TaskId>(q.i64(0));
    const auto attempt = static_cast<std::uint32_t>(q.i64(1));
    if (out.empty() || out.back().task != task || out.back().attempt != attempt) {
      auto fresh = std::make_shared<Map>();
      current = fresh.get();
      out.push_back({task, attempt, std::move(fresh)});
    }
    const std::string bytes = q.text(3);
    auto v = value_from_bytes(bytes);
    if (!v)
      return make_error(ErrorCode::kStore,
                        "store: a packed value of task " + std::to_string(task) + " is corrupt");
    current->insert_or_assign(q.text(2), std::move(*v));
  }
  return {};
}

}  // namespace

Expected<std::optional<Map>> RunStore::attempt_values(const std::string& run_id, TaskId task,
                                                      std::uint32_t attempt) {
  Impl& impl = *impl_;
  if (impl.schema_version < 6) return std::optional<Map>();  // an older home: files only
  auto rowid = impl.run_rowid(run_id);
  if (!rowid) return tl::unexpected(rowid.error());
  auto s = impl.prepare(
      "SELECT task, attempt, key, bytes FROM task_values WHERE run = ?1 AND task = ?2 AND "
      "attempt = ?3 ORDER BY key");
  if (!s) return tl::unexpected(s.error());
  Query q(*s);
  q.bind(1, *rowid).bind(2, std::int64_t{task}).bind(3, std::int64_t{attempt});
  std::vector<AttemptValues> rows;
  if (auto r = read_value_rows(impl, q, rows); !r) return tl::unexpected(r.error());
  if (rows.empty()) return std::optional<Map>();
  return std::optional<Map>(*rows.front().values);
}

Expected<std::optional<Map>> RunStore::attempt_values(const std::string& run_id,
                                                      const std::string& task,
                                                      std::uint32_t attempt) {
  Impl& impl = *impl_;
  if (impl.schema_version < 6) return std::optional<Map>();
  auto rowid = impl.run_rowid(run_id);
  if (!rowid) return tl::unexpected(rowid.error());
  auto s = impl.prepare(
      "SELECT v.task, v.attempt, v.key, v.bytes FROM tasks t JOIN task_values v ON v.run = t.run "
      "AND v.task = t.idx WHERE t.run = ?1 AND t.name = ?2 AND v.attempt = ?3 ORDER BY v.key");
  if (!s) return tl::unexpected(s.error());
  Query q(*s);
  q.bind(1, *rowid).bind(2, task).bind(3, std::int64_t{attempt});
  std::vector<AttemptValues> rows;
  if (auto r = read_value_rows(impl, q, rows); !r) return tl::unexpected(r.error());
  if (rows.empty()) return std::optional<Map>();
  return std::optional<Map>(*rows.front().values);
}

Expected<std::vector<AttemptValues>> RunStore::run_values(const std::string& run_id) {
  Impl& impl = *impl_;
  std::vector<AttemptValues> out;
  if (impl.schema_version < 6) return out;
  auto rowid = impl.run_rowid(run_id);
  if (!rowid) return tl::unexpected(rowid.error());
  auto s = impl.prepare(
      "SELECT task, attempt, key, bytes FROM task_values WHERE run = ?1 "
      "ORDER BY task, attempt, key");
  if (!s) return tl::unexpected(s.error());
  Query q(*s);
  q.bind(1, *rowid);
  if (auto r = read_value_rows(impl, q, out); !r) return tl::unexpected(r.error());
  return out;
}

Expected<std::pair<std::int64_t, std::int64_t>> RunStore::log_counts(const std::string& run_id) {
  Impl& impl = *impl_;
  if (impl.schema_version < 5) return std::pair<std::int64_t, std::int64_t>{0, 0};
  auto rowid = impl.run_rowid(run_id);
  if (!rowid) return tl::unexpected(rowid.error());
  auto s = impl.prepare("SELECT count(*), count(DISTINCT spool) FROM attempt_logs WHERE run = ?1");
  if (!s) return tl::unexpected(s.error());
  Query q(*s);
  q.bind(1, *rowid);
  if (q.step() != SQLITE_ROW) return tl::unexpected(impl.error("counting logs"));
  return std::pair<std::int64_t, std::int64_t>{q.i64(0), q.i64(1)};
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

Expected<std::vector<WorkflowRecord>> RunStore::list_workflows() {
  Impl& impl = *impl_;
  auto s = impl.prepare(
      "SELECT w.project, w.name, w.revision, w.content_hash, w.source_path, w.created_us, "
      "(SELECT COUNT(*) FROM runs r WHERE r.workflow_rowid = w.id), "
      "substr(w.definition, 1, 12) = '# sluice-sdk' "
      "FROM workflows w ORDER BY w.project, w.name, w.revision");
  if (!s) return tl::unexpected(s.error());
  Query q(*s);
  std::vector<WorkflowRecord> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    WorkflowRecord w;
    w.project = q.text(0);
    w.name = q.text(1);
    w.revision = q.i32(2);
    w.content_hash = q.text(3);
    w.source_path = q.text(4);
    w.created_us = q.i64(5);
    w.runs = static_cast<std::size_t>(q.i64(6));
    w.sdk = q.i64(7) != 0;
    out.push_back(std::move(w));
  }
  if (rc != SQLITE_DONE) return tl::unexpected(impl.error("listing workflows"));
  return out;
}

}  // namespace sluice

namespace sluice {
namespace {

constexpr const char* kCacheColumns =
    "SELECT project, key, workflow, task, run_id, attempt, attempt_dir, result_hash, parts, "
    "created_us FROM cache ";

CacheEntry cache_row(store_detail::Query& q) {
  CacheEntry e;
  e.project = q.text(0);
  e.key = q.text(1);
  e.workflow = q.text(2);
  e.task = q.text(3);
  e.run_id = q.text(4);
  e.attempt = static_cast<std::uint32_t>(q.i64(5));
  e.attempt_dir = q.text(6);
  e.result_hash = q.text(7);
  e.parts = q.text(8);
  e.created_us = q.i64(9);
  return e;
}

}  // namespace

Expected<std::optional<CacheEntry>> RunStore::find_cache(const std::string& project,
                                                         const std::string& key) {
  Impl& impl = *impl_;
  auto s = impl.prepare(std::string(kCacheColumns) + "WHERE project = ?1 AND key = ?2");
  if (!s) return tl::unexpected(s.error());
  store_detail::Query q(*s);
  q.bind(1, project).bind(2, key);
  const int rc = q.step();
  if (rc == SQLITE_DONE) return std::optional<CacheEntry>{};
  if (rc != SQLITE_ROW) return tl::unexpected(impl.error("looking up the cache"));
  return std::optional<CacheEntry>(cache_row(q));
}

Expected<bool> RunStore::visit_cache_keys(const std::string& project,
                                          const std::function<bool(std::string_view)>& visit) {
  Impl& impl = *impl_;
  auto s = impl.prepare("SELECT key FROM cache WHERE project = ?1");
  if (!s) return tl::unexpected(s.error());
  store_detail::Query q(*s);
  q.bind(1, project);
  int rc;
  while ((rc = q.step()) == SQLITE_ROW)
    if (!visit(q.view(0))) return false;
  if (rc != SQLITE_DONE) return tl::unexpected(impl.error("listing cache keys"));
  return true;
}

Expected<std::optional<CacheEntry>> RunStore::latest_cache(const std::string& project,
                                                           const std::string& workflow,
                                                           const std::string& task) {
  Impl& impl = *impl_;
  auto s = impl.prepare(std::string(kCacheColumns) +
                        "WHERE project = ?1 AND workflow = ?2 AND task = ?3 "
                        "ORDER BY created_us DESC LIMIT 1");
  if (!s) return tl::unexpected(s.error());
  store_detail::Query q(*s);
  q.bind(1, project).bind(2, workflow).bind(3, task);
  const int rc = q.step();
  if (rc == SQLITE_DONE) return std::optional<CacheEntry>{};
  if (rc != SQLITE_ROW) return tl::unexpected(impl.error("looking up the cache"));
  return std::optional<CacheEntry>(cache_row(q));
}

Expected<std::vector<CacheEntry>> RunStore::list_cache(const std::string& project) {
  Impl& impl = *impl_;
  auto s = impl.prepare(std::string(kCacheColumns) +
                        "WHERE ?1 = '' OR project = ?1 ORDER BY created_us DESC");
  if (!s) return tl::unexpected(s.error());
  store_detail::Query q(*s);
  q.bind(1, project);
  std::vector<CacheEntry> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) out.push_back(cache_row(q));
  if (rc != SQLITE_DONE) return tl::unexpected(impl.error("listing the cache"));
  return out;
}

Expected<std::size_t> RunStore::prune_cache(std::int64_t before_us, const std::string& project) {
  Impl& impl = *impl_;
  if (auto r = impl.check_writable(); !r) return tl::unexpected(r.error());
  auto s = impl.prepare(
      "DELETE FROM cache WHERE (?1 = 0 OR created_us < ?1) AND (?2 = '' OR project = ?2)");
  if (!s) return tl::unexpected(s.error());
  store_detail::Query q(*s);
  q.bind(1, before_us).bind(2, project);
  if (q.step() != SQLITE_DONE) return tl::unexpected(impl.error("pruning the cache"));
  return static_cast<std::size_t>(sqlite3_changes(impl.db.get()));
}

Expected<std::size_t> RunStore::forget_cache(const std::vector<CacheEntry>& entries) {
  Impl& impl = *impl_;
  if (auto r = impl.check_writable(); !r) return tl::unexpected(r.error());
  store_detail::Transaction txn(impl.db.get());
  if (auto r = txn.begin(); !r) return tl::unexpected(r.error());
  auto s = impl.prepare("DELETE FROM cache WHERE project = ?1 AND key = ?2");
  if (!s) return tl::unexpected(s.error());
  std::size_t n = 0;
  for (const CacheEntry& e : entries) {
    store_detail::Query q(*s);
    q.bind(1, e.project).bind(2, e.key);
    if (q.step() != SQLITE_DONE) return tl::unexpected(impl.error("pruning the cache"));
    n += static_cast<std::size_t>(sqlite3_changes(impl.db.get()));
  }
  if (auto r = txn.commit(); !r) return tl::unexpected(r.error());
  return n;
}

}  // namespace sluice
