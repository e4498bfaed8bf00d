// The CUDA runtime probe behind detect_gpus(). Defined in gpus_cuda.cpp, which is built
// (and linked against the static CUDA runtime) only with SLUICE_WITH_CUDA.
#pragma once

#include <string>
#include <vector>

#include "sluice/engine/gpus.hpp"

namespace sluice::detail {

// The devices the CUDA runtime sees (ids "0", "1", … in its order). Any CUDA error
// (no driver, stub driver, no device) gives none and puts the reason into `why`.
std::vector<GpuDevice> cuda_runtime_devices(std::string& why);

}  // namespace sluice::detail
