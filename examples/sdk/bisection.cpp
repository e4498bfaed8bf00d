// Adaptive bisection as an orchestration: each round evaluates 4 points of the current
// interval in parallel, keeps the fifth where f changes sign, and decides the next round
// from the values it awaited. 20 rounds narrow [0, 1] by 5^20.
//
//   ./bisection run --backend local       prints  bisect.return = 0.682328
//   kill -9 the coordinator, then  ./bisection resume RUN : no finished evaluation reruns
//
// SLUICE_EXAMPLE_CALL_LOG=FILE makes every evaluation append "TASK ATTEMPT x" to FILE
// (the crash tests count reruns with it); SLUICE_EXAMPLE_SLEEP_MS=N makes each take N ms longer.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sluice/sdk.hpp>
#include <string>
#include <thread>
#include <vector>

// The "simulation": one expensive evaluation of f(x) = x^3 + x - 1 (root ~0.6823278).
double evaluate(sluice::TaskContext& ctx, double x) {
  if (const char* ms = std::getenv("SLUICE_EXAMPLE_SLEEP_MS"))
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(ms)));
  if (const char* log = std::getenv("SLUICE_EXAMPLE_CALL_LOG")) {
    const int fd = ::open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      char line[256];
      const int n = std::snprintf(line, sizeof line, "%s %u %.17g\n", ctx.task.c_str(),
                                  static_cast<unsigned>(ctx.attempt), x);
      (void)!::write(fd, line, static_cast<std::size_t>(n));
      ::close(fd);
    }
  }
  return x * x * x + x - 1;
}
const auto evaluate_t = sluice::task("evaluate", "1", &evaluate);

sluice::Orchestration<double> bisect(sluice::Context& ctx, double lo, double hi, int rounds) {
  for (int round = 0; round < rounds; ++round) {
    std::vector<double> xs{lo};
    std::vector<sluice::Call<double>> calls;
    for (int i = 1; i <= 4; ++i) {
      xs.push_back(lo + i * (hi - lo) / 5);
      calls.push_back(ctx.call(evaluate_t, xs.back()));
    }
    xs.push_back(hi);
    std::vector<double> f = co_await ctx.all(std::move(calls));
    // The sign changes in the first fifth whose right end is >= 0 (f increases).
    std::size_t i = 0;
    while (i < f.size() && f[i] < 0) ++i;
    lo = xs[i];
    hi = xs[i + 1];
  }
  co_return (lo + hi) / 2;
}

int main(int argc, char** argv) {
  auto o = sluice::orchestration("bisect", "examples",
                                 [](sluice::Context& ctx) { return bisect(ctx, 0.0, 1.0, 20); });
  return sluice::main(argc, argv, o);
}
