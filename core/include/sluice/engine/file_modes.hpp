// The permissions of what Sluice creates in its home: run and attempt directories,
// captured logs, sealed artifacts and the store. Private to the user by default
// (directories 0700, files 0600); `SLUICE_UMASK` (octal, e.g. 027 to share with the
// group) loosens them. Read once per process; thread-safe after the first call.
#pragma once

#include <sys/types.h>

#include <string>

namespace sluice {

struct FileModes {
  mode_t dir = 0700;
  mode_t file = 0600;
};

// 0777 & ~mask for directories, 0666 & ~mask for files, mask = SLUICE_UMASK or 077.
// A malformed SLUICE_UMASK is ignored (the private default applies).
const FileModes& file_modes();

// Makes an attempt directory, ".../TASK/ATTEMPT", and its parent (the task's directory)
// with file_modes().dir, for backends whose workers make them (the coordinator makes the
// others itself). True when `dir` exists afterwards, made now or before; false with
// errno set otherwise.
bool make_attempt_dir(const std::string& dir);

}  // namespace sluice
