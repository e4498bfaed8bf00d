// The emulated multi-node cluster of `scripts/slurm-up.sh --nodes N` (emu1..emuN, one
// slurmd per node name on this host) and REQUIRE_SLURM_EMU(n), which points this test
// process and everything it starts (sluice, sbatch, srun, libslurm) at it through
// SLURM_CONF, or skips the test (SLUICE-SKIP) when fewer than n of its nodes are up:
// the emulated cluster is optional, even under CI=true.
#pragma once

#include <cstdlib>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/skip.hpp"
#include "support/slurm.hpp"

namespace sluice::testing {

// Its configuration: SLUICE_TEST_SLURM_EMU_CONF, else the one slurm_emu.sh writes.
inline std::string emu_conf() {
  const char* c = std::getenv("SLUICE_TEST_SLURM_EMU_CONF");
  return c && *c ? c : "/etc/slurm-emu/slurm.conf";
}

// Node names of `scontrol show hostnames LIST` ("emu[1-3]" -> emu1, emu2, emu3).
inline std::vector<std::string> expand_nodes(const std::string& list) {
  std::vector<std::string> out;
  std::istringstream in(shell_output("scontrol show hostnames '" + list + "' 2>/dev/null"));
  for (std::string n; std::getline(in, n);)
    if (!n.empty()) out.push_back(n);
  return out;
}

// The nodes of job `id` (its NodeList while Slurm still knows the job).
inline std::set<std::string> job_nodes(const std::string& id) {
  const std::string line = shell_output("scontrol show job " + id +
                                        " 2>/dev/null | tr ' ' '\\n' | sed -n 's/^NodeList=//p'");
  std::string list = line.substr(0, line.find('\n'));
  auto v = expand_nodes(list);
  return {v.begin(), v.end()};
}

// How many nodes of the emulated cluster take jobs (0 when it is not up). Sets
// SLURM_CONF for this process on its first call.
inline int emu_nodes_up() {
  static const int n = [] {
    const std::string conf = emu_conf();
    if (shell_output("test -r '" + conf + "' && echo yes").empty()) return 0;
    ::setenv("SLURM_CONF", conf.c_str(), 1);
    std::istringstream states(shell_output("sinfo -h -N -o '%N %T' 2>/dev/null"));
    std::set<std::string> up;
    for (std::string line; std::getline(states, line);) {
      std::istringstream f(line);
      std::string node, st;
      f >> node >> st;
      if (st == "idle" || st == "mixed" || st == "allocated" || st == "completing") up.insert(node);
    }
    return static_cast<int>(up.size());
  }();
  return n;
}

}  // namespace sluice::testing

// Leaves the test as skipped unless the emulated cluster has at least `n` nodes up.
#define REQUIRE_SLURM_EMU(n)                                                   \
  do {                                                                         \
    if (::sluice::testing::emu_nodes_up() < (n))                               \
      SLUICE_SKIP("the emulated cluster is not up with " + std::to_string(n) + \
                  " nodes (sudo scripts/slurm-up.sh --nodes 8; SLURM_CONF " +  \
                  ::sluice::testing::emu_conf() + ")");                        \
  } while (0)
