// Private to the loader (loader.cpp, loader_validate.cpp): the workflow file as read,
// before defaults are merged and matrices expanded.
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "sluice/engine/loader.hpp"

namespace sluice::loader_detail {

using Params = std::vector<std::pair<std::string, std::string>>;

// One key as written. `present` with no `value` means it was written but was invalid
// (already reported): it must neither be used nor replaced by the default.
template <class T>
struct Field {
  bool present = false;
  std::optional<T> value;
  SourcePos key_pos;
  SourcePos value_pos;
};

struct MatrixAxis {
  std::string key;
  std::vector<std::string> values;  // as TOML prints them: 0.01, 2, true, text as-is
};

// The keys of a [tasks.NAME] (or [defaults]) table that most tasks leave unset.
struct OtherFields {
  Field<int> cpus, gpus, retries;
  Field<std::int64_t> memory;
  Field<std::string> executor, workdir, version;
  Field<Millis> max_exec_time, max_wait_time;
  Field<Params> env;
  Field<std::vector<MatrixAxis>> matrix;
  Field<bool> cache;
  Field<std::vector<std::string>> outputs;
  Field<std::string> before;  // child requests only: the task the child must finish before
  // A sub-workflow task: `workflow` (a TOML file) run as one task, by `backend` ("mpi":
  // one MPI job of `ranks` ranks over `nodes` nodes, one Slurm job under the slurm
  // backend; absent: local).
  Field<std::string> workflow, backend;
  Field<int> ranks, nodes;
  // [tasks.NAME.slurm]: placement keys, and `extra` sbatch options.
  Field<Params> slurm;
  std::vector<std::string> slurm_extra;
};

// The keys a [tasks.NAME] (or [defaults]) table may hold. The ones nearly every task
// sets are inline; the others (~900 bytes) are allocated only for a table that sets one:
// a million-task file then holds ~250 bytes per parsed task instead of ~1.2 KB, every
// byte of which was a fresh page to fault in.
struct Fields {
  Field<std::vector<std::string>> command;
  std::vector<SourcePos> command_elem_pos;
  Field<std::string> shell;
  Field<std::vector<std::string>> after;
  std::vector<SourcePos> after_elem_pos;

  const OtherFields& other() const {
    static const OtherFields kUnset;
    return other_ ? *other_ : kUnset;
  }
  OtherFields& other_mut() {
    if (!other_) other_ = std::make_unique<OtherFields>();
    return *other_;
  }

 private:
  std::unique_ptr<OtherFields> other_;
};

struct RawTask {
  std::string name;
  SourcePos pos;  // the [tasks.NAME] header
  Fields fields;
  std::vector<TaskId> ids;  // filled when expanded: one per matrix instance
};

struct Document {
  std::string name;
  std::string project;
  std::optional<std::uint32_t> max_children, max_child_depth;
  std::optional<std::uint64_t> max_tasks;  // [workflow] max_tasks
  Fields defaults;
  std::vector<RawTask> tasks;  // in the order they appear in the file
};

// Collects diagnostics; take() returns them sorted by position.
class Reporter {
 public:
  explicit Reporter(std::string file) : file_(std::move(file)) {}
  // The same message at the same spot (say, once per matrix instance) is kept once.
  void error(SourcePos pos, std::string message) {
    if (!seen_.emplace(pos.line, pos.column, message).second) return;
    diags_.push_back(Diagnostic{file_, pos, std::move(message)});
  }
  // A diagnostic about another file (a sub-workflow's).
  void add(Diagnostic d) { diags_.push_back(std::move(d)); }
  const Diagnostics& diagnostics() const { return diags_; }
  Diagnostics take();

 private:
  std::string file_;
  Diagnostics diags_;
  std::set<std::tuple<std::uint32_t, std::uint32_t, std::string>> seen_;
};

// " (did you mean 'x'?)" for the closest candidate within edit distance 2, else "".
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

// What a document is: a workflow file, or a child request (only [tasks.NAME] tables,
// which may say `before` and may not say `after`).
enum class DocumentKind { kWorkflow, kChildRequest };

// Pass 1 and 2: parses the TOML and reads every table into typed fields. Returns nullopt
// when the text is not TOML at all (the syntax error is reported).
std::optional<Document> read_document(std::string_view text, const std::string& display_name,
                                      Reporter& r, DocumentKind kind = DocumentKind::kWorkflow);

// Pass 3: one TaskSpec per (task, matrix instance), defaults applied, appended to wf.
void build_tasks(Document& doc, Workflow& wf, Reporter& r);

}  // namespace sluice::loader_detail
