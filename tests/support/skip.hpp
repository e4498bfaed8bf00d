// The one way a test says it cannot run here (no Slurm cluster, no GPU, not root, no
// mpirun, no Chromium): every test tier's ctest properties carry
// SKIP_REGULAR_EXPRESSION "SLUICE-SKIP:", so the test is reported as skipped, never as
// passed. Catch2 v2 has no SKIP of its own.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

namespace sluice::testing {

// Prints "SLUICE-SKIP: why" on its own line, where ctest looks for it.
inline void print_skip(const std::string& why) {
  std::printf("SLUICE-SKIP: %s\n", why.c_str());
  std::fflush(stdout);
}

// True when CI=true (or 1): there a missing service is a failure, not a skip.
inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && (std::string(ci) == "true" || std::string(ci) == "1");
}

}  // namespace sluice::testing

// Reports the current test case as skipped, with the reason, and leaves it. Use it in
// the TEST_CASE's own body (it returns from the enclosing function), before any check.
#define SLUICE_SKIP(why)                \
  do {                                  \
    ::sluice::testing::print_skip(why); \
    return;                             \
  } while (0)
