#include "worker_share.hpp"

#include <algorithm>

extern char** environ;

namespace sluice::worker {
namespace {

bool is_named(std::string_view entry, std::string_view name) {
  return entry.size() > name.size() && entry.starts_with(name) && entry[name.size()] == '=';
}

}  // namespace

int cpu_share(int explicit_cpus, int offered, int workers, bool bound) {
  if (explicit_cpus > 0) return explicit_cpus;
  if (bound) return std::max(1, offered);
  return std::max(1, offered / std::max(1, workers));
}

std::vector<std::string> gpu_block(const std::vector<std::string>& node, int workers, int index) {
  const int m = std::max(1, workers);
  const int i = std::clamp(index, 0, m - 1);
  const int n = static_cast<int>(node.size());
  const int chunk = n / m, extra = n % m;
  const int first = i * chunk + std::min(i, extra);
  const int count = chunk + (i < extra ? 1 : 0);
  return std::vector<std::string>(node.begin() + first, node.begin() + first + count);
}

std::vector<std::string> process_environment() {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) env.emplace_back(*e);
  return env;
}

void drop_variables(std::vector<std::string>& env, std::span<const std::string_view> prefixes) {
  std::erase_if(env, [&](const std::string& entry) {
    return std::any_of(prefixes.begin(), prefixes.end(),
                       [&](std::string_view p) { return entry.starts_with(p); });
  });
}

void narrow_gpus(std::vector<std::string>& env, const std::vector<std::string>& block,
                 bool node_has_gpus) {
  std::erase_if(env, [&](const std::string& entry) {
    return is_named(entry, "SLUICE_GPUS") ||
           (node_has_gpus && is_named(entry, "CUDA_VISIBLE_DEVICES"));
  });
  if (!node_has_gpus) return;
  std::string cvd = "CUDA_VISIBLE_DEVICES=";
  for (std::size_t i = 0; i < block.size(); ++i) cvd += (i ? "," : "") + block[i];
  env.push_back(std::move(cvd));
}

}  // namespace sluice::worker
