// Which SlurmDriver talks to the cluster, and why: libslurm only when the controller
// runs the release this sluice was built for, the command-line tools otherwise. The
// reason is one line for `sluice doctor`, `sluice run --verbose` and the run's record
// (RUN_DIR/backend.json), so that a slow or failing run on a site's newer Slurm is
// explained rather than guessed at.
//
// The controller's version comes from `scontrol show config` (SLURM_VERSION), the site's
// own tool: asking through a libslurm of another release is what must be avoided.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "sluice/error.hpp"
#include "slurm_driver.hpp"
#include "slurm_version.hpp"

namespace sluice::slurm {

// What the choice depends on.
struct DriverFacts {
  std::string requested = "auto";  // the `driver` option: auto, libslurm or cli
  LibslurmInfo libslurm;
  std::optional<SlurmVersion> controller;  // nullopt: unknown, see controller_error
  std::string controller_error;
};

struct DriverChoice {
  std::string driver;  // "libslurm" or "cli"
  std::string reason;  // one line: "the controller runs Slurm 24.11.1; this sluice was ..."
};

// The rule, as a pure function. auto: libslurm when it is loaded, of the release it was
// built for, and the controller runs that release too; cli in every other case, with
// the reason. cli: cli. libslurm: libslurm when auto would choose it; otherwise kInvalidInput
// naming the mismatch (a driver that was asked for by name is never swapped silently).
Expected<DriverChoice> choose_driver(const DriverFacts& facts);

// The facts on this machine: libslurm_info(), and for auto and libslurm the controller's
// version from `scontrol show config` (one try, at most `policy.timeout`).
DriverFacts probe_driver_facts(std::string_view requested, const CommandPolicy& policy);

struct ChosenDriver {
  std::unique_ptr<SlurmDriver> driver;
  DriverChoice choice;
};

// probe_driver_facts() and choose_driver(), and the driver made. Errors: a bad `requested`
// or an explicit libslurm that cannot be used (kInvalidInput).
Expected<ChosenDriver> make_driver(std::string_view requested, const CommandPolicy& policy);

}  // namespace sluice::slurm
