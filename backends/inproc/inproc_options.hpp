// The inproc backend's options, apart from the backend itself: the `sluice` command line
// checks and saves configurations for programs built with the SDK (`sluice config save
// fast --backend inproc queue_per_thread=64`, then `./app run --config fast`); it runs
// workflow files, whose tasks are commands, so it registers "inproc" as local processes
// under this table (launchers/inproc_commands.hpp).
#pragma once

#include "sluice/engine/backend_options.hpp"

namespace sluice {

// queue_per_thread (see inproc_backend.hpp).
const OptionTable& inproc_option_table();

}  // namespace sluice
