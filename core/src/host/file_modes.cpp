#include "sluice/engine/file_modes.hpp"

#include <cstdlib>

namespace sluice {
namespace {

FileModes compute() {
  mode_t mask = 077;
  if (const char* env = std::getenv("SLUICE_UMASK"); env != nullptr && *env != '\0') {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 8);
    if (end != nullptr && *end == '\0' && v >= 0 && v <= 0777) mask = static_cast<mode_t>(v);
  }
  FileModes m;
  m.dir = static_cast<mode_t>(0777 & ~mask);
  m.file = static_cast<mode_t>(0666 & ~mask);
  return m;
}

}  // namespace

const FileModes& file_modes() {
  static const FileModes modes = compute();
  return modes;
}

}  // namespace sluice
