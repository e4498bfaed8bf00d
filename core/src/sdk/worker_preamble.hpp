// A process launched as `APP __sluice_worker FUNCTION ARGS` runs one function task: until
// sluice::main hands it that function, the program's own main is still building its Flow
// (often thousands of calls), a graph the worker never uses. Calls made in that preamble
// are not recorded, so a worker's start does not grow with the size of the workflow.
#pragma once

namespace sluice {

// True while this process was launched as a function-task worker and has not yet begun
// the function (Linux: read once from /proc/self/cmdline; false where that is unreadable).
bool in_worker_preamble();

// Called by the worker before it runs the function: Flows made from then on (a function
// that builds and runs a workflow of its own) record their calls as usual.
void end_worker_preamble();

}  // namespace sluice
