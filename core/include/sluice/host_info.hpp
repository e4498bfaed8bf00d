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

// The version of the HDF5 library linked into Sluice ("1.10.8"), from H5get_libversion.
std::string hdf5_library_version();

}  // namespace sluice
