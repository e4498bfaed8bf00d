// Active learning as an orchestration: label a batch of points, refit, and go on until
// the model is good enough; how many batches that takes is only known as it goes. The
// batch points come from ctx.random(), which a resumed run replays from its record.
//
//   ./active_learning run      prints  learn.return = map{...} with the threshold found
//
// The "oracle" (an expensive labelling: a simulation, a human) says whether x is above
// an unknown threshold; the model is the interval the threshold is known to lie in.
#include <cstdint>
#include <map>
#include <random>
#include <sluice/sdk.hpp>
#include <string>
#include <vector>

constexpr double kHidden = 0.3712;

int label(double x) {
  return x >= kHidden ? 1 : 0;
}
const auto label_t = sluice::task("label", "1", &label);

// Refit: the narrowest interval consistent with every label so far.
std::vector<double> fit(std::vector<double> xs, std::vector<int> ys) {
  double lo = 0, hi = 1;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    if (ys[i] && xs[i] < hi) hi = xs[i];
    if (!ys[i] && xs[i] > lo) lo = xs[i];
  }
  return {lo, hi};
}
const auto fit_t = sluice::task("fit", "1", &fit);

sluice::Orchestration<std::map<std::string, double>> learn(sluice::Context& ctx, double target,
                                                           int batch) {
  std::mt19937_64 rng(ctx.random());  // replay-safe: recorded on the first run
  std::vector<double> xs;
  std::vector<int> ys;
  double lo = 0, hi = 1;
  int batches = 0;
  while (hi - lo > target) {
    std::uniform_real_distribution<double> pick(lo, hi);
    std::vector<sluice::Call<int>> calls;
    for (int i = 0; i < batch; ++i) {
      xs.push_back(pick(rng));
      calls.push_back(ctx.call(label_t, xs.back()));
    }
    for (int y : co_await ctx.all(std::move(calls))) ys.push_back(y);
    const std::vector<double> model = co_await ctx.call(fit_t, xs, ys);
    lo = model[0];
    hi = model[1];
    ++batches;
  }
  co_return std::map<std::string, double>{
      {"threshold", (lo + hi) / 2}, {"batches", batches}, {"labels", double(xs.size())}};
}

int main(int argc, char** argv) {
  auto o = sluice::orchestration("learn", "examples",
                                 [](sluice::Context& ctx) { return learn(ctx, 1e-3, 4); });
  return sluice::main(argc, argv, o);
}
