// POSIX TCP for the pilot backend: an owning file descriptor, a listener on an ephemeral
// port, a client connect, and a non-blocking framed connection with an output queue,
// plain during the handshake (pilot_handshake.hpp) and sealed after it. Single-threaded:
// each side drives its connections from one poll() loop.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "pilot_crypto.hpp"
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

// Before a connection is sealed it buffers at most this much: handshake frames are
// small, and a stranger must not choose how much memory the coordinator spends on it.
constexpr std::size_t kMaxHandshakeBuffer = 4096;
// A sealed connection reads at most this much per read_some(), so that one busy peer
// does not keep the poll loop from the others.
constexpr std::size_t kReadBudget = 1u << 20;

// One framed connection. Reads what is there without blocking, queues frames to send and
// writes as much as the socket takes. Memory: unsealed, at most kMaxHandshakeBuffer bytes
// read ahead and frames of at most kMaxHandshakeFrame; sealed, frames of at most
// kMaxFrame, whose length is checked before their body is read.
class Connection {
 public:
  explicit Connection(Fd fd);
  int fd() const { return fd_.get(); }
  // Reads what arrived, within the limits above. False when the peer closed the
  // connection or it failed.
  bool read_some();
  // The next whole frame (see FrameBuffer::next), opened when the connection is sealed;
  // `bad` on a protocol error or a frame that does not authenticate.
  bool next(MsgType& type, std::string_view& payload, bool& bad);
  // Queues a frame: sealed when the connection is.
  void send(MsgType type, std::string_view payload);
  // Queues bytes as they are (the handshake's plain frames).
  void send_raw(std::string_view bytes);
  // From now on, what is sent is sealed by `sender` and what arrives opened by `receiver`.
  void seal(std::unique_ptr<FrameCipher> sender, std::unique_ptr<FrameCipher> receiver);
  bool sealed() const { return receiver_ != nullptr; }
  // Writes queued bytes until the socket would block. False when the connection failed.
  bool flush();
  bool wants_write() const { return out_pos_ < out_.size(); }
  // Blocks until the queue is written or `timeout_ms` passed; false on failure/timeout.
  bool flush_blocking(int timeout_ms);

 private:
  Fd fd_;
  FrameBuffer in_{kMaxHandshakeFrame};
  std::unique_ptr<FrameCipher> sender_, receiver_;
  std::string opened_;  // the last sealed frame's payload
  std::string out_;
  std::size_t out_pos_ = 0;
};

}  // namespace sluice::pilot
