#include "driver_choice.hpp"

#include <algorithm>

#include "sluice/engine/capture.hpp"

namespace sluice::slurm {

Expected<DriverChoice> choose_driver(const DriverFacts& f) {
  if (f.requested == "cli") return DriverChoice{"cli", "driver=cli was asked for"};
  if (f.requested != "auto" && f.requested != "libslurm")
    return make_error(ErrorCode::kInvalidInput,
                      "slurm driver '" + f.requested + "': use auto, libslurm or cli");
  const LibslurmInfo& lib = f.libslurm;
  std::string why_not;  // empty: libslurm fits
  if (!lib.built_for) {
    why_not = lib.error.empty() ? "this sluice was built without libslurm" : lib.error;
  } else if (!lib.loaded) {
    why_not = "libslurm for Slurm " + lib.built_for->release() + " cannot be opened here (" +
              lib.error + ")";
  } else if (!lib.loaded->same_release(*lib.built_for)) {
    why_not = "the libslurm opened here is Slurm " + lib.loaded->str() +
              " but this sluice was built for " + lib.built_for->release();
  } else if (!f.controller) {
    why_not = "the controller's Slurm version is unknown (" +
              (f.controller_error.empty() ? std::string("scontrol show config has no SLURM_VERSION")
                                          : f.controller_error) +
              ")";
  } else if (!f.controller->same_release(*lib.built_for)) {
    why_not = "the controller runs Slurm " + f.controller->str() +
              " but this sluice was built for " + lib.built_for->release() +
              " (libslurm's API changes with every release)";
  }
  if (why_not.empty())
    return DriverChoice{"libslurm", "the controller runs Slurm " + f.controller->str() +
                                        ", the release this sluice's libslurm was built for"};
  if (f.requested == "libslurm")
    return make_error(ErrorCode::kInvalidInput,
                      "driver=libslurm: " + why_not + "; use driver=cli or auto");
  return DriverChoice{"cli", why_not};
}

DriverFacts probe_driver_facts(std::string_view requested, const CommandPolicy& policy) {
  DriverFacts f;
  f.requested = std::string(requested);
  if (requested == "cli") return f;
  f.libslurm = libslurm_info();
  if (!f.libslurm.loaded) return f;  // no use asking: cli whatever the controller runs
  CommandOptions options;
  options.timeout = std::min(policy.timeout, std::chrono::milliseconds(10'000));
  auto r = run_command({"scontrol", "show", "config"}, options);
  if (!r) {
    f.controller_error = r.error().message;
  } else if (!r->ok()) {
    f.controller_error = describe_outcome({"scontrol", "show", "config"}, *r, options.timeout);
  } else {
    f.controller = controller_version_from_config(r->out);
    if (!f.controller) f.controller_error = "scontrol show config printed no SLURM_VERSION";
  }
  return f;
}

Expected<ChosenDriver> make_driver(std::string_view requested, const CommandPolicy& policy) {
  auto choice = choose_driver(probe_driver_facts(requested, policy));
  if (!choice) return tl::unexpected(choice.error());
  ChosenDriver out;
  out.choice = std::move(*choice);
  out.driver = out.choice.driver == "libslurm" ? make_libslurm_driver(policy) : nullptr;
  if (!out.driver) out.driver = make_cli_driver(policy);
  return out;
}

}  // namespace sluice::slurm
