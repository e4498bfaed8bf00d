#include "sluice/engine/attempt_logs.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace sluice {
namespace {

// Appends the file at `path`; false when it does not exist.
bool append_file(const std::string& path, std::string& out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return true;
}

// Where the last exit-status record of `text` starts (npos: none) and its status.
std::pair<std::size_t, int> last_trailer(std::string_view text) {
  std::size_t at = text.size();
  while (at > 0) {
    at = text.rfind(kExitTrailer, at - 1);
    if (at == std::string_view::npos) break;
    std::size_t i = at + kExitTrailer.size();
    int code = 0;
    const std::size_t digits = i;
    while (i < text.size() && i - digits < 4 && text[i] >= '0' && text[i] <= '9')
      code = code * 10 + (text[i++] - '0');
    if (i > digits && i < text.size() && text[i] == '\n') return {at, code};
    if (at == 0) break;
  }
  return {std::string_view::npos, -1};
}

}  // namespace

int find_exit_trailer(std::string_view text) {
  return last_trailer(text).second;
}

int strip_exit_trailer(std::string& text) {
  const auto [at, code] = last_trailer(text);
  if (at == std::string_view::npos) return -1;
  const std::size_t end = text.find('\n', at) + 1;
  text.erase(at, end - at);
  return code;
}

Expected<bool> read_attempt_log(RunStore& store, const std::string& run_id, TaskId task,
                                const std::string& task_name, std::uint32_t attempt,
                                LogStream stream, std::string& out) {
  bool found = false;
  auto span = store.attempt_log(run_id, task, attempt);
  if (!span) return tl::unexpected(span.error());
  if (*span) {
    const LogSpan& s = **span;
    if ((stream == LogStream::kStdout ? s.out_bytes : s.err_bytes) > 0) {
      auto r = read_spool(store.run_dir(run_id) + "/" + s.spool, s.offset, s.length, task, attempt,
                          stream, out);
      if (!r) return tl::unexpected(r.error());
      found = true;
    }
  }
  const std::string file = store.attempt_dir(run_id, task_name, attempt) +
                           (stream == LogStream::kStdout ? "/stdout" : "/stderr");
  if (stream == LogStream::kStdout) {
    found |= append_file(file, out);
    return found;
  }
  std::string text;
  if (append_file(file, text)) {
    strip_exit_trailer(text);
    out += text;
    found = true;
  }
  return found;
}

}  // namespace sluice
