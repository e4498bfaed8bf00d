#pragma once
// Telling one process from a later one with the same pid, and watching it end: a local
// attempt's handle is "PID:TICKS" where TICKS is boot_ticks_now() read just before the
// spawn, so that abandon() after a coordinator restart never kills a stranger that got
// the pid since.
#include <sys/types.h>

#include <cstdint>

namespace sluice::local {

// A pidfd for `pid` (O_CLOEXEC not needed: pidfd_open sets it), or -1 with errno
// (ENOSYS on kernels older than 5.3).
int open_pidfd(pid_t pid);

// Field 22 of /proc/PID/stat: the start time in clock ticks since boot; 0 if unknown.
std::uint64_t proc_start_time(pid_t pid);

// Now, in the unit of /proc/PID/stat's starttime (clock ticks since boot). Taken just
// before a spawn it is at most the child's starttime (a little less on a loaded
// machine), which identifies the process in a handle without reading /proc on the hot
// path: a pid reused by another process starts far later.
std::uint64_t boot_ticks_now();

// Whether the process `pid` is the one whose spawn began at `noted_ticks`
// (boot_ticks_now() just before it): it started within a few seconds after that.
bool started_near(pid_t pid, std::uint64_t noted_ticks);

}  // namespace sluice::local
