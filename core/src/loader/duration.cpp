// Human durations and memory sizes, as written in workflow files.
#include "sluice/duration.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>

namespace sluice {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

char lower(char c) {
  return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// Reads an unsigned decimal number ("12", "1.5", ".5") from the front of `s`. Digits are
// required on at least one side of the point. Advances `s` past it.
std::optional<double> take_number(std::string_view& s) {
  std::size_t i = 0;
  double value = 0;
  bool digits = false;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
    value = value * 10 + (s[i] - '0');
    digits = true;
    ++i;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    double scale = 0.1;
    bool frac_digits = false;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      value += (s[i] - '0') * scale;
      scale /= 10;
      frac_digits = true;
      ++i;
    }
    if (!frac_digits) return std::nullopt;  // "1." is a typo, not a number
    digits = true;
  }
  if (!digits) return std::nullopt;
  s.remove_prefix(i);
  return value;
}

// Anything longer than this is certainly a typo, and keeps the arithmetic exact.
constexpr double kMaxMillis = 1e15;  // ~31,700 years
constexpr double kMaxMib = 1e12;     // ~950 PiB

}  // namespace

std::optional<Millis> parse_duration(std::string_view text) {
  std::string_view s = trim(text);
  if (s.empty()) return std::nullopt;

  // A bare number is seconds.
  {
    std::string_view rest = s;
    if (auto n = take_number(rest); n && rest.empty()) {
      double ms = *n * 1000.0;
      if (ms > kMaxMillis) return std::nullopt;
      return Millis(static_cast<std::int64_t>(std::llround(ms)));
    }
  }

  // Otherwise one or more NUMBER UNIT components, largest unit first, each at most once:
  // "1d", "1h30m", "2m30s", "250ms".
  struct Unit {
    std::string_view name;
    double millis;
  };
  static constexpr Unit kUnits[] = {
      {"d", 86'400'000.0}, {"h", 3'600'000.0}, {"m", 60'000.0}, {"s", 1'000.0}, {"ms", 1.0},
  };
  constexpr int kNoUnit = -1;
  int last_unit = kNoUnit;
  double total = 0;
  while (!s.empty()) {
    auto n = take_number(s);
    if (!n) return std::nullopt;
    std::size_t len = 0;
    while (len < s.size() && std::isalpha(static_cast<unsigned char>(s[len]))) ++len;
    std::string_view unit = s.substr(0, len);
    s.remove_prefix(len);
    int found = kNoUnit;
    for (int u = 0; u < static_cast<int>(std::size(kUnits)); ++u) {
      if (iequals(unit, kUnits[u].name)) found = u;
    }
    if (found == kNoUnit || found <= last_unit) return std::nullopt;
    last_unit = found;
    total += *n * kUnits[found].millis;
    if (total > kMaxMillis) return std::nullopt;
  }
  return Millis(static_cast<std::int64_t>(std::llround(total)));
}

std::string format_duration(Millis d) {
  std::int64_t ms = d.count();
  if (ms < 0) return "-" + format_duration(Millis(-ms));
  char buf[64];
  if (ms < 1000) {
    std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ms));
  } else if (ms < 60'000) {
    // Truncate to tenths so that 59.99s never reads "60.0s".
    std::snprintf(buf, sizeof buf, "%lld.%llds", static_cast<long long>(ms / 1000),
                  static_cast<long long>(ms % 1000 / 100));
  } else if (ms < 3'600'000) {
    std::int64_t s = ms / 1000;
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  } else if (ms < 86'400'000) {
    std::int64_t m = ms / 60'000;
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(m / 60),
                  static_cast<long long>(m % 60));
  } else {
    std::int64_t h = ms / 3'600'000;
    std::snprintf(buf, sizeof buf, "%lldd%02lldh", static_cast<long long>(h / 24),
                  static_cast<long long>(h % 24));
  }
  return buf;
}

std::optional<std::int64_t> parse_memory_mib(std::string_view text) {
  std::string_view s = trim(text);
  auto n = take_number(s);
  if (!n) return std::nullopt;
  s = trim(s);  // "4 GB" is common enough to accept

  // Binary units throughout, as Slurm reads them: M = MB = MiB = 2^20 bytes.
  struct Unit {
    std::string_view name;
    double mib;
  };
  static constexpr Unit kUnits[] = {
      {"", 1.0},        {"k", 1.0 / 1024}, {"kb", 1.0 / 1024}, {"kib", 1.0 / 1024}, {"m", 1.0},
      {"mb", 1.0},      {"mib", 1.0},      {"g", 1024.0},      {"gb", 1024.0},      {"gib", 1024.0},
      {"t", 1048576.0}, {"tb", 1048576.0}, {"tib", 1048576.0},
  };
  for (const Unit& u : kUnits) {
    if (!iequals(s, u.name)) continue;
    double mib = *n * u.mib;
    if (mib > kMaxMib) return std::nullopt;
    // Round a fraction of a MiB up: asking for 1.5K must not become "nothing".
    return static_cast<std::int64_t>(std::ceil(mib - 1e-9));
  }
  return std::nullopt;
}

}  // namespace sluice
