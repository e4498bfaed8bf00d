// TaskSpec: one node of a loaded workflow, after defaults were applied and matrices
// expanded. It is plain data, owned by the Workflow that holds it; the scheduler and
// the backends refer to tasks by their index (TaskId) into Workflow::tasks.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sluice/duration.hpp"
#include "sluice/state.hpp"
#include "sluice/task_id_list.hpp"

namespace sluice {

// Where something was written in the workflow file (1-based; 0 = unknown).
struct SourcePos {
  std::uint32_t line = 0;
  std::uint32_t column = 0;
};

struct TaskSpec {
  std::string name;     // unique in the workflow; matrix instances are "train.0", "train.1", …
  std::string group;    // the [tasks.NAME] this came from ("train" for "train.3")
  std::string version;  // "name@version" identifies the task; default "1"

  // Exactly one of these is set: argv run without a shell, or a /bin/sh -c string.
  std::vector<std::string> command;
  std::string shell;

  // A function task (C++ SDK, sdk.hpp): the registered "name@version" it calls and its
  // bound arguments, encoded by encode_arguments() (function_args.hpp). Empty for command
  // tasks. A function task's `command` is the worker invocation that runs it in a
  // process; in-process backends call the function directly instead.
  std::string function;
  std::string arguments;

  // Resolved dependencies, in the order they were written; the instances of a matrix
  // share one list.
  TaskIdList after;
  int cpus = 1;
  int gpus = 0;
  std::int64_t memory_mib = 0;  // 0: not declared
  std::string executor;         // label such as "cpu" or "gpu"; empty: any slot
  int retries = 0;              // extra attempts after the first failure
  Millis max_exec_time{0};      // 0: unlimited
  Millis max_wait_time{0};      // 0: unlimited
  std::vector<std::pair<std::string, std::string>> env;
  std::string workdir;  // absolute; defaults to the workflow file's directory
  // [tasks.NAME.slurm]: placement for the Slurm backend (partition, account, qos,
  // constraint, reservation) and free-form sbatch options (`extra`); other backends
  // ignore them.
  std::vector<std::pair<std::string, std::string>> slurm;
  std::vector<std::string> slurm_extra;

  // Caching: false opts the task out (it always runs). `outputs` are files the task
  // writes besides its artifact (relative to workdir), restored on a cache hit.
  bool cache = true;
  std::vector<std::string> outputs;

  // For matrix instances: the parameter values of this instance, in key order.
  std::vector<std::pair<std::string, std::string>> params;

  SourcePos pos;       // the [tasks.NAME] header
  SourcePos cpus_pos;  // where cpus/gpus/executor were written (or inherited from)
  SourcePos gpus_pos;
  SourcePos executor_pos;
};

}  // namespace sluice
