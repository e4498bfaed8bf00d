// Text from tasks, files and other programs made safe for a terminal. A reason a task
// wrote, a path in a workflow, a name in a hostile file or the output of an sbatch that
// failed may hold control characters (ESC, BEL, ...) that a terminal would obey: retitle
// the window, hide what follows, rewrite the screen. Everything printed for people goes
// through printable(): the CLI's tables and errors, the loader's quoted names, the
// messages that quote a command's output. JSON output escapes them itself, and
// `sluice logs` passes the task's own bytes through untouched.
#pragma once

#include <string>
#include <string_view>

namespace sluice {

// `text` with every C0 control character, DEL and C1 control (U+0080..U+009F) written
// as \xHH or \uHHHH; a newline is kept when `keep_newlines`, escaped otherwise (a table
// cell stays on its line). Other bytes, valid UTF-8 or not, pass unchanged.
std::string printable(std::string_view text, bool keep_newlines = false);

}  // namespace sluice
