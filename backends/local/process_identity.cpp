#include "process_identity.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <string_view>

namespace sluice::local {

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

std::uint64_t proc_start_time(pid_t pid) {
  char path[40];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (n <= 0) return 0;
  std::string_view s(buf, static_cast<std::size_t>(n));
  // The command name (field 2) is in parentheses and may contain spaces or ')'.
  std::size_t pos = s.rfind(')');
  if (pos == std::string_view::npos || pos + 2 >= s.size()) return 0;
  pos += 2;  // start of field 3
  for (int field = 3; field < 22; ++field) {
    pos = s.find(' ', pos);
    if (pos == std::string_view::npos) return 0;
    ++pos;
  }
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(s.data() + pos, s.data() + s.size(), value);
  (void)end;
  return ec == std::errc() ? value : 0;
}

std::uint64_t boot_ticks_now() {
  static const long ticks_per_s = ::sysconf(_SC_CLK_TCK);
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * static_cast<std::uint64_t>(ticks_per_s) +
         static_cast<std::uint64_t>(ts.tv_nsec) * static_cast<std::uint64_t>(ticks_per_s) /
             1'000'000'000u;
}

bool started_near(pid_t pid, std::uint64_t noted_ticks) {
  // The noted time was read just before the spawn: the process started at most a few
  // seconds later (however loaded the machine); a reused pid started much later.
  constexpr std::uint64_t kSpawnWindowTicks = 500;
  const std::uint64_t actual = proc_start_time(pid);
  return actual != 0 && actual >= noted_ticks && actual <= noted_ticks + kSpawnWindowTicks;
}

}  // namespace sluice::local
