// The coordinator's side of a backend with remote workers (`mpi` ranks, `pilot`
// workers): the free cores and GPUs it counts per worker, and the rule that places an
// attempt: on the worker with the most free cores that can hold it now (the first such
// on ties), which spreads attempts over workers and keeps large holes for large tasks.
//
// Thread-safety: none (the engine calls a backend from one thread).
#pragma once

#include <cstdint>
#include <iterator>

#include "sluice/engine/backend.hpp"

namespace sluice::worker {

// One key per attempt, for the maps of placed attempts.
inline std::uint64_t attempt_key(TaskId task, std::uint32_t attempt) {
  return (static_cast<std::uint64_t>(task) << 32) | attempt;
}
inline TaskId task_of_key(std::uint64_t key) {
  return static_cast<TaskId>(key >> 32);
}
inline std::uint32_t attempt_of_key(std::uint64_t key) {
  return static_cast<std::uint32_t>(key & 0xffffffffu);
}

// What a worker has free. take() and give_back() move slots between it and an attempt.
struct FreeSlots {
  int cpus = 0;
  int gpus = 0;

  bool holds(int need_cpus, int need_gpus) const { return cpus >= need_cpus && gpus >= need_gpus; }
  void take(int need_cpus, int need_gpus) {
    cpus -= need_cpus;
    gpus -= need_gpus;
  }
  void give_back(int used_cpus, int used_gpus) {
    cpus += used_cpus;
    gpus += used_gpus;
  }
};

// The worker of [first, last) with the most free cores among those that hold
// `need_cpus`/`need_gpus` now, the first on ties; `last` when none does. `slots(w)`
// gives w's FreeSlots, or nullptr when w must not take this attempt (not ready, closing,
// another executor, ...).
template <class It, class SlotsOf>
It most_free_cores(It first, It last, int need_cpus, int need_gpus, SlotsOf slots) {
  It best = last;
  int best_cpus = 0;
  for (It it = first; it != last; ++it) {
    const FreeSlots* s = slots(*it);
    if (s == nullptr || !s->holds(need_cpus, need_gpus)) continue;
    if (best == last || s->cpus > best_cpus) {
      best = it;
      best_cpus = s->cpus;
    }
  }
  return best;
}

}  // namespace sluice::worker
