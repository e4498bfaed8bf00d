#include "sluice/engine/log_spool.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sluice/engine/file_modes.hpp"
#include "sluice/engine/host_info.hpp"

namespace sluice {
namespace {

struct FrameHeader {
  std::uint32_t task;
  std::uint32_t attempt;
  std::uint32_t length;
  std::uint32_t stream;
};
static_assert(sizeof(FrameHeader) == 16);

// A frame's payload is at most what one read of a pipe returns; a larger number marks a
// damaged spool, which readers stop at instead of skipping gigabytes.
constexpr std::uint32_t kMaxFrame = 1u << 24;

bool write_all(int fd, const iovec* iov, int count, std::size_t total) {
  iovec local[2];
  for (int i = 0; i < count; ++i) local[i] = iov[i];
  std::size_t done = 0;
  int first = 0;
  while (done < total) {
    const ssize_t n = ::writev(fd, local + first, count - first);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<std::size_t>(n);
    auto left = static_cast<std::size_t>(n);
    while (first < count && left >= local[first].iov_len) left -= local[first++].iov_len;
    if (first < count) {
      local[first].iov_base = static_cast<char*>(local[first].iov_base) + left;
      local[first].iov_len -= left;
    }
  }
  return true;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

bool read_exact(int fd, std::uint64_t offset, char* data, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, data + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

tl::unexpected<Error> spool_error(const std::string& path, const std::string& what) {
  return make_error(ErrorCode::kIo, "spool " + path + ": " + what);
}

}  // namespace

SpoolSet::~SpoolSet() {
  for (Lane& l : lanes_)
    if (l.fd >= 0) ::close(l.fd);
}

bool SpoolSet::open_lane(Lane& lane, std::size_t index) {
  static const std::string prefix = host_name() + "-" + std::to_string(::getpid()) + "-";
  ::mkdir(lane.dir.c_str(), file_modes().dir);
  for (int n = 0; n < 1000; ++n) {
    std::string leaf = prefix + std::to_string(index);
    if (n > 0) leaf += "." + std::to_string(n);
    const std::string path = lane.dir + "/" + leaf;
    lane.fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW,
                     file_modes().file);
    if (lane.fd >= 0) {
      lane.name = "spools/" + leaf;
      lane.size = 0;
      return true;
    }
    if (errno != EEXIST) return false;
  }
  return false;
}

void SpoolSet::begin(std::size_t lane, const std::string& dir, TaskId task, std::uint32_t attempt) {
  if (lane >= lanes_.size()) lanes_.resize(lane + 1);
  Lane& l = lanes_[lane];
  if (l.dir != dir && l.fd >= 0) {  // another run: its own spools
    ::close(l.fd);
    l.fd = -1;
  }
  l.dir = dir;
  l.task = task;
  l.attempt = attempt;
  l.span = LogSpan{};
}

bool SpoolSet::append(std::size_t lane, LogStream stream, const char* data, std::size_t size) {
  Lane& l = lanes_[lane];
  if (size == 0) return true;
  if (l.fd < 0 && !open_lane(l, lane)) return false;
  while (size > 0) {
    const auto chunk = static_cast<std::uint32_t>(std::min<std::size_t>(size, kMaxFrame));
    FrameHeader h{static_cast<std::uint32_t>(l.task), l.attempt, chunk,
                  static_cast<std::uint32_t>(stream)};
    iovec iov[2] = {{&h, sizeof h}, {const_cast<char*>(data), chunk}};
    if (!write_all(l.fd, iov, 2, sizeof h + chunk)) {
      // A partial frame would shift every later one: start a fresh spool.
      const int err = errno;
      ::close(l.fd);
      l.fd = -1;
      errno = err;
      return false;
    }
    if (l.span.spool.empty()) {
      l.span.spool = l.name;
      l.span.offset = l.size;
    }
    l.size += sizeof h + chunk;
    l.span.length = l.size - l.span.offset;
    (stream == LogStream::kStdout ? l.span.out_bytes : l.span.err_bytes) += chunk;
    data += chunk;
    size -= chunk;
  }
  return true;
}

LogSpan SpoolSet::end(std::size_t lane) {
  if (lane >= lanes_.size()) return {};
  LogSpan span = std::move(lanes_[lane].span);
  lanes_[lane].span = LogSpan{};
  return span;
}

Expected<void> read_spool(const std::string& path, std::uint64_t offset, std::uint64_t length,
                          TaskId task, std::uint32_t attempt, LogStream stream, std::string& out) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return (spool_error(path, std::strerror(errno)));
  const std::uint64_t end = offset + length;
  while (offset + sizeof(FrameHeader) <= end) {
    FrameHeader h;
    if (!read_exact(fd.get(), offset, reinterpret_cast<char*>(&h), sizeof h) ||
        h.length > kMaxFrame || offset + sizeof h + h.length > end)
      return (spool_error(path, "damaged at byte " + std::to_string(offset)));
    offset += sizeof h;
    if (h.task == task && h.attempt == attempt && h.stream == static_cast<std::uint32_t>(stream)) {
      const std::size_t at = out.size();
      out.resize(at + h.length);
      if (!read_exact(fd.get(), offset, out.data() + at, h.length))
        return (spool_error(path, "short read at byte " + std::to_string(offset)));
    }
    offset += h.length;
  }
  return {};
}

Expected<void> scan_spool(const std::string& path, std::uint64_t* offset, TaskId task,
                          std::uint32_t attempt, LogStream stream, std::string& out, bool* seen,
                          bool* other) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return (spool_error(path, std::strerror(errno)));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return (spool_error(path, std::strerror(errno)));
  const auto end = static_cast<std::uint64_t>(st.st_size);
  while (*offset + sizeof(FrameHeader) <= end) {
    FrameHeader h;
    if (!read_exact(fd.get(), *offset, reinterpret_cast<char*>(&h), sizeof h) ||
        h.length > kMaxFrame)
      return (spool_error(path, "damaged at byte " + std::to_string(*offset)));
    if (*offset + sizeof h + h.length > end) break;  // still being written
    const bool mine = h.task == task && h.attempt == attempt;
    if (mine) *seen = true;
    if (!mine && *seen) *other = true;
    if (mine && h.stream == static_cast<std::uint32_t>(stream)) {
      const std::size_t at = out.size();
      out.resize(at + h.length);
      if (!read_exact(fd.get(), *offset + sizeof h, out.data() + at, h.length))
        return (spool_error(path, "short read"));
    }
    *offset += sizeof h + h.length;
  }
  return {};
}

}  // namespace sluice
