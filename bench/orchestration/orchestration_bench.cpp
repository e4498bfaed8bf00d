// A sequential chain of N calls of a no-op function on inproc, as an orchestration
// (each call awaited before the next is made) or as a static Flow (each task a
// dependent of the previous). ORCH_BENCH_SHAPE=orch|flow, ORCH_BENCH_N=N (default 1000).
// bench/orchestration_bench.sh runs both and prints the cost per awaited call.
#include <cstdlib>
#include <sluice/sdk.hpp>
#include <string>

long inc(long x) {
  return x + 1;
}
const auto inc_t = sluice::task("inc", "1", &inc);

sluice::Orchestration<long> chain(sluice::Context& ctx, long n) {
  long x = 0;
  for (long i = 0; i < n; ++i) x = co_await ctx.call(inc_t, x);
  co_return x;
}

int main(int argc, char** argv) {
  const char* n_env = std::getenv("ORCH_BENCH_N");
  const long n = n_env ? std::atol(n_env) : 1000;
  const char* shape = std::getenv("ORCH_BENCH_SHAPE");
  if (shape && std::string(shape) == "flow") {
    sluice::Flow flow("chain_flow", "bench");
    auto f = flow.call(inc_t, 0L);
    for (long i = 1; i < n; ++i) f = flow.call(inc_t, f);
    return sluice::main(argc, argv, flow);
  }
  auto o = sluice::orchestration("chain_orch", "bench",
                                 [n](sluice::Context& ctx) { return chain(ctx, n); });
  return sluice::main(argc, argv, o);
}
