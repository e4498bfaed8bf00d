// register_mpi_backend() as linked into `sluice`, which does not link MPI: both the
// worker entry and the factory replace the process with `sluice-mpi` (same directory,
// same arguments, same pid, so mpirun/srun still see their rank).
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "mpi_backend.hpp"
#include "sluice/engine/host_info.hpp"

namespace sluice {
namespace {

std::string mpi_executable() {
  const std::string dir = self_directory();
  if (dir.empty()) return "sluice-mpi";
  return dir == "/" ? "/sluice-mpi" : dir + "/sluice-mpi";
}

// Returns only when the exec failed, with why.
std::string exec_mpi_binary() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (std::size_t pos = 0; pos < cmdline.size();) {
    std::size_t nul = cmdline.find('\0', pos);
    if (nul == std::string::npos) nul = cmdline.size();
    args.emplace_back(cmdline, pos, nul - pos);
    pos = nul + 1;
  }
  const std::string exe = mpi_executable();
  if (args.empty()) args.push_back(exe);
  args[0] = exe;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(nullptr);
  ::execv(exe.c_str(), argv.data());
  return "cannot start " + exe + " (the mpi backend lives there): " + std::strerror(errno);
}

}  // namespace

void register_mpi_backend() {
  register_worker_entry("mpi", [](const BackendOptions&) -> std::optional<int> {
    std::fprintf(stderr, "sluice: %s\n", exec_mpi_binary().c_str());
    return 3;
  });
  register_backend(
      "mpi",
      [](const BackendOptions&) -> Expected<std::unique_ptr<Backend>> {
        return make_error(ErrorCode::kBackend, exec_mpi_binary());
      },
      mpi_option_table());
}

}  // namespace sluice
