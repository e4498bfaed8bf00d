#include "sluice/engine/attempt_logs.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

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

}  // namespace

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
  found |= append_file(file, out);
  return found;
}

}  // namespace sluice
