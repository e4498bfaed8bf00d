// Workflows calling workflows. `statistics` is a sub-workflow (its tasks appear as
// statistics.*, statistics.1.* in `sluice get`); `tree_sum` calls itself, splitting a
// range until it is small, so the graph is a tree of nested sub-workflows.
//
//   ./nested run && ./nested get <RUN>
#include <sluice/sdk.hpp>
#include <vector>

std::vector<double> numbers(int from, int to) {
  std::vector<double> xs;
  for (int i = from; i < to; ++i) xs.push_back(i);
  return xs;
}
double sum(const std::vector<double>& xs) {
  double s = 0;
  for (double x : xs) s += x;
  return s;
}
double add(double a, double b) { return a + b; }
double mean(double total, int n) { return total / n; }

static auto numbers_t = sluice::task("numbers", "1", &numbers);
static auto sum_t = sluice::task("sum", "1", &sum);
static auto add_t = sluice::task("add", "1", &add);
static auto mean_t = sluice::task("mean", "1", &mean);

// sum(from..to-1), as a tree of sub-workflows.
struct TreeSum {
  sluice::Future<double> operator()(sluice::Flow& f, int from, int to) const {
    if (to - from <= 4) return f.call(sum_t, f.call(numbers_t, from, to));
    const int mid = (from + to) / 2;
    auto self = sluice::workflow("tree_sum", *this);
    return f.call(add_t, f.call(self, from, mid), f.call(self, mid, to));
  }
};

int main(int argc, char** argv) {
  auto statistics = sluice::workflow("statistics", [](sluice::Flow& f, int from, int to) {
    return f.call(mean_t, f.call(sum_t, f.call(numbers_t, from, to)), to - from);
  });
  sluice::Flow flow("nested", "examples");
  auto low = flow.call(statistics, 0, 10);
  auto high = flow.call(statistics, 100, 110);
  flow.call(sluice::opts{.name = "means"}, add_t, low, high);
  flow.call(sluice::workflow("tree_sum", TreeSum{}), 0, 16);
  return sluice::main(argc, argv, flow);
}
