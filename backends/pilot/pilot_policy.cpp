#include "pilot_policy.hpp"

namespace sluice::pilot {

bool should_allocate(const PolicyInput& in) {
  if (in.waiting == 0 || in.backing_off) return false;
  if (in.starting > 0) return false;
  return in.active < in.max_allocations;
}

bool fits_remaining(std::int64_t max_exec_ms, std::int64_t alloc_end_s, std::int64_t now_s) {
  if (alloc_end_s <= 0 || max_exec_ms <= 0) return true;
  return now_s + (max_exec_ms + 999) / 1000 + kEndMarginS <= alloc_end_s;
}

}  // namespace sluice::pilot
