#include "attempt_pipes.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace sluice::local {

int open_log_pipes(int out[2], int err[2]) {
  out[0] = out[1] = err[0] = err[1] = -1;
  if (::pipe2(out, O_CLOEXEC) == 0 && ::pipe2(err, O_CLOEXEC) == 0) return 0;
  const int e = errno;
  for (int* fd : {&out[0], &out[1], &err[0], &err[1]}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
  return e;
}

void drain_pipe(int& fd, SpoolSet& spools, std::uint32_t lane, LogStream stream, bool to_end,
                std::vector<char>& buffer) {
  for (int rounds = 0; fd >= 0 && rounds < (to_end ? 1024 : 16); ++rounds) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n > 0) {
      spools.append(lane, stream, buffer.data(), static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN && !to_end) return;
    ::close(fd);  // end of file (every writer is gone), or the attempt is over
    fd = -1;
    return;
  }
  if (to_end && fd >= 0) {
    ::close(fd);
    fd = -1;
  }
}

}  // namespace sluice::local
