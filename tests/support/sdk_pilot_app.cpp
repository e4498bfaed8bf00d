// An SDK program for the pilot tests: every `whoami` task returns the pid of the process
// that called it, so a test can tell a function called inside a pilot worker from one
// started as a process of its own.
#include <unistd.h>

#include <cstdint>
#include <sluice/sdk.hpp>

std::int64_t whoami(int) {
  return static_cast<std::int64_t>(::getpid());
}

int main(int argc, char** argv) {
  auto whoami_t = sluice::task("whoami", "1", &whoami);
  sluice::Flow flow("pilot_pids", "tests");
  for (int i = 0; i < 6; ++i) flow.call(whoami_t, i);
  return sluice::main(argc, argv, flow);
}
