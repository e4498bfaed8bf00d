// Run ids: 48 bits of milliseconds since the epoch, then 80 random bits, written as 26
// characters of lowercase Crockford base32 (most significant first, like a ULID), so
// that plain string order is creation order.
#include "sluice/engine/run_id.hpp"

#include <sys/random.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <random>

namespace sluice {
namespace {

constexpr char kAlphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
constexpr std::size_t kIdLength = 26;
constexpr std::size_t kTimeChars = 10;  // 50 bits: the top 2 are always zero
constexpr std::uint64_t kMaxMillis = (std::uint64_t{1} << 48) - 1;

// 10 random bytes. getrandom() is fork-safe (no state copied into children); the
// random_device fallback only runs where the syscall is unavailable.
std::array<unsigned char, 10> random_bytes() {
  std::array<unsigned char, 10> out{};
  std::size_t got = 0;
  while (got < out.size()) {
    ssize_t n = getrandom(out.data() + got, out.size() - got, 0);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got < out.size()) {
    thread_local std::mt19937_64 gen = [] {
      std::random_device rd;
      std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
      return std::mt19937_64(seq);
    }();
    for (auto& b : out) b = static_cast<unsigned char>(gen());
  }
  return out;
}

int decode(char c) {
  for (int i = 0; i < 32; ++i) {
    if (kAlphabet[i] == c) return i;
  }
  return -1;
}

}  // namespace

std::string new_run_id() {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now).count();
  return new_run_id(ms < 0 ? 0 : static_cast<std::uint64_t>(ms));
}

std::string new_run_id(std::uint64_t epoch_ms) {
  if (epoch_ms > kMaxMillis) epoch_ms = kMaxMillis;
  std::string id(kIdLength, '0');
  for (std::size_t i = 0; i < kTimeChars; ++i) {
    id[kTimeChars - 1 - i] = kAlphabet[epoch_ms & 31];
    epoch_ms >>= 5;
  }
  // 80 random bits = 16 characters of 5 bits, taken from the bytes as a bit stream.
  auto bytes = random_bytes();
  std::uint32_t acc = 0;
  int bits = 0;
  std::size_t pos = kTimeChars;
  for (unsigned char b : bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      id[pos++] = kAlphabet[(acc >> bits) & 31];
    }
  }
  return id;
}

bool is_run_id(const std::string& s) {
  if (s.size() != kIdLength) return false;
  for (char c : s) {
    if (decode(c) < 0) return false;
  }
  // The first character carries the top 5 of 50 time bits, of which 2 are zero.
  return decode(s[0]) < 8;
}

}  // namespace sluice
