// The pilot backend's options (BackendOptions::extra, see pilot_backend.hpp for their
// meaning and defaults), parsed and checked once when the backend is made.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "sluice/duration.hpp"
#include "sluice/engine/backend_registry.hpp"
#include "slurm_driver.hpp"

namespace sluice::pilot {

struct Options {
  int max_allocations = 4;
  int nodes = 1;
  Millis time_limit{3'600'000};
  Millis idle_timeout{60'000};
  Millis poll_interval{2'000};
  Millis heartbeat_timeout{30'000};
  int cpus = 0;  // per node; 0: the whole node
  int gpus = 0;
  int gpus_per_worker = 0;  // 0: one worker per node, with all `gpus`
  std::int64_t memory_mib = 0;
  std::vector<std::string> executors;
  slurm::SubmitRequest placement;
  int window = 0;  // cores' worth of launches handed to the backend at once

  // Workers on each node of an allocation: one per GPU set of gpus_per_worker.
  int workers_per_node() const { return gpus_per_worker > 0 ? gpus / gpus_per_worker : 1; }
  // A worker's share of the node: cores (0: its share of the whole node) and GPUs.
  int worker_cpus() const { return cpus > 0 ? std::max(1, cpus / workers_per_node()) : 0; }
  int worker_gpus() const { return gpus_per_worker > 0 ? gpus_per_worker : gpus; }
};

// kInvalidInput for an unknown key or a bad value.
Expected<Options> parse_options(const BackendOptions& in);

// The keys of backend "pilot" besides cpus, gpus and executors, documented.
const OptionTable& option_table();

// The keys of backend "slurm" once pilot mode is linked in: mode and auto_threshold,
// the jobs mode's keys (slurm_option_table()) and option_table()'s.
const OptionTable& slurm_modes_option_table();

}  // namespace sluice::pilot
