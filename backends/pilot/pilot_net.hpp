// Plain POSIX TCP for the pilot backend: an owning file descriptor, a listener on an
// ephemeral port, a client connect, and a non-blocking framed connection with an output
// queue. Single-threaded: each side drives its connections from one poll() loop.
#pragma once

#include <string>
#include <string_view>

#include "pilot_wire.hpp"
#include "sluice/error.hpp"

namespace sluice::pilot {

// Owns one file descriptor; closes it on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset();

 private:
  int fd_ = -1;
};

// A non-blocking listening socket on every address (0.0.0.0), port chosen by the kernel
// when `port` is 0. Returns the socket and stores the port.
Expected<Fd> listen_tcp(int port, int& bound_port);

// Connects (blocking, with `timeout_ms`) to "HOST:PORT"; the socket returned is blocking
// with TCP_NODELAY.
Expected<Fd> connect_tcp(const std::string& address, int timeout_ms);

// One framed connection. Reads what is there without blocking, queues frames to send and
// writes as much as the socket takes.
class Connection {
 public:
  explicit Connection(Fd fd);
  int fd() const { return fd_.get(); }
  // Reads what arrived. False when the peer closed the connection or it failed.
  bool read_some();
  // The next whole frame (see FrameBuffer::next); `bad` on a protocol error.
  bool next(MsgType& type, std::string_view& payload, bool& bad) {
    return in_.next(type, payload, bad);
  }
  void send(MsgType type, std::string_view payload);
  // Writes queued bytes until the socket would block. False when the connection failed.
  bool flush();
  bool wants_write() const { return out_pos_ < out_.size(); }
  // Blocks until the queue is written or `timeout_ms` passed; false on failure/timeout.
  bool flush_blocking(int timeout_ms);

 private:
  Fd fd_;
  FrameBuffer in_;
  std::string out_;
  std::size_t out_pos_ = 0;
};

}  // namespace sluice::pilot
