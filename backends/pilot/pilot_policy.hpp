// The pilot backend's decisions that need no sockets or cluster, kept apart so they are
// unit-tested as plain functions: when to ask Slurm for another allocation, and whether
// a task fits in what is left of a worker's allocation.
#pragma once

#include <cstdint>

namespace sluice::pilot {

struct PolicyInput {
  std::size_t waiting = 0;  // launches no connected worker can start now
  int starting = 0;         // allocations submitted whose worker has not connected yet
  int active = 0;           // allocations not ended (starting ones included)
  int max_allocations = 1;
  bool backing_off = false;  // a submission failed recently
};

// Whether to submit one more allocation now. One at a time: while an allocation is still
// starting (queued in Slurm or its worker not yet connected) no other is asked for, so a
// burst of ready tasks does not become max_allocations jobs before the first one could
// have shown how fast the queue drains.
bool should_allocate(const PolicyInput& in);

// Seconds kept free at the end of an allocation: a task must end this long before the
// allocation does (the worker still has to report it).
constexpr std::int64_t kEndMarginS = 10;

// Whether a task with `max_exec_ms` (0: undeclared) may start on a worker whose
// allocation ends at `alloc_end_s` (epoch seconds, 0: never) at time `now_s`. A task
// without a declared limit may start anywhere: if the allocation ends first it is lost
// and retried elsewhere without using a retry.
bool fits_remaining(std::int64_t max_exec_ms, std::int64_t alloc_end_s, std::int64_t now_s);

}  // namespace sluice::pilot
