#include "detach.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace sluice::cli {

Expected<DetachedSide> detach(const std::string& log_path) {
  const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (log < 0)
    return make_error(ErrorCode::kIo, "cannot open " + log_path + ": " + std::strerror(errno));
  const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  std::fflush(nullptr);  // buffered output must not be written twice
  const pid_t child = ::fork();
  if (child < 0) {
    const int err = errno;
    ::close(log);
    if (null >= 0) ::close(null);
    return make_error(ErrorCode::kIo, std::string("fork: ") + std::strerror(err));
  }
  if (child > 0) {
    ::close(log);
    if (null >= 0) ::close(null);
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      return make_error(ErrorCode::kIo, "cannot start the detached coordinator (fork failed)");
    return DetachedSide::kCaller;
  }
  // The intermediate child: a new session without a terminal, then the daemon, which is
  // not a session leader and so can never acquire a controlling terminal again.
  ::setsid();
  const pid_t daemon = ::fork();
  if (daemon != 0) ::_exit(daemon < 0 ? 1 : 0);
  if (null >= 0) ::dup2(null, STDIN_FILENO);
  ::dup2(log, STDOUT_FILENO);
  ::dup2(log, STDERR_FILENO);
  ::close(log);
  if (null >= 0) ::close(null);
  return DetachedSide::kDaemon;
}

}  // namespace sluice::cli
