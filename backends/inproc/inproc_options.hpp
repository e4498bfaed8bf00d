// The inproc backend's options, apart from the backend itself: the `sluice` command line
// checks and saves configurations for programs built with the SDK (`sluice config save
// fast --backend inproc queue_per_thread=64`, then `./app run --config fast`), but it
// runs workflow files, whose tasks are commands, so it does not run this backend.
#pragma once

#include "sluice/engine/backend_options.hpp"

namespace sluice {

// queue_per_thread (see inproc_backend.hpp).
const OptionTable& inproc_option_table();

// Registers "inproc" with its options table and a factory that refuses, saying where
// the backend runs: for a program that has no function tasks to run in-process.
void register_inproc_elsewhere();

}  // namespace sluice
