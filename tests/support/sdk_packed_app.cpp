// An SDK program of PACKED_N (default 10,000) function tasks that each return a value
// (triple(i) = 3 i), plus two dependents: plus_one(triple(7)) reads one parent's value,
// sum(gather of the first 100) reads many. Its runs show where returned values go.
#include <cstdlib>
#include <sluice/sdk.hpp>
#include <vector>

std::int64_t triple(std::int64_t i) {
  return 3 * i;
}
std::int64_t plus_one(std::int64_t x) {
  return x + 1;
}
std::int64_t sum(std::vector<std::int64_t> xs) {
  std::int64_t s = 0;
  for (auto x : xs) s += x;
  return s;
}

int main(int argc, char** argv) {
  const char* n_env = std::getenv("PACKED_N");
  const std::int64_t n = n_env ? std::atoll(n_env) : 10000;
  auto triple_t = sluice::task("triple", "1", &triple);
  auto plus_one_t = sluice::task("plus_one", "1", &plus_one);
  auto sum_t = sluice::task("sum", "1", &sum);
  sluice::Flow flow("packed", "tests");
  std::vector<sluice::Future<std::int64_t>> first;
  for (std::int64_t i = 0; i < n; ++i) {
    auto f = flow.call(triple_t, i);
    if (i < 100) first.push_back(f);
    if (i == 7) flow.call(plus_one_t, f);
  }
  flow.call(sum_t, flow.gather(first));
  return sluice::main(argc, argv, flow);
}
