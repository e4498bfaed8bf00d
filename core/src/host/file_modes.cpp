#include "sluice/engine/file_modes.hpp"

#include <sys/stat.h>

#include <cerrno>
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

bool make_attempt_dir(const std::string& dir) {
  const mode_t mode = file_modes().dir;
  const std::size_t slash = dir.rfind('/');
  if (slash != std::string::npos && slash > 0) ::mkdir(dir.substr(0, slash).c_str(), mode);
  return ::mkdir(dir.c_str(), mode) == 0 || errno == EEXIST;
}

}  // namespace sluice
