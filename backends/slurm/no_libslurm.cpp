// Built instead of libslurm_driver.cpp when libslurm is not available.
#include "slurm_driver.hpp"

namespace sluice::slurm {

std::unique_ptr<SlurmDriver> make_libslurm_driver(const CommandPolicy&) {
  return nullptr;
}

LibslurmInfo libslurm_info() {
  LibslurmInfo info;
  info.error = "this sluice was built without libslurm";
  return info;
}

}  // namespace sluice::slurm
