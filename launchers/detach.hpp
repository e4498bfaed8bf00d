// Detaching a coordinator from the terminal for `submit`: the caller checks its input and
// registers the run first (so errors and the run id reach the user synchronously), then
// detach() leaves a daemon behind that coordinates while the caller exits.
#pragma once

#include <string>

#include "sluice/error.hpp"

namespace sluice::cli {

enum class DetachedSide {
  kCaller,  // the original process: print the run id and exit
  kDaemon,  // the detached grandchild: coordinate, then exit
};

// Double fork with setsid(): the daemon has no controlling terminal, is not a child of
// the caller (no zombie, survives the caller's session ending), reads /dev/null and
// appends its stdout and stderr to `log_path` (created 0644). The caller returns only
// once the daemon exists. Returns kIo, in the caller, when the log cannot be opened or a
// fork fails; nothing was started then.
// REQUIRES: the caller holds no open run store and runs no threads (fork() copies only
// the calling thread, and SQLite connections must not cross a fork).
Expected<DetachedSide> detach(const std::string& log_path);

}  // namespace sluice::cli
