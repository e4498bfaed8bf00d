// `inproc` in the `sluice` command line. The inproc backend runs the C++ function tasks of
// a program built with the SDK on threads of its coordinator; `sluice` runs workflow
// files, whose tasks are commands, which no thread can run. So that `sluice run FILE
// --config inproc` (a built-in configuration, listed by `config list`) does what it says
// instead of failing, `sluice` registers "inproc" as the local backend: commands run as
// processes on this machine, under the same cpus, gpus and executors, and a note on
// stderr says so. The run is recorded as backend local, the truth. inproc's own keys
// (queue_per_thread) are checked, then have nothing to set.
#pragma once

namespace sluice::cli {

void register_inproc_for_commands();

}  // namespace sluice::cli
