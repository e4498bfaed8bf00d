#include "slurm_version.hpp"

#include <charconv>
#include <cstdio>

namespace sluice::slurm {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// A number at `text[at]`; advances `at` past it.
std::optional<int> number_at(std::string_view text, std::size_t& at) {
  int n = 0;
  const auto r = std::from_chars(text.data() + at, text.data() + text.size(), n);
  if (r.ec != std::errc() || n < 0) return std::nullopt;
  at = static_cast<std::size_t>(r.ptr - text.data());
  return n;
}

}  // namespace

std::string SlurmVersion::str() const {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%d.%02d.%d", major, minor, micro);
  return buf;
}

std::string SlurmVersion::release() const {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%d.%02d", major, minor);
  return buf;
}

std::optional<SlurmVersion> parse_slurm_version(std::string_view text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    // A number that starts a word: not the "2" of "x2.3".
    if (!is_digit(text[i]) || (i > 0 && (is_digit(text[i - 1]) || text[i - 1] == '.'))) continue;
    std::size_t at = i;
    auto major = number_at(text, at);
    if (!major || at + 1 >= text.size() || text[at] != '.' || !is_digit(text[at + 1])) continue;
    ++at;
    auto minor = number_at(text, at);
    if (!minor) continue;
    SlurmVersion v{*major, *minor, 0};
    if (at + 1 < text.size() && text[at] == '.' && is_digit(text[at + 1])) {
      ++at;
      if (auto micro = number_at(text, at)) v.micro = *micro;
    }
    return v;
  }
  return std::nullopt;
}

std::optional<SlurmVersion> controller_version_from_config(std::string_view show_config) {
  while (!show_config.empty()) {
    const auto nl = show_config.find('\n');
    std::string_view line = show_config.substr(0, nl);
    show_config.remove_prefix(nl == std::string_view::npos ? show_config.size() : nl + 1);
    constexpr std::string_view kKey = "SLURM_VERSION";
    if (line.substr(0, kKey.size()) != kKey) continue;
    std::string_view rest = line.substr(kKey.size());
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    if (rest.empty() || rest.front() != '=') continue;  // not SLURM_VERSION_X
    return parse_slurm_version(rest.substr(1));
  }
  return std::nullopt;
}

SlurmVersion version_from_number(long number) {
  return SlurmVersion{static_cast<int>((number >> 16) & 0xff),
                      static_cast<int>((number >> 8) & 0xff), static_cast<int>(number & 0xff)};
}

}  // namespace sluice::slurm
