// Every attempt of a task as `sluice get RUN TASK`, `get --json` and the report show it:
// earlier attempts keep their reasons (timed out, exit codes, hosts, Slurm job ids).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sluice/records.hpp"

namespace sluice::cli {

// The Slurm job id in an attempt's launch handle ("slurm:JOB:DIR"), or "" for other
// backends and for a request still held back by the backend.
std::string slurm_job_of(const std::string& handle);

// {attempt, state, reason, exit_code (null until ended or when killed), host, slurm_job
// (null when none), started_us, ended_us, cached_from (null unless a cache hit)}.
nlohmann::json attempt_json(const AttemptRecord& a);

// The attempts of `task`, oldest first, as attempt_json() objects.
nlohmann::json attempts_json(const std::vector<AttemptRecord>& all, TaskId task);

}  // namespace sluice::cli
