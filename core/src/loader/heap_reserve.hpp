// Growing the heap once, in huge pages, before building something large.
//
// A million-task workflow allocates ~1.5 GB in tens of millions of small blocks (the TOML
// tree, then the tasks, the graph, the scheduler). By default glibc grows the heap 128 KiB
// at a time, and the kernel backs it with 4 KiB pages, one page fault each: ~380,000
// faults, which on a paravirtualised VM (~9 us a fault) were a third of the load time.
// A HeapReservation grows the heap by the expected size in one step and asks for
// transparent huge pages there (madvise; a no-op where THP is "never"), so the same
// memory arrives in ~750 faults. glibc offers this only as a start-up tunable
// (glibc.malloc.hugetlb=1 with a large glibc.malloc.top_pad); this is the same, done at
// the one moment it pays, without re-executing the process.
#pragma once

#include <cstddef>

namespace sluice::detail {

class HeapReservation {
 public:
  // Reserves about `bytes` (nothing below a few MiB: small loads gain nothing).
  explicit HeapReservation(std::size_t bytes);
  // Lets large blocks be mmapped again. The trim threshold stays at the reserved size: the
  // graph and scheduler built after the load reuse those huge pages instead of fresh
  // small ones (a process that loaded a million tasks goes on to need the memory).
  ~HeapReservation();
  HeapReservation(const HeapReservation&) = delete;
  HeapReservation& operator=(const HeapReservation&) = delete;

  // Bytes the heap grew by (0 where it could not: another allocator, ASan, a small request).
  std::size_t grown() const { return grown_; }

 private:
  bool active_ = false;
  std::size_t grown_ = 0;
};

}  // namespace sluice::detail
