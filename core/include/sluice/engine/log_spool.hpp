// Log spools: where attempts' stdout and stderr go instead of two files per attempt.
//
// A spool is one append-only file that one lane (a local slot, a worker's slot, an MPI
// rank's slot) opens on its first byte and keeps: the attempts of that lane run one after
// another, so each attempt's bytes form one contiguous range of it, which the store
// records (LogSpan, table attempt_logs). An attempt that prints nothing costs no file,
// no byte and no row.
//
// The file is a sequence of frames, each a 16-byte header {task, attempt, length, stream}
// (native-endian u32s) followed by `length` bytes of that stream. Frames name their
// attempt, so a reader can follow an attempt that is still running (the store learns its
// range only when it ends) and never mistakes another attempt's bytes for its own.
//
// What writes a spool reads the attempt's stdout and stderr from pipes of its own: a
// process that outlives its attempt (one that escaped the process group with setsid)
// holds only the write end of a pipe that is closed when the attempt is reported, so it
// can never write into a later attempt's range (its writes fail with EPIPE).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/error.hpp"
#include "sluice/task_spec.hpp"

namespace sluice {

enum class LogStream : std::uint32_t { kStdout = 1, kStderr = 2 };

// Where one attempt's logs are: `spool` is relative to the run directory
// ("spools/NAME"); [offset, offset + length) holds its frames, of which `out_bytes` and
// `err_bytes` are payload. Empty `spool`: the attempt printed nothing.
struct LogSpan {
  std::string spool;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  std::uint64_t out_bytes = 0;
  std::uint64_t err_bytes = 0;

  bool empty() const { return spool.empty(); }
};

// The spools of one process's lanes, under one directory. Not thread-safe. Files are
// named "<host>-<pid>-<lane>[.<n>]" and created with O_EXCL: a resumed coordinator, or a
// second worker on the same host, never appends to another process's spool (which may end
// in a frame torn by a crash).
class SpoolSet {
 public:
  SpoolSet() = default;
  SpoolSet(const SpoolSet&) = delete;
  SpoolSet& operator=(const SpoolSet&) = delete;
  ~SpoolSet();

  // Starts an attempt's range on `lane`, whose spools live in `dir` (RUN/spools: made on
  // the first byte).
  void begin(std::size_t lane, const std::string& dir, TaskId task, std::uint32_t attempt);
  // Appends one frame for the lane's current attempt. False with errno on a write error
  // (the bytes are then lost; the attempt's range stays consistent).
  bool append(std::size_t lane, LogStream stream, const char* data, std::size_t size);
  // Ends the lane's attempt and returns its span (empty when it printed nothing).
  LogSpan end(std::size_t lane);

 private:
  struct Lane {
    int fd = -1;
    std::string name;  // "spools/NAME", relative to the run directory
    std::string dir;
    std::uint64_t size = 0;
    TaskId task = 0;
    std::uint32_t attempt = 0;
    LogSpan span;
  };
  bool open_lane(Lane& lane, std::size_t index);
  std::vector<Lane> lanes_;
};

// Appends to `out` the payload of the frames of (task, attempt, stream) in
// [offset, offset + length) of the spool at `path`. Expected error when unreadable.
Expected<void> read_spool(const std::string& path, std::uint64_t offset, std::uint64_t length,
                          TaskId task, std::uint32_t attempt, LogStream stream, std::string& out);

// Scans the frames of the spool at `path` from `*offset` to its current end, appending
// (task, attempt, stream) payload to `out` and advancing `*offset` past whole frames only
// (a frame still being written is read on a later call). Sets `*other` when a frame of
// another attempt of the same lane follows one of this attempt (the attempt has ended).
// For `sluice logs --follow`.
Expected<void> scan_spool(const std::string& path, std::uint64_t* offset, TaskId task,
                          std::uint32_t attempt, LogStream stream, std::string& out, bool* seen,
                          bool* other);

}  // namespace sluice
