#include "run_backend.hpp"

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

namespace sluice::cli {

bool save_run_backend(const std::string& run_dir, const RunBackend& saved) {
  nlohmann::json opts = nlohmann::json::object();
  for (const auto& [k, v] : saved.options) opts[k] = v;
  nlohmann::json j{{"backend", saved.backend}, {"options", opts}};
  if (!saved.detail.empty()) j["detail"] = saved.detail;
  const std::string path = run_dir + "/backend.json";
  {
    std::ofstream out(path + ".tmp", std::ios::trunc);
    out << j.dump(1) << '\n';
    if (!out.flush()) return false;
  }
  return std::rename((path + ".tmp").c_str(), path.c_str()) == 0;
}

bool save_run_backend(const std::string& run_dir, const std::string& backend,
                      const BackendOptions& options, const std::string& detail) {
  return save_run_backend(run_dir, RunBackend{backend, option_strings(options), detail});
}

std::optional<RunBackend> load_run_backend(const std::string& run_dir) {
  std::ifstream in(run_dir + "/backend.json");
  if (!in) return std::nullopt;
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("backend") || !j["backend"].is_string())
    return std::nullopt;
  RunBackend r;
  r.backend = j["backend"].get<std::string>();
  const nlohmann::json options = j.value("options", nlohmann::json::object());
  for (const auto& [k, v] : options.items())
    if (v.is_string()) r.options[k] = v.get<std::string>();
  if (auto d = j.find("detail"); d != j.end() && d->is_string()) r.detail = d->get<std::string>();
  return r;
}

void mark_prepared(const std::string& run_dir) {
  std::ofstream(run_dir + "/prepared") << "prepared: `APP start RUN` executes it\n";
}

bool is_prepared(const std::string& run_dir) {
  return static_cast<bool>(std::ifstream(run_dir + "/prepared"));
}

}  // namespace sluice::cli
