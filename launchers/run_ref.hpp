// What a user may type where a command wants a run: a run id, a unique prefix of one, or
// a workflow id `project:workflow:revision`, meaning that workflow's latest run.
//
// A workflow id may be partial, completed from the default project:
//   name                 the latest revision of `name` in the default project
//   name:REV             revision REV (digits) of it
//   project:name         any revision of `name` in `project`
//   project:name:REV     exactly that revision
// The default project is $SLUICE_PROJECT when set, else the one project that has a
// workflow of that name (several: an error naming them). A project given that does not
// hold the workflow, or that is not $SLUICE_PROJECT when that is set, fails the
// identification (the seeds' rule): nothing is guessed past what was written.
//
// A word that could be both a run id (prefix) and a workflow name is a run id: run ids
// are looked up first, and a workflow id only when no run matches.
#pragma once

#include <string>
#include <vector>

#include "cli.hpp"

namespace sluice::cli {

struct WorkflowRef {
  std::string project;
  std::string name;
  int revision = 0;  // 0: any revision

  bool matches(const std::string& p, const std::string& n, int rev) const {
    return p == project && n == name && (revision == 0 || rev == revision);
  }
  std::string text() const;  // "project:name" or "project:name:rev"
};

// Completes `id` against the workflows `store` knows. CliError (exit 2) for a malformed
// id, an unknown project, name or revision, or an ambiguous name, listing what exists.
WorkflowRef resolve_workflow(RunStore& store, const std::string& id);

// As resolve_workflow() for a home with no store yet: every id names nothing, exit 2.
[[noreturn]] void no_workflows_here(const Globals& g, const std::string& id);

// The newest run of `ref`; CliError (exit 2) when it has none.
RunRecord latest_run(RunStore& store, const WorkflowRef& ref);

// A run id (or unique prefix) first, then a workflow id (its latest run, named in a note
// on stderr: "sluice: examples:diamond → its latest run 01m… (succeeded)"). CliError
// (exit 2) when neither matches, with both lookups' reasons.
RunRecord find_run_or_workflow(RunStore& store, const std::string& ref);

}  // namespace sluice::cli
