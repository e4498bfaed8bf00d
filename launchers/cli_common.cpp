#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>

#include "cli.hpp"
#include "run_ref.hpp"
#include "sluice/duration.hpp"
#include "sluice/engine/printable.hpp"

namespace sluice::cli {

void fail(const Error& e) {
  switch (e.code) {
    case ErrorCode::kInvalidInput:
    case ErrorCode::kNotFound:
    case ErrorCode::kConflict:
      throw CliError(kExitBadInput, e.message);
    default:
      throw CliError(kExitInternal, e.message);
  }
}

std::unique_ptr<RunStore> open_store(const Globals& g, RunStore::Mode mode) {
  auto store = RunStore::open(g.home, mode);
  if (!store) fail(store.error());
  return std::move(*store);
}

RunRecord find_run(RunStore& store, const std::string& ref) {
  return find_run_or_workflow(store, ref);
}

RunRecord find_run_by_id(RunStore& store, const std::string& id_or_prefix) {
  auto id = store.resolve_run_id(id_or_prefix);
  if (!id && id.error().code == ErrorCode::kNotFound) {
    std::string workflow;
    try {
      workflow = resolve_workflow(store, id_or_prefix).text();
    } catch (const CliError&) {
      fail(id.error());
    }
    throw CliError(kExitBadInput, "'" + id_or_prefix + "' is workflow " + workflow +
                                      ", not a run; this command takes a run id (sluice ps -a "
                                      "--workflow " +
                                      workflow + " lists its runs)");
  }
  if (!id) fail(id.error());
  auto run = store.get_run(*id);
  if (!run) fail(run.error());
  return *run;
}

const TaskRecord& find_task(const std::vector<TaskRecord>& tasks, const RunRecord& run,
                            const std::string& name) {
  for (const auto& t : tasks)
    if (t.name == name) return t;
  throw CliError(kExitBadInput, "run " + run.id + " has no task '" + name + "'");
}

void Table::print(std::FILE* out) const {
  // Cells hold what tasks and files wrote (reasons, names): made printable first.
  std::vector<std::vector<std::string>> rows;
  rows.reserve(rows_.size());
  for (const auto& row : rows_) {
    auto& r = rows.emplace_back();
    for (const auto& cell : row) r.push_back(printable(cell));
  }
  std::vector<std::size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(width[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::fprintf(out, "%s\n", line.c_str());
  }
}

std::string format_time(std::int64_t epoch_us) {
  if (epoch_us <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(epoch_us / 1000000);
  std::tm tm{};
  ::localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string format_span(std::int64_t from_us, std::int64_t to_us) {
  if (from_us <= 0) return "-";
  if (to_us <= 0) to_us = now_us();
  return format_duration(Millis((to_us - from_us) / 1000));
}

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace sluice::cli
