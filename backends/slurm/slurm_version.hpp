// Slurm versions as the tools print them, and the rule for when the libslurm this
// sluice was built against may drive a cluster. Pure functions over text, tested on what
// Slurm 20.11 to 24.11 print (tests/unit/slurm_version_test.cpp).
//
// libslurm's API and ABI change with every release (20.11, 21.08, ..., 24.11; the third
// number is a bug-fix release within one): a library built for one release can only be
// trusted with a controller of the same release.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sluice::slurm {

struct SlurmVersion {
  int major = 0;  // 24
  int minor = 0;  // 5 (printed "05")
  int micro = 0;  // bug-fix release, 1

  // "24.05.1"
  std::string str() const;
  // "24.05": what an API and ABI belong to.
  std::string release() const;
  bool same_release(const SlurmVersion& other) const {
    return major == other.major && minor == other.minor;
  }
};

// The first "MAJOR.MINOR[.MICRO]" in `text`: `sinfo --version` ("slurm 24.05.1",
// Debian's "slurm-wlm 22.05.8"), `scontrol --version`, a bare "23.11.4", with a suffix
// ("24.11.0-0rc1", "20.11.9-1ubuntu"). nullopt when there is none.
std::optional<SlurmVersion> parse_slurm_version(std::string_view text);

// The controller's version from `scontrol show config` (its "SLURM_VERSION = 23.11.4"
// line: the version slurmctld reports, not the client's). nullopt when absent.
std::optional<SlurmVersion> controller_version_from_config(std::string_view show_config);

// SLURM_VERSION_NUMBER / slurm_api_version(): (major << 16) + (minor << 8) + micro.
SlurmVersion version_from_number(long number);

}  // namespace sluice::slurm
