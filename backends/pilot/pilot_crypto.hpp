// The pilot backend's cryptography, all of it libsodium's: the run's key, the proofs a
// coordinator and a worker give each other that they hold it, the session keys derived
// from it, and the per-frame authenticated encryption of everything after the handshake.
//
// Key: 32 random bytes per run, in runs/RUN/pilot/secret as 64 hex digits (mode 0600);
// it never crosses the wire. Proofs are keyed BLAKE2b-256 (crypto_generichash) over a
// label and both sides' fresh 32-byte nonces, so a proof answers one connection only and
// a coordinator's proof is no worker's. Each direction has its own session key (keyed
// BLAKE2b over its own label and both nonces) and a 64-bit frame counter as its nonce:
// ChaCha20-Poly1305 (IETF), the frame's length header as associated data. A frame that
// was altered, replayed, reordered or sealed under another key does not open.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "sluice/error.hpp"

namespace sluice::pilot {

constexpr std::size_t kKeyBytes = 32;
constexpr std::size_t kNonceBytes = 32;
constexpr std::size_t kProofBytes = 32;
// What sealing adds to a frame's type and payload.
constexpr std::size_t kSealOverhead = 16;

using Nonce = std::array<unsigned char, kNonceBytes>;
using Proof = std::array<unsigned char, kProofBytes>;

// A secret key; wiped when destroyed.
class Key {
 public:
  Key() = default;
  Key(const Key&) = default;
  Key& operator=(const Key&) = default;
  ~Key();
  // 32 fresh random bytes.
  static Key random();
  // 64 hex digits (surrounding whitespace ignored); an error for anything else.
  static Expected<Key> from_hex(std::string_view hex);
  std::string hex() const;
  const unsigned char* data() const { return bytes_.data(); }

 private:
  std::array<unsigned char, kKeyBytes> bytes_{};
};

// Fails only when libsodium cannot start (no entropy source); call before anything else
// here. Idempotent, thread-safe.
Expected<void> init_crypto();

Nonce random_nonce();

enum class Role { kCoordinator, kWorker };
// The proof that `role` holds `key`, for the connection of these two nonces.
Proof make_proof(const Key& key, Role role, const Nonce& worker, const Nonce& coordinator);
// Compares in constant time.
bool check_proof(const Key& key, Role role, const Nonce& worker, const Nonce& coordinator,
                 std::string_view proof);

// One direction of an authenticated, encrypted stream of frames.
class FrameCipher {
 public:
  // The key of frames sent by `from` on the connection of these nonces.
  FrameCipher(const Key& key, Role from, const Nonce& worker, const Nonce& coordinator);
  ~FrameCipher();
  FrameCipher(const FrameCipher&) = delete;
  FrameCipher& operator=(const FrameCipher&) = delete;
  // The whole frame: u32 length, then type and payload sealed under the next counter.
  std::string seal(std::uint8_t type, std::string_view payload);
  // Opens the body of a frame (what follows its length) into `type` and `payload`; false
  // when it does not authenticate, which ends the connection (the counter is spent).
  bool open(std::string_view body, std::uint8_t& type, std::string& payload);

 private:
  std::array<unsigned char, 32> key_{};
  std::uint64_t counter_ = 0;
  bool broken_ = false;
};

}  // namespace sluice::pilot
