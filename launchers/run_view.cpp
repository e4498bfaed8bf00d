#include "run_view.hpp"

#include "sluice/engine/loader.hpp"

namespace sluice::cli {
namespace {

Error load_error(const Diagnostics& diags) {
  std::string msg;
  for (const auto& d : diags) msg += (msg.empty() ? "" : "\n") + d.format();
  return Error{ErrorCode::kInvalidInput, msg};
}

}  // namespace

Expected<RunView> load_run_view(RunStore& store, const std::string& run_id) {
  RunView v;
  auto run = store.get_run(run_id);
  if (!run) return tl::unexpected(run.error());
  v.run = *run;
  v.project = run->project;
  v.workflow = run->workflow;
  auto tasks = store.list_tasks(run_id);
  if (!tasks) return tl::unexpected(tasks.error());
  v.tasks = std::move(*tasks);
  auto attempts = store.list_attempts(run_id);
  if (!attempts) return tl::unexpected(attempts.error());
  v.attempts = std::move(*attempts);
  v.parents.resize(v.tasks.size());

  auto text = store.run_definition(run_id);
  if (!text) return tl::unexpected(text.error());
  LoadOptions opts;
  opts.check_executables = false;
  auto wf = load_workflow_text(*text, run->source_path, run->base_dir, opts);
  if (!wf) return tl::unexpected(load_error(wf.error()));
  for (std::size_t t = 0; t < wf->tasks.size() && t < v.parents.size(); ++t)
    v.parents[t] = wf->tasks[t].after;

  auto dynamic = store.list_dynamic_tasks(run_id);
  if (!dynamic) return tl::unexpected(dynamic.error());
  for (const auto& d : *dynamic) {
    if (d.index >= v.parents.size()) continue;
    v.parents[d.index].push_back(d.parent);
    if (d.before >= 0 && static_cast<std::size_t>(d.before) < v.parents.size())
      v.parents[static_cast<std::size_t>(d.before)].push_back(d.index);
  }
  return v;
}

Expected<RunView> load_file_view(const std::string& path) {
  LoadOptions opts;
  opts.check_executables = false;
  auto wf = load_workflow_file(path, opts);
  if (!wf) return tl::unexpected(load_error(wf.error()));
  RunView v;
  v.project = wf->project;
  v.workflow = wf->name;
  for (std::size_t t = 0; t < wf->tasks.size(); ++t) {
    TaskRecord r;
    r.index = static_cast<TaskId>(t);
    r.name = wf->tasks[t].name;
    r.group = wf->tasks[t].group;
    v.tasks.push_back(std::move(r));
    v.parents.push_back(wf->tasks[t].after);
  }
  return v;
}

}  // namespace sluice::cli
