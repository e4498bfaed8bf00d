#include "sluice/engine/host_info.hpp"

#include <hdf5.h>
#include <pwd.h>
#include <sched.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace sluice {
namespace {

// A "Name:   12345 kB" line of /proc/meminfo, in bytes; 0 when absent.
std::uint64_t meminfo_bytes(const char* name) {
  std::FILE* f = std::fopen("/proc/meminfo", "re");
  if (f == nullptr) return 0;
  char line[256];
  std::uint64_t value = 0;
  const std::size_t len = std::strlen(name);
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, name, len) != 0 || line[len] != ':') continue;
    unsigned long long kib = 0;
    if (std::sscanf(line + len + 1, "%llu", &kib) == 1) value = kib * 1024ull;
    break;
  }
  std::fclose(f);
  return value;
}

}  // namespace

std::string host_name() {
  char name[HOST_NAME_MAX + 1] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

std::string initiator() {
  std::string user;
  struct passwd pw {};
  struct passwd* found = nullptr;
  char buf[4096];
  if (::getpwuid_r(::geteuid(), &pw, buf, sizeof buf, &found) == 0 && found != nullptr)
    user = found->pw_name;
  if (user.empty())
    if (const char* u = std::getenv("USER"); u != nullptr) user = u;
  if (user.empty()) user = std::to_string(::geteuid());
  const char* submit_host = std::getenv("SLURM_SUBMIT_HOST");
  return user + "@" + (submit_host != nullptr && *submit_host ? submit_host : host_name());
}

int usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  const unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

std::string self_executable() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

std::string self_directory() {
  std::string path = self_executable();
  const std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {};
  path.resize(slash == 0 ? 1 : slash);
  return path;
}

HostInfo probe_host() {
  HostInfo h;
  h.hostname = host_name();
  h.usable_cpus = usable_cpus();
  if (long n = ::sysconf(_SC_NPROCESSORS_ONLN); n > 0)
    h.online_cpus = static_cast<int>(n);
  else if (unsigned hw = std::thread::hardware_concurrency(); hw > 0)
    h.online_cpus = static_cast<int>(hw);
  h.memory_total_bytes = meminfo_bytes("MemTotal");
  if (h.memory_total_bytes == 0) {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0)
      h.memory_total_bytes = static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page);
  }
  h.memory_available_bytes = meminfo_bytes("MemAvailable");
  return h;
}

std::string hdf5_library_version() {
  unsigned major = 0, minor = 0, release = 0;
  if (H5get_libversion(&major, &minor, &release) < 0) return "unknown";
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(release);
}

}  // namespace sluice
