// Whether the test Slurm cluster (scripts/slurm-up.sh) takes jobs, and REQUIRE_SLURM(),
// which skips a test without one (SLUICE-SKIP) or fails it under CI=true, where the
// cluster is part of the environment.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#include "support/skip.hpp"

namespace sluice::testing {

// The stdout of `sh -c CMD` (its exit status is not looked at).
inline std::string shell_output(const std::string& cmd) {
  std::string out;
  if (std::FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ::pclose(p);
  }
  return out;
}

// Up: some node takes jobs (idle, mixed, allocated, completing, ...), not only down,
// drained, failed or not responding ones. Asked once per test process.
// SLUICE_TEST_NO_SLURM=1 makes the cluster look absent (to see the skip path).
inline bool cluster_up() {
  static const bool up = [] {
    if (const char* no = std::getenv("SLUICE_TEST_NO_SLURM"); no && std::string(no) == "1")
      return false;
    std::istringstream states(shell_output("sinfo -h -N -o %T 2>/dev/null"));
    for (std::string st; std::getline(states, st);) {
      const bool bad =
          st.find("down") != std::string::npos || st.find("drain") != std::string::npos ||
          st.find("fail") != std::string::npos || st.find("unk") != std::string::npos ||
          st.find("inval") != std::string::npos || st.find("maint") != std::string::npos ||
          st.find('*') != std::string::npos;
      if (!st.empty() && !bad) return true;
    }
    return false;
  }();
  return up;
}

}  // namespace sluice::testing

// Leaves the test as skipped when no cluster is up; fails it under CI=true.
#define REQUIRE_SLURM()                                                            \
  do {                                                                             \
    if (!::sluice::testing::cluster_up()) {                                        \
      if (::sluice::testing::in_ci())                                              \
        FAIL("CI=true but no Slurm cluster is up (run scripts/slurm-up.sh)");      \
      SLUICE_SKIP("no Slurm cluster is up (sudo scripts/slurm-up.sh starts one)"); \
    }                                                                              \
  } while (0)
