// The `inproc` backend: attempts of C++ function tasks (function.hpp) run on a pool of
// threads inside the coordinator's process — no process start, no attempt directory up
// front, results handed to dependent tasks in memory. The fastest way to run many small
// functions; a function that crashes takes the whole run down (use `local` for those).
//
// What is kept, as with every backend: every state change in the run store; the result
// of a function that returns one in ATTEMPT_DIR/output.h5 (sealed by the coordinator,
// readable by `sluice results` from any process); a failure's message in
// ATTEMPT_DIR/stderr. Not captured: what functions print (threads share stdout).
// Functions returning void write nothing.
//
// Slots: BackendOptions::cpus threads (default: the CPUs this process may use). The
// scheduler is offered threads x "queue_per_thread" (extra option, default 256) cpu
// slots, so that many small functions wait in the pool's queue and their completions
// reach the store in batches (one transaction per batch, not per task); set it to 1 for
// slots that match the threads exactly. `gpus` (default 0) and `executors` are handed
// out as given; the threads do not bind devices. kill() cancels an attempt that has not started; a
// running function cannot be interrupted and completes (a timed-out one is then recorded as timed
// out). Command tasks are refused at launch: run them with `local`.
#pragma once

#include <memory>

#include "sluice/engine/backend.hpp"
#include "sluice/engine/backend_registry.hpp"

namespace sluice {

std::unique_ptr<Backend> make_inproc_backend(const BackendOptions& options);

// Registers make_inproc_backend under the name "inproc", with inproc_option_table().
void register_inproc_backend();

}  // namespace sluice
