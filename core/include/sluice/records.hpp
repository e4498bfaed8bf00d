// The records of the run store that a program reads back: workflows, runs, tasks and
// attempts, as RunStore (engine/store.hpp) and WorkflowRun (workflow_run.hpp) return them.
// Plain values; copying one reads nothing.
#pragma once

#include <cstdint>
#include <string>

#include "sluice/state.hpp"

namespace sluice {

struct RunRecord {
  std::string id;
  std::string project;
  std::string workflow;  // name
  int revision = 0;
  std::string content_hash;
  RunState state = RunState::kSubmitted;
  std::string backend;
  std::string source_path;
  std::string base_dir;
  std::string host;       // where the coordinator runs
  std::string initiator;  // "user@host" that made the run; "" in a home older than it
  std::int64_t created_us = 0;
  std::int64_t started_us = 0;
  std::int64_t ended_us = 0;  // 0 while not finished
  std::size_t task_count = 0;

  std::string workflow_id() const;  // "project:workflow:revision"
};

struct TaskRecord {
  TaskId index = 0;
  std::string name;
  std::string group;
  TaskState state = TaskState::kWaiting;
  std::uint32_t attempts = 0;
  int exit_code = 0;
  std::string reason;
  std::int64_t started_us = 0;  // first start of the latest attempt
  std::int64_t ended_us = 0;
  std::int64_t parent = -1;  // dynamic children: the task whose attempt added it
};

// One revision of a workflow definition.
struct WorkflowRecord {
  std::string project;
  std::string name;
  int revision = 0;
  std::string content_hash;
  std::string source_path;  // "" for workflows defined in C++
  std::int64_t created_us = 0;
  std::size_t runs = 0;  // runs made from this revision
  bool sdk = false;      // defined in C++ (sdk_definition.hpp) rather than TOML

  std::string id() const { return project + ":" + name + ":" + std::to_string(revision); }
};

struct AttemptRecord {
  TaskId task = 0;
  std::uint32_t attempt = 0;
  TaskState state = TaskState::kRunning;  // running, succeeded, failed or cancelled
  int exit_code = 0;
  std::string reason;
  std::int64_t started_us = 0;
  std::int64_t ended_us = 0;
  std::string host;
  std::string handle;  // Backend::launch() handle, for resume
};

}  // namespace sluice
