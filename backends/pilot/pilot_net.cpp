#include "pilot_net.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace sluice::pilot {
namespace {

tl::unexpected<Error> sys_error(const std::string& what) {
  return make_error(ErrorCode::kIo, what + ": " + std::strerror(errno));
}

void set_nonblocking(int fd, bool on) {
  int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK);
}

}  // namespace

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    reset();
    fd_ = o.release();
  }
  return *this;
}

void Fd::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Expected<Fd> listen_tcp(int port, int& bound_port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return sys_error("socket");
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return sys_error("bind");
  if (::listen(fd.get(), 128) != 0) return sys_error("listen");
  socklen_t len = sizeof addr;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    return sys_error("getsockname");
  bound_port = ntohs(addr.sin_port);
  return fd;
}

Expected<Fd> connect_tcp(const std::string& address, int timeout_ms) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return make_error(ErrorCode::kInvalidInput, "'" + address + "' is not HOST:PORT");
  const std::string host = address.substr(0, colon), port = address.substr(colon + 1);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0)
    return make_error(ErrorCode::kIo, "cannot resolve " + host + ": " + ::gai_strerror(rc));
  std::string why = "no address";
  Fd out;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    Fd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
    if (!fd.valid()) continue;
    int rc = ::connect(fd.get(), ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd.get(), POLLOUT, 0};
      rc = ::poll(&p, 1, timeout_ms) == 1 ? 0 : -1;
      if (rc != 0) errno = ETIMEDOUT;
      int err = 0;
      socklen_t len = sizeof err;
      if (rc == 0 && ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
        errno = err;
        rc = -1;
      }
    }
    if (rc != 0) {
      why = std::strerror(errno);
      continue;
    }
    set_nonblocking(fd.get(), false);
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    out = std::move(fd);
    break;
  }
  ::freeaddrinfo(res);
  if (!out.valid()) return make_error(ErrorCode::kIo, "cannot connect to " + address + ": " + why);
  return out;
}

Connection::Connection(Fd fd) : fd_(std::move(fd)) {
  set_nonblocking(fd_.get(), true);
  int one = 1;
  ::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

bool Connection::read_some() {
  char buf[65536];
  std::size_t budget = sealed() ? kReadBudget : kMaxHandshakeBuffer;
  while (budget > 0) {
    // What is left in the socket stays there (the kernel's buffer, not ours) until the
    // frames read are taken out, or the connection is dropped.
    std::size_t room = std::min(budget, sizeof buf);
    if (!sealed()) {
      if (in_.buffered() >= kMaxHandshakeBuffer) return true;
      room = std::min(room, kMaxHandshakeBuffer - in_.buffered());
    }
    if (in_.header_bad()) return true;  // next() says so; the body is never read
    const ssize_t n = ::recv(fd_.get(), buf, room, 0);
    if (n > 0) {
      in_.append(buf, static_cast<std::size_t>(n));
      budget -= static_cast<std::size_t>(n);
      if (static_cast<std::size_t>(n) < room) return true;
      continue;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }
  return true;
}

bool Connection::next(MsgType& type, std::string_view& payload, bool& bad) {
  if (!sealed()) return in_.next(type, payload, bad);
  std::string_view body;
  if (!in_.next_body(body, bad)) return false;
  std::uint8_t t = 0;
  if (!receiver_->open(body, t, opened_)) {
    bad = true;
    return false;
  }
  type = static_cast<MsgType>(t);
  payload = opened_;
  return true;
}

void Connection::send_raw(std::string_view bytes) {
  if (out_pos_ > 0 && out_pos_ == out_.size()) {
    out_.clear();
    out_pos_ = 0;
  }
  out_ += bytes;
}

void Connection::send(MsgType type, std::string_view payload) {
  send_raw(sealed() ? sender_->seal(static_cast<std::uint8_t>(type), payload)
                    : frame(type, payload));
}

void Connection::seal(std::unique_ptr<FrameCipher> sender, std::unique_ptr<FrameCipher> receiver) {
  sender_ = std::move(sender);
  receiver_ = std::move(receiver);
  in_.set_max_frame(kMaxFrame);
}

bool Connection::flush() {
  while (out_pos_ < out_.size()) {
    const ssize_t n =
        ::send(fd_.get(), out_.data() + out_pos_, out_.size() - out_pos_, MSG_NOSIGNAL);
    if (n > 0) {
      out_pos_ += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return false;
  }
  if (out_pos_ == out_.size()) {
    out_.clear();
    out_pos_ = 0;
  } else if (out_pos_ > (1u << 20)) {
    out_.erase(0, out_pos_);
    out_pos_ = 0;
  }
  return true;
}

bool Connection::flush_blocking(int timeout_ms) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (wants_write()) {
    if (!flush()) return false;
    if (!wants_write()) break;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          until - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) return false;
    pollfd p{fd_.get(), POLLOUT, 0};
    ::poll(&p, 1, static_cast<int>(left));
  }
  return true;
}

}  // namespace sluice::pilot
