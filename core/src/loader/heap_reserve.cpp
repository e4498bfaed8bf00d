#include "loader/heap_reserve.hpp"

#include <malloc.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>

namespace sluice::detail {
namespace {

constexpr std::size_t kMinBytes = std::size_t{32} << 20;
constexpr std::size_t kMaxBytes = (std::size_t{2} << 30) - (std::size_t{64} << 20);
constexpr std::uintptr_t kHugePage = std::uintptr_t{2} << 20;
constexpr int kDefaultMmapMax = 65536;  // glibc's M_MMAP_MAX
// After the reservation: the mmap threshold glibc's own dynamic adjustment reaches once
// large blocks have been freed (32 MiB, its maximum), so that blocks up to that size (a
// scheduler's arrays for a million tasks) come from the heap; and a trim threshold that
// keeps the reserved range, whose huge pages the graph and the scheduler built next
// reuse. (Trimming it and growing again gave them small pages: ~11,000 faults at 1M.)
constexpr int kMmapThresholdAfter = 32 << 20;
constexpr int kTrimThresholdFallback = 64 << 20;

// Large blocks may be mmapped again; the heap's top is trimmed beyond `trim_threshold`.
[[maybe_unused]] void restore_mmaps(int trim_threshold) {
  mallopt(M_MMAP_MAX, kDefaultMmapMax);
  mallopt(M_MMAP_THRESHOLD, kMmapThresholdAfter);
  mallopt(M_TRIM_THRESHOLD, trim_threshold);
}

}  // namespace

HeapReservation::HeapReservation(std::size_t bytes) {
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  if (bytes < kMinBytes) return;
  // At most a quarter of the RAM, and of a data or address-space limit (`ulimit -d/-v`,
  // common on login nodes): reserved address space no later allocation can have.
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0)
    bytes = std::min(bytes, static_cast<std::size_t>(pages) * static_cast<std::size_t>(page) / 4);
  for (int resource : {RLIMIT_DATA, RLIMIT_AS}) {
    struct rlimit limit {};
    if (getrlimit(resource, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
      bytes = std::min(bytes, static_cast<std::size_t>(limit.rlim_cur / 4));
  }
  if (bytes < kMinBytes) return;
  // The trim threshold that keeps the range is an int: ~2 GiB at most (two million tasks).
  bytes = std::min(bytes, kMaxBytes);
  // Freed memory at the top stays in the heap while the reservation lives.
  if (mallopt(M_TRIM_THRESHOLD, INT_MAX) != 1) return;
  active_ = true;
  // Large blocks too (the file's text, vectors of a million tasks) come from the
  // reserved heap instead of mmaps of their own in small pages.
  mallopt(M_MMAP_MAX, 0);
  // One block of the whole size: the heap grows once and malloc writes only the block's
  // header and the new top's, at the two ends. (Blocks carved one after another would
  // each touch a page inside the range before the madvise, and a 2 MiB range whose page
  // table exists already is then filled in small pages.)
  auto* before = static_cast<char*>(sbrk(0));
  void* block = std::malloc(bytes);
  asm volatile("" : : "r"(block) : "memory");  // a malloc/free pair is otherwise elided
  auto* after = static_cast<char*>(sbrk(0));
  std::free(block);  // the top chunk again, kept: the trim threshold is out of reach
  if (!block) {      // no room to grow (a data limit): mmaps again, nothing kept
    restore_mmaps(kTrimThresholdFallback);
    active_ = false;
    return;
  }
  if (after <= before) return;  // not glibc's heap (ASan, another allocator)
  grown_ = static_cast<std::size_t>(after - before);
  auto start = (reinterpret_cast<std::uintptr_t>(before) + kHugePage - 1) & ~(kHugePage - 1);
  auto end = reinterpret_cast<std::uintptr_t>(after) & ~(kHugePage - 1);
  if (end > start) madvise(reinterpret_cast<void*>(start), end - start, MADV_HUGEPAGE);
#else
  (void)bytes;
#endif
}

HeapReservation::~HeapReservation() {
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  if (active_)
    restore_mmaps(static_cast<int>(std::max<std::size_t>(grown_, kTrimThresholdFallback)));
#endif
}

}  // namespace sluice::detail
