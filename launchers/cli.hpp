// Shared pieces of the `sluice` command line: where the home is, how errors become exit
// codes, and how tables and times are printed. Each command lives in its own cmd_*.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "sluice/engine/store.hpp"
#include "sluice/error.hpp"

namespace sluice::cli {

// Exit codes, the contract with scripts and sbatch wrappers.
constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;    // the workflow ran and failed (or was cancelled)
constexpr int kExitBadInput = 2;  // malformed workflow, unknown run, bad arguments
constexpr int kExitInternal = 3;  // the store or the operating system failed

// Thrown by commands; main() prints "sluice: message" and exits with `code`.
struct CliError : std::runtime_error {
  CliError(int c, const std::string& m) : std::runtime_error(m), code(c) {}
  int code;
};

// Maps an engine Error to the matching CliError.
[[noreturn]] void fail(const Error& e);

struct Globals {
  std::string home;  // sluice_home(--home): else $SLUICE_HOME, else ./.sluice, absolute
  bool json = false;
};

std::unique_ptr<RunStore> open_store(const Globals& g, RunStore::Mode mode);
// Resolves a run id, a unique prefix of one, or a workflow id (its latest run, named on
// stderr) to the run's record: see run_ref.hpp. CliError (exit 2) when nothing matches.
RunRecord find_run(RunStore& store, const std::string& ref);
// A run id or unique prefix only, for commands that delete (`sluice remove`): a guess at
// "the latest run" must not choose what is destroyed.
RunRecord find_run_by_id(RunStore& store, const std::string& id_or_prefix);

// The run's task named `name`, or CliError (exit 2) naming the run.
const TaskRecord& find_task(const std::vector<TaskRecord>& tasks, const RunRecord& run,
                            const std::string& name);

// Aligned plain-text table; columns sized to their widest cell.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : rows_{std::move(header)} {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print(std::FILE* out) const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

std::string format_time(std::int64_t epoch_us);  // "2026-11-26 11:42:03", "-" for 0
std::string format_span(std::int64_t from_us, std::int64_t to_us);  // duration, "-" if unknown
std::int64_t now_us();

}  // namespace sluice::cli
