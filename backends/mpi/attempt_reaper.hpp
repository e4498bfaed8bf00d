// What outlives a worker rank that is killed outright. A rank's attempts run in process
// groups of their own (so a crashing task never takes the rank with it), which also
// means nothing stops them when the rank dies of SIGKILL: Open MPI's orted kills the
// ranks' sessions, MPICH's hydra_pmi_proxy kills only the ranks. So each worker rank
// starts a reaper: a small process in a session of its own that waits on a pipe whose
// only writer is the rank. When the rank exits, however it exits, the pipe reads EOF
// and the reaper kills the process group of every process whose environment carries
// the rank's mark (SLUICE_WORKER_MARK=…, set in every attempt's base environment), then
// exits. A task that escapes with setsid keeps the mark in its environment and is
// killed too; one that clears its environment is not found.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::mpi {

// The environment entry ("SLUICE_WORKER_MARK=host:pid") that marks this rank's attempts.
std::string worker_mark();

// Forks the reaper for `mark`. Best effort: when it cannot be started the worker still
// runs (its attempts then outlive a SIGKILL of the rank, as before). Call once, before
// any attempt starts.
void start_attempt_reaper(const std::string& mark);

// Kills the process group (and the process) of every other process on this host whose
// environment has an entry for which `matches` is true; returns how many it found.
// Never this process's own group.
int kill_processes_whose_environment(const std::function<bool(std::string_view)>& matches);

// Likewise for every process whose environment has each of the entries `all_of`
// ("NAME=value").
int kill_processes_whose_environment_has(const std::vector<std::string>& all_of);

}  // namespace sluice::mpi
