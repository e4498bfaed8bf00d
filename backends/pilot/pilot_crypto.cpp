#include "pilot_crypto.hpp"

#include <sodium.h>

#include <cctype>
#include <cstring>

namespace sluice::pilot {
namespace {

static_assert(crypto_aead_chacha20poly1305_ietf_ABYTES == kSealOverhead);
static_assert(crypto_aead_chacha20poly1305_ietf_KEYBYTES == 32);
static_assert(crypto_generichash_KEYBYTES_MAX >= kKeyBytes);

// Labels keep each use of the key apart: a proof is never a session key, and what one
// side proves or seals is never valid as the other's.
constexpr std::string_view kCoordinatorProof = "sluice pilot 1: coordinator proof";
constexpr std::string_view kWorkerProof = "sluice pilot 1: worker proof";
constexpr std::string_view kCoordinatorSends = "sluice pilot 1: coordinator to worker";
constexpr std::string_view kWorkerSends = "sluice pilot 1: worker to coordinator";

void keyed_hash(const Key& key, std::string_view label, const Nonce& worker,
                const Nonce& coordinator, unsigned char* out, std::size_t out_len) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, key.data(), kKeyBytes, out_len);
  crypto_generichash_update(&st, reinterpret_cast<const unsigned char*>(label.data()),
                            label.size());
  crypto_generichash_update(&st, worker.data(), worker.size());
  crypto_generichash_update(&st, coordinator.data(), coordinator.size());
  crypto_generichash_final(&st, out, out_len);
  sodium_memzero(&st, sizeof st);
}

void counter_nonce(std::uint64_t counter, unsigned char* nonce) {
  std::memset(nonce, 0, crypto_aead_chacha20poly1305_ietf_NPUBBYTES);
  for (int i = 0; i < 8; ++i) nonce[i] = static_cast<unsigned char>(counter >> (8 * i));
}

}  // namespace

Key::~Key() {
  sodium_memzero(bytes_.data(), bytes_.size());
}

Key Key::random() {
  Key k;
  randombytes_buf(k.bytes_.data(), k.bytes_.size());
  return k;
}

Expected<Key> Key::from_hex(std::string_view hex) {
  while (!hex.empty() && std::isspace(static_cast<unsigned char>(hex.back()))) hex.remove_suffix(1);
  while (!hex.empty() && std::isspace(static_cast<unsigned char>(hex.front())))
    hex.remove_prefix(1);
  Key k;
  std::size_t len = 0;
  const char* end = nullptr;
  if (hex.size() != 2 * kKeyBytes ||
      sodium_hex2bin(k.bytes_.data(), k.bytes_.size(), hex.data(), hex.size(), nullptr, &len,
                     &end) != 0 ||
      len != kKeyBytes || end != hex.data() + hex.size())
    return make_error(ErrorCode::kInvalidInput, "not a pilot key (64 hex digits)");
  return k;
}

std::string Key::hex() const {
  char out[2 * kKeyBytes + 1];
  sodium_bin2hex(out, sizeof out, bytes_.data(), bytes_.size());
  std::string s(out, 2 * kKeyBytes);
  sodium_memzero(out, sizeof out);
  return s;
}

Expected<void> init_crypto() {
  if (sodium_init() < 0) return make_error(ErrorCode::kBackend, "libsodium cannot start");
  return {};
}

Nonce random_nonce() {
  Nonce n;
  randombytes_buf(n.data(), n.size());
  return n;
}

Proof make_proof(const Key& key, Role role, const Nonce& worker, const Nonce& coordinator) {
  Proof p;
  keyed_hash(key, role == Role::kCoordinator ? kCoordinatorProof : kWorkerProof, worker,
             coordinator, p.data(), p.size());
  return p;
}

bool check_proof(const Key& key, Role role, const Nonce& worker, const Nonce& coordinator,
                 std::string_view proof) {
  if (proof.size() != kProofBytes) return false;
  const Proof want = make_proof(key, role, worker, coordinator);
  return crypto_verify_32(want.data(), reinterpret_cast<const unsigned char*>(proof.data())) == 0;
}

FrameCipher::FrameCipher(const Key& key, Role from, const Nonce& worker, const Nonce& coordinator) {
  keyed_hash(key, from == Role::kCoordinator ? kCoordinatorSends : kWorkerSends, worker,
             coordinator, key_.data(), key_.size());
}

FrameCipher::~FrameCipher() {
  sodium_memzero(key_.data(), key_.size());
}

std::string FrameCipher::seal(std::uint8_t type, std::string_view payload) {
  const std::size_t plain_len = 1 + payload.size();
  const std::uint32_t len = static_cast<std::uint32_t>(plain_len + kSealOverhead);
  std::string out(4 + len, '\0');
  std::memcpy(out.data(), &len, 4);
  auto* body = reinterpret_cast<unsigned char*>(out.data() + 4);
  body[0] = type;
  if (!payload.empty()) std::memcpy(body + 1, payload.data(), payload.size());
  unsigned char nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
  counter_nonce(counter_++, nonce);
  unsigned long long sealed = 0;
  crypto_aead_chacha20poly1305_ietf_encrypt(body, &sealed, body, plain_len,
                                            reinterpret_cast<const unsigned char*>(out.data()), 4,
                                            nullptr, nonce, key_.data());
  return out;
}

bool FrameCipher::open(std::string_view body, std::uint8_t& type, std::string& payload) {
  if (broken_ || body.size() < 1 + kSealOverhead) return broken_ = true, false;
  const std::uint32_t len = static_cast<std::uint32_t>(body.size());
  unsigned char header[4];
  std::memcpy(header, &len, 4);
  unsigned char nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
  counter_nonce(counter_++, nonce);
  std::string plain(body.size() - kSealOverhead, '\0');
  unsigned long long plain_len = 0;
  if (crypto_aead_chacha20poly1305_ietf_decrypt(reinterpret_cast<unsigned char*>(plain.data()),
                                                &plain_len, nullptr,
                                                reinterpret_cast<const unsigned char*>(body.data()),
                                                body.size(), header, 4, nonce, key_.data()) != 0)
    return broken_ = true, false;
  type = static_cast<std::uint8_t>(plain[0]);
  payload.assign(plain, 1, std::string::npos);
  return true;
}

}  // namespace sluice::pilot
