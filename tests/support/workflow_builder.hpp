// Builds small Workflows by hand for unit tests, without the TOML loader.
#pragma once

#include <string>
#include <vector>

#include "sluice/workflow.hpp"

namespace sluice::testing {

// Tasks named t0, t1, … with the given parents; every task runs `true`.
inline Workflow make_workflow(const std::vector<std::vector<TaskId>>& parents) {
  Workflow wf;
  wf.name = "test";
  wf.project = "unit";
  wf.base_dir = "/tmp";
  for (std::size_t i = 0; i < parents.size(); ++i) {
    TaskSpec spec;
    spec.name = "t" + std::to_string(i);
    spec.group = spec.name;
    spec.version = "1";
    spec.command = {"true"};
    spec.after = parents[i];
    spec.workdir = "/tmp";
    wf.index[spec.name] = static_cast<TaskId>(i);
    wf.tasks.push_back(std::move(spec));
  }
  wf.content_hash = "0000000000000000";
  return wf;
}

}  // namespace sluice::testing
