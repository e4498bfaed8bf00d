// What this machine offers Sluice, as `sluice doctor` reports it: cores, memory and the
// versions of the libraries built into this binary. Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <string>

namespace sluice {

struct HostInfo {
  std::string hostname;
  int usable_cpus = 1;  // this process's affinity mask (what a Slurm step or taskset allows)
  int online_cpus = 1;  // every online CPU of the machine
  std::uint64_t memory_total_bytes = 0;      // 0 when unknown
  std::uint64_t memory_available_bytes = 0;  // MemAvailable from /proc/meminfo; 0 when unknown
};

// Reads the facts above from the operating system; fields it cannot read keep defaults.
HostInfo probe_host();

// The pieces every component needs on its own (the coordinator's host column, a
// backend's default slots, the binary that jobs and workers run):
// This machine's name (gethostname); "localhost" when it cannot be read.
std::string host_name();
// Who starts a run from this process, as "user@host": the effective user's login name
// ($USER, else the uid) and, inside a Slurm job, the host it was submitted from
// ($SLURM_SUBMIT_HOST: `sluice sbatch` makes its run on a compute node for the user at a
// login node), else this machine.
std::string initiator();
// The CPUs this process may run on: its affinity mask, which a Slurm step or `taskset`
// restricts; every online CPU when the mask cannot be read; at least 1.
int usable_cpus();
// The running executable's absolute path (/proc/self/exe); "" when it cannot be read.
std::string self_executable();
// The directory of self_executable() ("/" for a binary at the root); "" when unknown.
std::string self_directory();

// The version of the HDF5 library linked into Sluice ("1.10.8"), from H5get_libversion.
std::string hdf5_library_version();

}  // namespace sluice
