// RunStore writes: workflows, runs, state changes, removal. Each is one short
// BEGIN IMMEDIATE ... COMMIT transaction; statements are prepared once per connection
// and rows go in 64 to a statement. Opening and the schema: store_schema.cpp.
#include "sluice/engine/store.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <climits>
#include <filesystem>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>

#include "sluice/engine/host_info.hpp"
#include "sluice/function_args.hpp"
#include "store/store_internal.hpp"

namespace sluice {

using store_detail::MultiRowSql;
using store_detail::Query;
using store_detail::Transaction;

namespace {

namespace fs = std::filesystem;

// Plain inserts say OR FAIL: any error rolls the whole batch back anyway, and unlike the
// default (ABORT), FAIL needs no statement journal, a copy of every page a multi-row
// statement touches (events, the most numerous rows, need none for any other reason).
constexpr MultiRowSql kInsertTasks{"INSERT OR FAIL INTO tasks (run, idx, name, grp, state) VALUES ",
                                   "(?1, $, $, $, ?2)", 2, 3};
constexpr MultiRowSql kInsertDynamicTasks{
    "INSERT OR FAIL INTO dynamic_tasks (run, idx, parent, before_idx, spec) VALUES ",
    "(?1, $, $, $, $)", 1, 4};
constexpr MultiRowSql kInsertCache{
    "INSERT OR REPLACE INTO cache (project, key, workflow, task, run_id, attempt, attempt_dir, "
    "result_hash, parts, created_us) VALUES ",
    "($, $, $, $, $, $, $, $, $, ?1)", 1, 9};
constexpr MultiRowSql kInsertEvents{
    "INSERT OR FAIL INTO events (run, time_us, task, kind, detail) VALUES ", "(?1, ?2, $, $, $)", 2,
    3};
constexpr MultiRowSql kInsertAttempts{
    "INSERT OR REPLACE INTO attempts (run, task, attempt, state, exit_code, reason, started_us, "
    "ended_us, host, handle) VALUES ",
    "(?1, $, $, $, $, $, $, $, $, $)", 1, 9};

// Writes `items` with one multi-row statement per kMaxRows of them: `shared(q)` binds
// ?1..?spec.shared, `row(q, first, item)` binds the item's parameters from `first` on.
// The rest goes in power-of-two statements (32, 16, …, 1 rows): a batch of any size
// then uses at most 7 statements per table, prepared once, instead of one prepare per
// distinct remainder (under group commit nearly every batch has a new one).
template <class ImplT, class Item, class Shared, class Row>
Expected<void> insert_rows(ImplT& impl, const MultiRowSql& spec, std::span<const Item> items,
                           Shared shared, Row row, std::string_view what) {
  for (std::size_t begin = 0, n = 0; begin < items.size(); begin += n) {
    n = std::bit_floor(std::min<std::size_t>(MultiRowSql::kMaxRows, items.size() - begin));
    auto s = impl.multi(spec, static_cast<int>(n));
    if (!s) return tl::unexpected(s.error());
    Query q(*s);
    shared(q);
    for (std::size_t i = 0; i < n; ++i) {
      row(q, spec.shared + 1 + static_cast<int>(i) * spec.per_row, items[begin + i]);
    }
    if (q.step() != SQLITE_DONE) return tl::unexpected(impl.error(what));
  }
  return {};
}

// "task:<state>" / "run:<state>", built once (events bind them without copying).
const std::string& task_event_kind(TaskState s) {
  static const auto kinds = [] {
    std::array<std::string, kTaskStateCount> k;
    for (std::size_t i = 0; i < k.size(); ++i) {
      k[i] = "task:" + std::string(to_string(static_cast<TaskState>(i)));
    }
    return k;
  }();
  return kinds[static_cast<std::size_t>(s)];
}

const std::string& run_event_kind(RunState s) {
  static const auto kinds = [] {
    std::array<std::string, 5> k;
    for (std::size_t i = 0; i < k.size(); ++i) {
      k[i] = "run:" + std::string(to_string(static_cast<RunState>(i)));
    }
    return k;
  }();
  return kinds[static_cast<std::size_t>(s)];
}

const std::string kEmpty;

}  // namespace

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
    if (rc == SQLITE_ROW) return q.i32(0);  // known content: its revision (nothing written)
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
        .bind(7, store_detail::now_us());
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
  const std::int64_t now = store_detail::now_us();
  const std::string host = host_name();
  const std::string initiator = sluice::initiator();

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
        "created_us, task_count, initiator) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
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
        .bind(9, static_cast<std::int64_t>(workflow.tasks.size()))
        .bind(10, initiator);
    int rc = q.step();
    if (rc == SQLITE_CONSTRAINT_UNIQUE) {
      return make_error(ErrorCode::kConflict, "run " + run_id + " already exists");
    }
    if (rc != SQLITE_DONE) return tl::unexpected(impl.error("creating run " + run_id));
    run_rowid = sqlite3_last_insert_rowid(impl.db.get());
  }

  const auto& tasks = workflow.tasks;
  std::vector<TaskId> ids(tasks.size());
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<TaskId>(i);
  auto inserted = insert_rows(
      impl, kInsertTasks, std::span<const TaskId>(ids),
      [&](Query& q) { q.bind(1, run_rowid).bind(2, to_string(TaskState::kWaiting)); },
      [&](Query& q, int p, TaskId id) {
        q.bind(p, static_cast<std::int64_t>(id))
            .bind(p + 1, tasks[id].name)
            .bind(p + 2, tasks[id].group);
      },
      "creating the tasks of run " + run_id);
  if (!inserted) return tl::unexpected(inserted.error());

  const store_detail::PendingEvent submitted{-1, &run_event_kind(RunState::kSubmitted), &kEmpty};
  auto event = insert_rows(
      impl, kInsertEvents, std::span<const store_detail::PendingEvent>(&submitted, 1),
      [&](Query& q) { q.bind(1, run_rowid).bind(2, now); },
      [](Query& q, int p, const store_detail::PendingEvent& e) {
        q.bind_null(p).bind(p + 1, *e.kind).bind(p + 2, *e.detail);
      },
      "recording run event");
  if (!event) return tl::unexpected(event.error());

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

// One transaction. The tasks table gets one UPDATE per distinct task of the batch, with
// the changes of that task folded in order (all of them share `now`, so the result is
// the same as applying them one by one); the events table gets one row per change.
// An attempt that starts and ends in the same batch is inserted once, already ended.
Expected<void> RunStore::apply(const std::string& run_id, const RunUpdate& update) {
  using store_detail::PendingAttempt;
  using store_detail::PendingEvent;
  using store_detail::TaskRowUpdate;
  Impl& impl = *impl_;
  if (auto r = impl.check_writable(); !r) return tl::unexpected(r.error());
  auto rowid = impl.run_rowid(run_id);
  if (!rowid) return tl::unexpected(rowid.error());
  const std::int64_t run = *rowid;
  const std::int64_t now = update.now_us != 0 ? update.now_us : store_detail::now_us();

  // Fold the changes per task; queue the events in order. A run that starts does so
  // before its tasks move; one that ends, after.
  auto& rows = impl.task_rows;
  auto& slot = impl.task_slot;
  auto& events = impl.events;
  rows.clear();
  slot.clear();
  events.clear();
  const bool run_state_first = update.run_state && !is_terminal(*update.run_state);
  if (run_state_first) events.push_back({-1, &run_event_kind(*update.run_state), &kEmpty});
  for (const StateChange& c : update.changes) {
    auto [it, fresh] = slot.try_emplace(c.task, static_cast<std::uint32_t>(rows.size()));
    if (fresh) rows.push_back(TaskRowUpdate{c.task});
    TaskRowUpdate& row = rows[it->second];
    row.state = c.state;
    row.attempt = std::max(row.attempt, c.attempt);
    row.exit_code = c.exit_code;
    row.reason = &c.reason;
    if (c.state == TaskState::kRunning) {
      row.started = true;
      row.ended = 1;
    } else if (is_terminal(c.state)) {
      row.ended = 2;
    }
    events.push_back({std::int64_t{c.task}, &task_event_kind(c.state), &c.reason});
  }
  if (update.run_state && !run_state_first) {
    events.push_back({-1, &run_event_kind(*update.run_state), &kEmpty});
  }

  // Attempts: an end whose start is in this batch rides on the insert.
  auto& attempts = impl.attempts;
  auto& attempt_slot = impl.attempt_slot;
  auto& lone_ends = impl.lone_ends;
  attempts.clear();
  attempt_slot.clear();
  lone_ends.clear();
  auto& lone_end_time = impl.lone_end_time;
  lone_end_time.clear();
  auto attempt_key = [](const AttemptRecord& a) {
    return (std::uint64_t{a.task} << 32) | a.attempt;
  };
  for (const AttemptRecord& a : update.attempt_starts) {
    auto [it, fresh] =
        attempt_slot.try_emplace(attempt_key(a), static_cast<std::uint32_t>(attempts.size()));
    if (fresh) {
      attempts.push_back({&a, nullptr});
    } else {
      attempts[it->second] = {&a, nullptr};  // started twice: the later one wins
    }
  }
  for (const AttemptRecord& a : update.attempt_ends) {
    auto it = attempt_slot.find(attempt_key(a));
    if (it != attempt_slot.end()) {
      attempts[it->second].end = &a;
    } else {
      lone_ends.push_back(&a);
      if (a.ended_us != 0) lone_end_time[attempt_key(a)] = a.ended_us;
    }
  }
  // A task row's start and end times are its attempt's when the batch has them: under
  // group commit a batch spans several milliseconds, and `now` is only its commit time.
  auto attempt_times = [&](const store_detail::TaskRowUpdate& row, std::int64_t& started,
                           std::int64_t& ended) {
    started = ended = now;
    const std::uint64_t key = (std::uint64_t{row.task} << 32) | row.attempt;
    if (auto it = attempt_slot.find(key); it != attempt_slot.end()) {
      const PendingAttempt& pa = attempts[it->second];
      if (pa.start->started_us != 0) started = pa.start->started_us;
      if (pa.end && pa.end->ended_us != 0) ended = pa.end->ended_us;
      if (!pa.end && pa.start->ended_us != 0) ended = pa.start->ended_us;
      return;
    }
    if (auto it = lone_end_time.find(key); it != lone_end_time.end()) ended = it->second;
  };

  Transaction txn(impl.db.get());
  if (auto r = txn.begin(); !r) return tl::unexpected(r.error());

  if (!update.new_tasks.empty()) {
    const std::span<const DynamicTaskRecord> added(update.new_tasks);
    auto r = insert_rows(
        impl, kInsertTasks, added,
        [&](Query& q) { q.bind(1, run).bind(2, to_string(TaskState::kWaiting)); },
        [&](Query& q, int p, const DynamicTaskRecord& t) {
          q.bind(p, std::int64_t{t.index}).bind(p + 1, t.name).bind(p + 2, t.group);
        },
        "adding child tasks");
    if (!r) return r;
    r = insert_rows(
        impl, kInsertDynamicTasks, added, [&](Query& q) { q.bind(1, run); },
        [&](Query& q, int p, const DynamicTaskRecord& t) {
          q.bind(p, std::int64_t{t.index})
              .bind(p + 1, std::int64_t{t.parent})
              .bind(p + 2, t.before)
              .bind(p + 3, t.spec);
        },
        "recording child tasks");
    if (!r) return r;
    auto s = impl.prepare("UPDATE runs SET task_count = task_count + ?2 WHERE rowid = ?1");
    if (!s) return tl::unexpected(s.error());
    Query q(*s);
    q.bind(1, run).bind(2, static_cast<std::int64_t>(added.size()));
    if (q.step() != SQLITE_DONE) return tl::unexpected(impl.error("counting child tasks"));
  }

  if (!update.cache_entries.empty()) {
    // Entries with the same (project, key) replace one another: only the batch's last
    // one would remain, so only it is written. (A sweep of identical calls files one
    // key thousands of times per batch; each replace was a delete and an insert in
    // both of the table's B-trees.)
    auto& filed = impl.cache_rows;
    auto& seen = impl.cache_seen;
    filed.clear();
    seen.clear();
    const auto& entries = update.cache_entries;
    for (std::size_t i = entries.size(); i-- > 0;) {
      if (seen.emplace(entries[i].project, entries[i].key).second) filed.push_back(&entries[i]);
    }
    std::reverse(filed.begin(), filed.end());  // in the order filed
    auto r = insert_rows(
        impl, kInsertCache, std::span<const CacheEntry* const>(filed),
        [&](Query& q) { q.bind(1, now); },
        [&](Query& q, int p, const CacheEntry* e) {
          q.bind(p, e->project)
              .bind(p + 1, e->key)
              .bind(p + 2, e->workflow)
              .bind(p + 3, e->task)
              .bind(p + 4, e->run_id)
              .bind(p + 5, std::int64_t{e->attempt})
              .bind(p + 6, e->attempt_dir)
              .bind(p + 7, e->result_hash)
              .bind(p + 8, e->parts);
        },
        "filing cache entries");
    if (!r) return r;
  }

  if (!update.logs.empty()) {
    auto s = impl.prepare(
        "INSERT OR REPLACE INTO attempt_logs (run, task, attempt, spool, offset, length, "
        "out_bytes, err_bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    if (!s) return tl::unexpected(s.error());
    Query q(*s);
    q.bind(1, run);
    for (const AttemptLog& l : update.logs) {
      q.bind(2, std::int64_t{l.task})
          .bind(3, std::int64_t{l.attempt})
          .bind(4, l.span.spool)
          .bind(5, static_cast<std::int64_t>(l.span.offset))
          .bind(6, static_cast<std::int64_t>(l.span.length))
          .bind(7, static_cast<std::int64_t>(l.span.out_bytes))
          .bind(8, static_cast<std::int64_t>(l.span.err_bytes));
      if (q.step() != SQLITE_DONE) return tl::unexpected(impl.error("recording logs"));
      q.reset();
    }
  }

  if (!update.values.empty()) {
    // Encoded here, on the store's thread, not the coordinator's.
    auto s = impl.prepare(
        "INSERT OR REPLACE INTO task_values (run, task, attempt, key, encoding, bytes) "
        "VALUES (?1, ?2, ?3, ?4, 'value-bytes', ?5)");
    if (!s) return tl::unexpected(s.error());
    Query q(*s);
    q.bind(1, run);
    std::string bytes;
    for (const AttemptValues& v : update.values) {
      if (!v.values) continue;
      for (const auto& [key, value] : *v.values) {
        bytes.clear();
        append_value_bytes(value, bytes);
        q.bind(2, std::int64_t{v.task})
            .bind(3, std::int64_t{v.attempt})
            .bind(4, key)
            .bind_blob(5, bytes);
        if (q.step() != SQLITE_DONE) return tl::unexpected(impl.error("recording values"));
        q.reset();
      }
    }
  }

  if (!attempts.empty()) {
    auto r = insert_rows(
        impl, kInsertAttempts, std::span<const PendingAttempt>(attempts),
        [&](Query& q) { q.bind(1, run); },
        [&](Query& q, int p, const PendingAttempt& pa) {
          const AttemptRecord& s = *pa.start;
          const AttemptRecord& e = pa.end ? *pa.end : s;
          const std::int64_t ended = pa.end ? (e.ended_us != 0 ? e.ended_us : now) : s.ended_us;
          q.bind(p, std::int64_t{s.task})
              .bind(p + 1, std::int64_t{s.attempt})
              .bind(p + 2, to_string(e.state))
              .bind(p + 3, std::int64_t{e.exit_code})
              .bind(p + 4, e.reason)
              .bind(p + 5, s.started_us != 0 ? s.started_us : now)
              .bind(p + 6, ended)
              .bind(p + 7, s.host)
              .bind(p + 8, s.handle);
        },
        "recording attempt starts");
    if (!r) return r;
  }

  if (!rows.empty()) {
    auto s = impl.prepare(
        "UPDATE tasks SET state = ?3, attempts = max(attempts, ?4), exit_code = ?5, "
        "reason = ?6, started_us = CASE WHEN ?7 THEN ?9 ELSE started_us END, "
        "ended_us = CASE ?8 WHEN 1 THEN 0 WHEN 2 THEN ?10 ELSE ended_us END "
        "WHERE run = ?1 AND idx = ?2");
    if (!s) return tl::unexpected(s.error());
    Query q(*s);
    q.bind(1, run);
    for (const TaskRowUpdate& row : rows) {
      std::int64_t started = now, ended = now;
      attempt_times(row, started, ended);
      q.bind(2, std::int64_t{row.task})
          .bind(3, to_string(row.state))
          .bind(4, std::int64_t{row.attempt})
          .bind(5, std::int64_t{row.exit_code})
          .bind(6, *row.reason)
          .bind(7, std::int64_t{row.started})
          .bind(8, std::int64_t{row.ended})
          .bind(9, started)
          .bind(10, ended);
      if (q.step() != SQLITE_DONE) return tl::unexpected(impl.error("updating task"));
      if (sqlite3_changes(impl.db.get()) != 1) {
        return make_error(ErrorCode::kNotFound,
                          "store: run " + run_id + " has no task " + std::to_string(row.task));
      }
      q.reset();
    }
  }

  if (!lone_ends.empty()) {
    auto s = impl.prepare(
        "UPDATE attempts SET state = ?4, exit_code = ?5, reason = ?6, ended_us = ?7 "
        "WHERE run = ?1 AND task = ?2 AND attempt = ?3");
    if (!s) return tl::unexpected(s.error());
    std::vector<PendingAttempt> unknown;  // ended but never recorded as started: insert
    {
      Query q(*s);
      q.bind(1, run);
      for (const AttemptRecord* a : lone_ends) {
        q.bind(2, std::int64_t{a->task})
            .bind(3, std::int64_t{a->attempt})
            .bind(4, to_string(a->state))
            .bind(5, std::int64_t{a->exit_code})
            .bind(6, a->reason)
            .bind(7, a->ended_us != 0 ? a->ended_us : now);
        if (q.step() != SQLITE_DONE) return tl::unexpected(impl.error("recording attempt end"));
        if (sqlite3_changes(impl.db.get()) == 0) unknown.push_back({a, a});
        q.reset();
      }
    }
    if (!unknown.empty()) {
      auto r = insert_rows(
          impl, kInsertAttempts, std::span<const PendingAttempt>(unknown),
          [&](Query& q) { q.bind(1, run); },
          [&](Query& q, int p, const PendingAttempt& pa) {
            const AttemptRecord& a = *pa.end;
            q.bind(p, std::int64_t{a.task})
                .bind(p + 1, std::int64_t{a.attempt})
                .bind(p + 2, to_string(a.state))
                .bind(p + 3, std::int64_t{a.exit_code})
                .bind(p + 4, a.reason)
                .bind(p + 5, a.started_us)
                .bind(p + 6, a.ended_us != 0 ? a.ended_us : now)
                .bind(p + 7, a.host)
                .bind(p + 8, a.handle);
          },
          "recording attempt end");
      if (!r) return r;
    }
  }

  if (update.run_state) {
    const RunState state = *update.run_state;
    auto s = impl.prepare(
        "UPDATE runs SET state = ?2, "
        "started_us = CASE WHEN ?3 AND started_us = 0 THEN ?5 ELSE started_us END, "
        "ended_us = CASE WHEN ?4 THEN ?5 ELSE 0 END WHERE rowid = ?1");
    if (!s) return tl::unexpected(s.error());
    Query q(*s);
    q.bind(1, run)
        .bind(2, to_string(state))
        .bind(3, std::int64_t{state == RunState::kRunning})
        .bind(4, std::int64_t{is_terminal(state)})
        .bind(5, now);
    if (q.step() != SQLITE_DONE) return tl::unexpected(impl.error("updating run " + run_id));
  }

  auto logged = insert_rows(
      impl, kInsertEvents, std::span<const PendingEvent>(events),
      [&](Query& q) { q.bind(1, run).bind(2, now); },
      [](Query& q, int p, const PendingEvent& e) {
        if (e.task >= 0) {
          q.bind(p, e.task);
        } else {
          q.bind_null(p);
        }
        q.bind(p + 1, *e.kind).bind(p + 2, *e.detail);
      },
      "recording events");
  if (!logged) return logged;
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
        "DELETE FROM attempt_logs WHERE run = ?1", "DELETE FROM task_values WHERE run = ?1",
        "DELETE FROM dynamic_tasks WHERE run = ?1", "DELETE FROM tasks WHERE run = ?1",
        "DELETE FROM runs WHERE rowid = ?1"}) {
    auto s = impl.prepare(sql);
    if (!s) return tl::unexpected(s.error());
    Query q(*s);
    q.bind(1, *rowid);
    if (q.step() != SQLITE_DONE) return tl::unexpected(impl.error("removing run " + run_id));
  }
  // Its cache entries point into the directory deleted below: they go with it, or a
  // later run would find them and quietly rerun (no index on run_id: a scan of the
  // cache, ~10 ms per 100,000 entries, once per removed run).
  {
    auto s = impl.prepare("DELETE FROM cache WHERE run_id = ?1");
    if (!s) return tl::unexpected(s.error());
    Query q(*s);
    q.bind(1, run_id);
    if (q.step() != SQLITE_DONE)
      return tl::unexpected(impl.error("removing the cache entries of run " + run_id));
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

Expected<void> RunStore::set_run_backend(const std::string& run_id, const std::string& backend) {
  Impl& impl = *impl_;
  if (auto r = impl.check_writable(); !r) return tl::unexpected(r.error());
  auto s = impl.prepare("UPDATE runs SET backend = ?2 WHERE id = ?1");
  if (!s) return tl::unexpected(s.error());
  Query q(*s);
  q.bind(1, run_id).bind(2, backend);
  if (q.step() != SQLITE_DONE)
    return tl::unexpected(impl.error("recording run " + run_id + "'s backend"));
  if (sqlite3_changes(impl.db.get()) == 0)
    return make_error(ErrorCode::kNotFound, "no run " + run_id);
  return {};
}

}  // namespace sluice
