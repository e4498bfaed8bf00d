// Loading workflow files. The loader reads TOML, applies [defaults], expands matrices,
// resolves dependencies and validates everything that can be checked before a run
// starts. It never touches the run store: a file that fails here changes nothing.
//
//   auto wf = sluice::load_workflow_file("examples/diamond.toml");
//   if (!wf) for (auto& d : wf.error()) std::cerr << d.format() << "\n";
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "sluice/workflow.hpp"

namespace sluice {

// One problem found in a workflow file, pointing at the offending spot.
struct Diagnostic {
  std::string file;
  SourcePos pos;
  std::string message;

  // "file:line:col: error: message"
  std::string format() const;
};

using Diagnostics = std::vector<Diagnostic>;

struct LoadOptions {
  // Check that each command's executable exists (on PATH, or relative to workdir).
  bool check_executables = true;
};

// How many tasks (matrix instances counted one by one) a workflow may expand to unless
// its [workflow] table raises it with `max_tasks`: a small file with a few big matrices
// must fail with a message, not exhaust the login node's memory (a loaded task costs
// about 1 KB, so the default is a few GB at most). A sub-workflow runs in its own
// coordinator: its tasks count towards its own file's limit, not its parent's.
inline constexpr std::uint64_t kDefaultMaxTasks = 2'000'000;
// The most `max_tasks` may say (task ids are 32-bit).
inline constexpr std::uint64_t kMaxTasksLimit = 1'000'000'000;

// The largest workflow file load_workflow_file() reads: a million declared tasks fit
// (a sweep of 1,000,000 is about 36 MB, layered with two parents each about 69 MB);
// bigger sweeps belong in `matrix`.
inline constexpr std::size_t kMaxWorkflowFileBytes = 128u * 1024 * 1024;

// Reads and validates a workflow file. On failure returns every problem found (at
// least one), each with file:line:col.
tl::expected<Workflow, Diagnostics> load_workflow_file(const std::string& path,
                                                       const LoadOptions& options = {});

// Same, for text already in memory. `display_name` is used in diagnostics; `base_dir`
// is where relative workdirs and executables are resolved.
tl::expected<Workflow, Diagnostics> load_workflow_text(std::string_view text,
                                                       const std::string& display_name,
                                                       const std::string& base_dir,
                                                       const LoadOptions& options = {});

// True for names usable as task names: [A-Za-z_][A-Za-z0-9_-]*, at most 64 characters.
bool is_safe_name(std::string_view name);

}  // namespace sluice

#include "sluice/engine/backend.hpp"

namespace sluice {

// Checks a loaded workflow against what a backend can ever offer: a task needing more
// cpus or gpus than the whole backend has, or an executor label no slot offers, could
// never start. Returns one Diagnostic per such task (empty when all fit).
Diagnostics check_against_capacity(const Workflow& workflow, const Capacity& capacity);

}  // namespace sluice
