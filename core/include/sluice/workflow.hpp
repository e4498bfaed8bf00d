// Workflow: a loaded, validated definition; cheap to share by const reference between
// the graph, the scheduler and the store. Tasks are stored in definition order with
// matrix instances expanded, so TaskId is a stable index. Only the coordinator of a run
// changes it: dynamic children are appended (and the tasks they run before gain them
// in `after`) when the attempt that asked for them succeeds.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "sluice/task_spec.hpp"

namespace sluice {

struct Workflow {
  std::string name;
  std::string project;
  std::string source_path;  // the file it was read from ("" for text)
  std::string base_dir;     // directory relative paths are resolved against
  std::string text;         // the definition as written (stored with every revision)
  // Limits on dynamic children that protect the engine from a runaway task: how many
  // one attempt may add, and how deep children of children may nest.
  std::uint32_t max_children = 100'000;
  std::uint32_t max_child_depth = 100;
  // A deque: dynamic children are appended while a run goes on, and references to the
  // tasks already there (held by the scheduler and backends) must stay valid.
  std::deque<TaskSpec> tasks;

  // Content hash of the canonical definition (16 hex digits). Comments and key order
  // in the file do not change it; any change to a task does.
  std::string content_hash;

  // Finds a task by its full name. Returns nullptr when absent.
  const TaskSpec* find(const std::string& task_name) const;
  std::unordered_map<std::string, TaskId> index;  // name -> TaskId

  // "project:name" — the key revisions are counted under.
  std::string key() const { return project + ":" + name; }
};

}  // namespace sluice
