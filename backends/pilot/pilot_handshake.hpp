// The handshake that opens every pilot connection, before anything else is said: both
// sides prove they hold the run's key (pilot_crypto.hpp) without sending it, the worker
// first checking the coordinator, then everything is sealed. Plain frames, each at most
// kMaxHandshakeFrame bytes:
//
//   worker -> coordinator   kAuthHello      magic "SLPILOT1", worker nonce (32 bytes)
//   coordinator -> worker   kAuthChallenge  coordinator nonce, coordinator proof
//   worker -> coordinator   kAuthProof      worker proof          (or kAuthFailed: the
//                                           coordinator's proof was wrong; it closes)
//   coordinator -> worker   kAuthOk         (or kRefused: the worker's proof was wrong)
//
// From then on each side seals what it sends with its direction's FrameCipher. A
// stranger learns two nonces and proofs bound to them, which are no use on another
// connection; a coordinator without the key gets no proof it could replay and no frame
// it could read, and a worker without the key gets nothing to run.
//
// The two state machines touch no socket (fuzzed in tests/fuzz/pilot_fuzz.cpp);
// authenticate() drives the worker's over a Connection.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "pilot_crypto.hpp"
#include "pilot_wire.hpp"

namespace sluice::pilot {

class Connection;

enum class AuthStep {
  kContinue,  // send `reply` (possibly empty), wait for the next frame
  kAccepted,  // send `reply`, then seal: take the ciphers
  kRefused,   // send `reply` and close; `why` says why
};

// The coordinator's half, one per accepted connection.
class ServerHandshake {
 public:
  explicit ServerHandshake(const Key& key) : key_(key) {}
  // One plain frame from the worker; appends whole frames to send to `reply`.
  AuthStep on_frame(MsgType type, std::string_view payload, std::string& reply, std::string& why);
  // After kAccepted: the ciphers of what this side sends and receives.
  std::unique_ptr<FrameCipher> sender() const;
  std::unique_ptr<FrameCipher> receiver() const;

 private:
  Key key_;
  Nonce worker_{}, coordinator_{};
  enum { kHello, kProof, kDone } state_ = kHello;
};

// The worker's half.
class ClientHandshake {
 public:
  explicit ClientHandshake(const Key& key) : key_(key), worker_(random_nonce()) {}
  // The first frame to send.
  std::string start() const;
  // One plain frame from the coordinator. kRefused with `impostor` set when the
  // coordinator could not prove the key (`reply` then says so to it).
  AuthStep on_frame(MsgType type, std::string_view payload, std::string& reply, std::string& why,
                    bool& impostor);
  std::unique_ptr<FrameCipher> sender() const;
  std::unique_ptr<FrameCipher> receiver() const;

 private:
  Key key_;
  Nonce worker_{}, coordinator_{};
  enum { kChallenge, kOk, kDone } state_ = kChallenge;
};

enum class AuthResult {
  kAccepted,  // the connection is sealed both ways
  kImpostor,  // the peer could not prove the key: nothing was sent that it could use
  kRefused,   // the coordinator refused this worker's proof
  kLost,      // closed, timed out or spoke out of turn
};

// The worker's handshake over `conn`, blocking for at most `timeout_ms` (or until `stop`,
// when given, returns true: kLost); on kAccepted `conn` is sealed. `why` says what went
// wrong otherwise.
AuthResult authenticate(Connection& conn, const Key& key, int timeout_ms, std::string& why,
                        bool (*stop)() = nullptr);

}  // namespace sluice::pilot
