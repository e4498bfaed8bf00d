// An SDK program whose tasks misbehave, for tests: `segv` dereferences null, `abort`
// aborts, `throws` throws; `fine` (which writes to its log) and `after_fine` succeed.
#include <csignal>
#include <cstdlib>
#include <sluice/sdk.hpp>
#include <stdexcept>

int fine(int x) {
  sluice::log() << "fine got " << x << '\n';
  return x * 2;
}
int after_fine(int x) { return x + 1; }
int segv(int x) {
  volatile int* p = nullptr;
  if (x >= 0) std::raise(SIGSEGV);
  return *p;
}
int do_abort(int) { std::abort(); }
int throws(int) { throw std::runtime_error("this task always fails"); }

int main(int argc, char** argv) {
  auto fine_t = sluice::task("fine", "1", &fine);
  auto after_t = sluice::task("after_fine", "1", &after_fine);
  auto segv_t = sluice::task("segv", "1", &segv);
  auto abort_t = sluice::task("abort", "1", &do_abort);
  auto throws_t = sluice::task("throws", "1", &throws);
  sluice::Flow flow("crash", "tests");
  flow.call(after_t, flow.call(fine_t, 20));
  const char* only = std::getenv("CRASH_APP_SAFE");  // in-process runs skip the crashes
  if (!only) {
    flow.call(segv_t, 1);
    flow.call(abort_t, 1);
  }
  flow.call(sluice::opts{.retries = 1}, throws_t, 1);
  return sluice::main(argc, argv, flow);
}
