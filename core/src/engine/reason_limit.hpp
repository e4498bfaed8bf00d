// The bound on a reason the store keeps. Reasons come from tasks (`sluice fail`), from
// backends and from failed launches, which may quote a whole command: a 30 MiB `shell`
// string once made a 31 MB line in `sluice get` and a 126 MB store (the reason is kept in
// the task row, the attempt row and the event). A longer reason is cut, saying so, and
// its full text is appended to the attempt's stderr file when the attempt has one.
#pragma once

#include <cstddef>
#include <string>

namespace sluice {

inline constexpr std::size_t kMaxReasonBytes = 4096;

// Cuts `reason` to at most kMaxReasonBytes (at a UTF-8 character boundary), ending with
// a note of how much was cut and where the full text is. When `attempt_dir` is not empty
// and is a directory, the full reason is appended to ATTEMPT_DIR/stderr first (never
// through a symbolic link). A short reason is left as it is.
void bound_reason(std::string& reason, const std::string& attempt_dir);

}  // namespace sluice
