// Backend options as strings (configuration files, -O, RUN_DIR/backend.json) and as
// BackendOptions, both ways, and their check against the backend's options table.
#include <sstream>

#include "sluice/config.hpp"
#include "sluice/engine/backend_options.hpp"
#include "sluice/engine/backend_registry.hpp"

namespace sluice {

Expected<BackendOptions> parse_backend_options(const std::map<std::string, std::string>& options) {
  BackendOptions o;
  for (const auto& [k, v] : options) {
    if (k == "cpus" || k == "gpus") {
      auto n = parse_option_int(v);
      if (!n || *n < (k == "gpus" ? -1 : 0) || *n > (1 << 20))
        return make_error(ErrorCode::kInvalidInput, k + " must be a number, not '" + v + "'");
      (k == "cpus" ? o.cpus : o.gpus) = static_cast<int>(*n);
    } else if (k == "executors") {
      std::stringstream ss(v);
      for (std::string label; std::getline(ss, label, ',');)
        if (!label.empty()) o.executors.push_back(label);
    } else {
      o.extra[k] = v;
    }
  }
  return o;
}

std::map<std::string, std::string> option_strings(const BackendOptions& options) {
  std::map<std::string, std::string> out(options.extra.begin(), options.extra.end());
  if (options.cpus > 0) out["cpus"] = std::to_string(options.cpus);
  if (options.gpus >= 0) out["gpus"] = std::to_string(options.gpus);
  if (!options.executors.empty()) {
    std::string joined;
    for (const auto& e : options.executors) joined += (joined.empty() ? "" : ",") + e;
    out["executors"] = joined;
  }
  return out;
}

Expected<BackendOptions> Config::backend_options() const {
  auto in_config = [&](const Error& e) {
    return make_error(e.code, "configuration '" + name + "': " + e.message);
  };
  // A backend this program does not have is reported when it is created.
  if (auto known = backend_option_table(backend))
    if (auto checked = check_options(backend, *known, options); !checked)
      return in_config(checked.error());
  auto parsed = parse_backend_options(options);
  if (!parsed) return in_config(parsed.error());
  return parsed;
}

}  // namespace sluice
