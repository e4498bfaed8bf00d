// One task of a run, seen from outside it: `sluice get RUN TASK` lists every attempt on
// record, and `sluice logs` says truthfully why a task has no log of its own (skipped,
// not started, or reused from the cache).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "cli.hpp"

namespace sluice::cli {

// True inside a task's process (its SLUICE_TASK or SLUICE_OUTPUT is set): there `get X Y`
// is `get PARENT KEY`; outside it is `get RUN TASK`.
bool inside_task();

// `sluice get RUN TASK`: the task's record and every attempt (state, reason, exit code,
// host, Slurm job id, start, duration); with --json one object with an `attempt_list`.
int cmd_get_task(const Globals& g, const std::string& run_id, const std::string& task_name);

// The message for a task that has no attempt: "was skipped: REASON" on a skipped task,
// "has not started yet" on one still to run, "never ran (the run ended STATE)" otherwise.
std::string why_no_attempt(const RunRecord& run, const TaskRecord& task);

// Where a cache hit's output came from: parsed from its attempt's reason, which the
// coordinator writes as "cached from run RUN (TASK attempt N)".
struct CacheSource {
  std::string run, task;
  std::uint32_t attempt = 0;
};
std::optional<CacheSource> cache_source(const AttemptRecord& a);

// The directory holding the output of attempt `attempt` of `task` in `run_id`: its own,
// or for a cache hit the attempt it came from (followed through hits of hits, at most 16
// steps). `label` gets the first hit's reason ("cached from run …"), or stays empty.
std::string output_dir(RunStore& store, const std::string& run_id, const std::string& task,
                       std::uint32_t attempt, std::string& label);

// The attempt output_dir() names: its run, task and attempt number.
struct OutputRef {
  std::string run;
  std::string task;
  std::uint32_t attempt = 0;
};
OutputRef output_ref(RunStore& store, const std::string& run_id, const std::string& task,
                     std::uint32_t attempt, std::string& label);

}  // namespace sluice::cli
