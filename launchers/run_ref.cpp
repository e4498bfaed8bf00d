#include "run_ref.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>

namespace sluice::cli {
namespace {

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() < 10 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "a, b, c" — at most 10 items, then how many more: an error names what exists without
// printing a home's every workflow.
std::string listing(const std::vector<std::string>& items) {
  std::string out;
  for (std::size_t i = 0; i < items.size() && i < 10; ++i) out += (i ? ", " : "") + items[i];
  if (items.size() > 10) out += ", … (" + std::to_string(items.size() - 10) + " more)";
  return out.empty() ? "none" : out;
}

[[noreturn]] void bad(const std::string& message) {
  throw CliError(kExitBadInput, message);
}

std::string current_project() {
  const char* p = std::getenv("SLUICE_PROJECT");
  return p ? p : "";
}

}  // namespace

std::string WorkflowRef::text() const {
  return project + ":" + name + (revision ? ":" + std::to_string(revision) : "");
}

WorkflowRef resolve_workflow(RunStore& store, const std::string& id) {
  std::vector<std::string> parts;
  for (std::size_t from = 0;;) {
    const auto colon = id.find(':', from);
    parts.push_back(id.substr(from, colon == std::string::npos ? std::string::npos : colon - from));
    if (colon == std::string::npos) break;
    from = colon + 1;
  }
  const bool empty_part =
      std::any_of(parts.begin(), parts.end(), [](const std::string& p) { return p.empty(); });
  if (empty_part || parts.size() > 3 || (parts.size() == 3 && !all_digits(parts[2])))
    bad("'" + id +
        "' is not a workflow id (project:workflow:revision, workflow:revision or workflow)");
  WorkflowRef ref;
  std::string given_project;
  if (parts.size() == 1) {
    ref.name = parts[0];
  } else if (parts.size() == 2 && all_digits(parts[1])) {
    ref.name = parts[0];
    ref.revision = std::stoi(parts[1]);
  } else {
    given_project = parts[0];
    ref.name = parts[1];
    if (parts.size() == 3) ref.revision = std::stoi(parts[2]);
  }

  if (parts.size() > 1 && all_digits(parts.back()) && ref.revision == 0)
    bad("'" + id + "': revisions count from 1");
  auto all = store.list_workflows();
  if (!all) fail(all.error());
  const std::string current = current_project();
  if (!current.empty() && !given_project.empty() && given_project != current)
    bad("workflow id '" + id + "' names project '" + given_project +
        "', but the current project is '" + current + "' ($SLUICE_PROJECT)");
  ref.project = given_project.empty() ? current : given_project;

  std::set<std::string> projects, in_project, names;
  for (const auto& w : *all) {
    projects.insert(w.project);
    names.insert(w.project + ":" + w.name);
    if (w.project == ref.project) in_project.insert(w.name);
  }
  if (ref.project.empty()) {
    std::vector<std::string> holders;
    for (const auto& p : projects)
      if (names.count(p + ":" + ref.name)) holders.push_back(p + ":" + ref.name);
    if (holders.empty())
      bad("no workflow '" + ref.name + "' (workflows: " + listing({names.begin(), names.end()}) +
          ")");
    if (holders.size() > 1)
      bad("workflow '" + ref.name + "' is in several projects (" + listing(holders) +
          "): give the project, or set SLUICE_PROJECT");
    ref.project = holders[0].substr(0, holders[0].size() - ref.name.size() - 1);
  } else if (!projects.count(ref.project)) {
    bad("no project '" + ref.project +
        "' (projects: " + listing({projects.begin(), projects.end()}) + ")");
  } else if (!in_project.count(ref.name)) {
    bad("project '" + ref.project + "' has no workflow '" + ref.name +
        "' (its workflows: " + listing({in_project.begin(), in_project.end()}) + ")");
  }
  if (ref.revision) {
    std::vector<std::string> revisions;
    bool found = false;
    for (const auto& w : *all) {
      if (w.project != ref.project || w.name != ref.name) continue;
      revisions.push_back(std::to_string(w.revision));
      found |= w.revision == ref.revision;
    }
    if (!found)
      bad("workflow " + ref.project + ":" + ref.name + " has no revision " +
          std::to_string(ref.revision) + " (revisions: " + listing(revisions) + ")");
  }
  return ref;
}

void no_workflows_here(const Globals& g, const std::string& id) {
  bad("no workflow '" + id + "': nothing has run in " + g.home + " yet");
}

RunRecord latest_run(RunStore& store, const WorkflowRef& ref) {
  // Run ids sort by time and list_runs() is newest first: the first match is the latest.
  auto runs = store.list_runs({});
  if (!runs) fail(runs.error());
  for (auto& r : *runs)
    if (ref.matches(r.project, r.workflow, r.revision)) return std::move(r);
  bad("workflow " + ref.text() + " has no runs");
}

RunRecord find_run_or_workflow(RunStore& store, const std::string& ref) {
  auto id = store.resolve_run_id(ref);
  if (id) {
    auto run = store.get_run(*id);
    if (!run) fail(run.error());
    return std::move(*run);
  }
  if (id.error().code != ErrorCode::kNotFound && id.error().code != ErrorCode::kInvalidInput)
    fail(id.error());
  WorkflowRef wf;
  try {
    wf = resolve_workflow(store, ref);
  } catch (const CliError& e) {
    // "a:b" cannot be a run id: only the workflow lookup's reason matters. An ambiguous
    // run id prefix is what the user meant when it is not a workflow either.
    if (ref.find(':') != std::string::npos) throw;
    if (id.error().code == ErrorCode::kInvalidInput) fail(id.error());
    bad(id.error().message + ", and " + e.what());
  }
  RunRecord run = latest_run(store, wf);
  std::fflush(stdout);
  std::fprintf(stderr, "sluice: %s is workflow %s; using its latest run %s (%s)\n", ref.c_str(),
               run.workflow_id().c_str(), run.id.c_str(),
               std::string(to_string(run.state)).c_str());
  return run;
}

}  // namespace sluice::cli
