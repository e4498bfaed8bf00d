// The checks that keep a Sluice home safe in a directory other users can reach (a shared
// project space, /tmp on a login node). Whoever can write a directory of the home can
// plant a symbolic link where Sluice is about to create store.db or runs/, and so make a
// run (perhaps root's) create files where they choose or put its run directories in
// theirs. So, as ssh refuses loose key files, a writer refuses a home that another user
// could change, with a message saying why and what to do.
#pragma once

#include <string>

#include "sluice/error.hpp"

namespace sluice::store_detail {

// Makes `home` (and its missing parents) and, when `make_runs`, HOME/runs unless they
// exist, after checking that nobody but this user (and root) can change them:
//   - HOME and HOME/runs are real directories (not links), owned by this user or root,
//     not writable by every user, nor by the group unless SLUICE_UMASK shares with it;
//   - no directory above HOME is writable by every user unless it is sticky (like /tmp);
//     their owners are trusted (a project space owned by its PI), as they can always
//     rename what lies below;
//   - store.db, its -wal and -shm files and HOME/configs, where they exist, are no links
//     and are owned by this user or root.
// Returns the home's canonical path (no symbolic link in it), for SQLite's
// SQLITE_OPEN_NOFOLLOW, which refuses a link anywhere in the path it opens.
// kIo with the reason otherwise; nothing is created in a home that is refused.
Expected<std::string> prepare_safe_home(const std::string& home, bool make_runs = true);

}  // namespace sluice::store_detail
