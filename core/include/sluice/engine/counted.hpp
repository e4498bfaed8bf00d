// "1 GPU", "3 GPUs", "1 cpu": a count with its noun, singular or plural, for the
// messages users read.
#pragma once

#include <string>
#include <string_view>

namespace sluice {

inline std::string counted(long long n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

}  // namespace sluice
