#include "pilot_handshake.hpp"

#include <poll.h>

#include <chrono>
#include <cstring>

#include "pilot_net.hpp"

namespace sluice::pilot {
namespace {

constexpr std::string_view kMagic = "SLPILOT1";

bool take_nonce(std::string_view bytes, Nonce& out) {
  if (bytes.size() != out.size()) return false;
  std::memcpy(out.data(), bytes.data(), out.size());
  return true;
}

// Nonces and proofs (the same type) as bytes on the wire.
std::string_view view(const Nonce& n) {
  return {reinterpret_cast<const char*>(n.data()), n.size()};
}

}  // namespace

AuthStep ServerHandshake::on_frame(MsgType type, std::string_view payload, std::string& reply,
                                   std::string& why) {
  if (state_ == kHello && type == MsgType::kAuthHello) {
    if (payload.size() != kMagic.size() + kNonceBytes ||
        payload.substr(0, kMagic.size()) != kMagic ||
        !take_nonce(payload.substr(kMagic.size()), worker_)) {
      why = "not a sluice worker, or another version";
      return AuthStep::kRefused;
    }
    coordinator_ = random_nonce();
    std::string challenge(view(coordinator_));
    challenge += view(make_proof(key_, Role::kCoordinator, worker_, coordinator_));
    reply += frame(MsgType::kAuthChallenge, challenge);
    state_ = kProof;
    return AuthStep::kContinue;
  }
  if (state_ == kProof && type == MsgType::kAuthFailed) {
    why = "the worker holds another key (a wrong --secret-file, or another run's worker)";
    return AuthStep::kRefused;
  }
  if (state_ == kProof && type == MsgType::kAuthProof) {
    if (!check_proof(key_, Role::kWorker, worker_, coordinator_, payload)) {
      why = "the worker did not prove the run's key";
      reply += frame(MsgType::kRefused, encode_text(why));
      return AuthStep::kRefused;
    }
    reply += frame(MsgType::kAuthOk, {});
    state_ = kDone;
    return AuthStep::kAccepted;
  }
  why = "unexpected message " + std::to_string(static_cast<int>(type)) + " during the handshake";
  return AuthStep::kRefused;
}

std::unique_ptr<FrameCipher> ServerHandshake::sender() const {
  return std::make_unique<FrameCipher>(key_, Role::kCoordinator, worker_, coordinator_);
}

std::unique_ptr<FrameCipher> ServerHandshake::receiver() const {
  return std::make_unique<FrameCipher>(key_, Role::kWorker, worker_, coordinator_);
}

std::string ClientHandshake::start() const {
  std::string hello(kMagic);
  hello += view(worker_);
  return frame(MsgType::kAuthHello, hello);
}

AuthStep ClientHandshake::on_frame(MsgType type, std::string_view payload, std::string& reply,
                                   std::string& why, bool& impostor) {
  impostor = false;
  if (state_ == kChallenge && type == MsgType::kAuthChallenge) {
    if (payload.size() != kNonceBytes + kProofBytes ||
        !take_nonce(payload.substr(0, kNonceBytes), coordinator_) ||
        !check_proof(key_, Role::kCoordinator, worker_, coordinator_,
                     payload.substr(kNonceBytes))) {
      why =
          "it did not prove the run's key (another run's coordinator, another program on "
          "its port, or a wrong --secret-file)";
      impostor = true;
      reply += frame(MsgType::kAuthFailed, {});
      return AuthStep::kRefused;
    }
    reply +=
        frame(MsgType::kAuthProof, view(make_proof(key_, Role::kWorker, worker_, coordinator_)));
    state_ = kOk;
    return AuthStep::kContinue;
  }
  if (state_ == kOk && type == MsgType::kAuthOk && payload.empty()) {
    state_ = kDone;
    return AuthStep::kAccepted;
  }
  if (state_ == kOk && type == MsgType::kRefused) {
    auto text = decode_text(payload);
    why = text ? *text : "refused";
    return AuthStep::kRefused;
  }
  impostor = state_ == kChallenge;
  why = "unexpected message " + std::to_string(static_cast<int>(type)) + " during the handshake";
  return AuthStep::kRefused;
}

std::unique_ptr<FrameCipher> ClientHandshake::sender() const {
  return std::make_unique<FrameCipher>(key_, Role::kWorker, worker_, coordinator_);
}

std::unique_ptr<FrameCipher> ClientHandshake::receiver() const {
  return std::make_unique<FrameCipher>(key_, Role::kCoordinator, worker_, coordinator_);
}

AuthResult authenticate(Connection& conn, const Key& key, int timeout_ms, std::string& why,
                        bool (*stop)()) {
  using Clock = std::chrono::steady_clock;
  const auto until = Clock::now() + std::chrono::milliseconds(timeout_ms);
  auto left_ms = [&] {
    return static_cast<int>(std::max<std::int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count()));
  };
  ClientHandshake hs(key);
  conn.send_raw(hs.start());
  if (!conn.flush_blocking(left_ms())) return why = "could not send", AuthResult::kLost;
  for (;;) {
    MsgType type;
    std::string_view payload;
    bool bad = false;
    while (conn.next(type, payload, bad)) {
      std::string reply;
      bool impostor = false;
      const AuthStep step = hs.on_frame(type, payload, reply, why, impostor);
      if (!reply.empty()) {
        conn.send_raw(reply);
        conn.flush_blocking(std::min(left_ms(), 1000));
      }
      if (step == AuthStep::kAccepted) {
        conn.seal(hs.sender(), hs.receiver());
        return AuthResult::kAccepted;
      }
      if (step == AuthStep::kRefused)
        return impostor ? AuthResult::kImpostor : AuthResult::kRefused;
    }
    if (bad) return why = "it sent something that is not a pilot handshake", AuthResult::kImpostor;
    if (stop != nullptr && stop()) return why = "stopped", AuthResult::kLost;
    const int wait = left_ms();
    if (wait == 0) return why = "no answer to the handshake", AuthResult::kLost;
    pollfd p{conn.fd(), POLLIN, 0};
    if (::poll(&p, 1, std::min(wait, 200)) <= 0) continue;
    if (!conn.read_some()) return why = "it closed the connection", AuthResult::kLost;
  }
}

}  // namespace sluice::pilot
