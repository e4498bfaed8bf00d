// Wall-clock time as the store records it: microseconds since the Unix epoch.
// System time, not steady time, because these values are shown to users and compared
// across processes and hosts (attempt start/end, worker deadlines). Durations inside
// one process use std::chrono::steady_clock instead.
#pragma once

#include <chrono>
#include <cstdint>

namespace sluice {

inline std::int64_t wall_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace sluice
