#pragma once
// The pipes a spooled attempt's stdout and stderr go through: the backend reads them into
// the slot's spool lane (log_spool.hpp says why pipes and not the spool file itself), and
// closes them when the attempt is over, so that a process that escaped its group writes
// into a closed pipe from then on, never into the next attempt's range.
#include <cstdint>
#include <vector>

#include "sluice/engine/log_spool.hpp"

namespace sluice::local {

// Two pipes (O_CLOEXEC): out[0]/err[0] to read, out[1]/err[1] for the child. 0, or the
// errno of pipe2 with every end left at -1.
int open_log_pipes(int out[2], int err[2]);

// Moves what `fd` holds into `lane` of `spools` as `stream`. Bounded per call while the
// attempt runs, so one chatty attempt cannot hold up the others' completions (its pipe
// stays readable and is read again on the next round); `to_end`: the attempt is over,
// read until the pipe is empty (bounded too: an escaped process that writes faster than
// this reads would otherwise keep it from ever being empty), then close it. `fd` becomes
// -1 once closed (end of file, or to_end).
void drain_pipe(int& fd, SpoolSet& spools, std::uint32_t lane, LogStream stream, bool to_end,
                std::vector<char>& buffer);

}  // namespace sluice::local
