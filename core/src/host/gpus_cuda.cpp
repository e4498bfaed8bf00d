// The CUDA runtime probe. The runtime is loaded with dlopen when first asked, never
// linked: every `sluice` process (one per `sluice put` in a task) would otherwise pay
// for the static runtime's start-up, and a node without CUDA could not start a
// dynamically linked one. The toolkit's header gives the types and the version; the
// library found at run time must be of the same major version (its soname).
#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <cstdio>
#include <mutex>

#include "host/gpus_internal.hpp"

#define SLUICE_STRINGIFY2(x) #x
#define SLUICE_STRINGIFY(x) SLUICE_STRINGIFY2(x)

namespace sluice::detail {
namespace {

// The runtime's entry points, resolved once per process; never unloaded (the runtime
// does not support being unloaded while it holds driver state).
struct Cudart {
  decltype(&::cudaGetDeviceCount) get_device_count = nullptr;
  decltype(&::cudaGetDeviceProperties) get_device_properties = nullptr;
  decltype(&::cudaGetErrorString) get_error_string = nullptr;
  std::string load_error;  // set when the library or a symbol is missing
};

const Cudart& cudart() {
  static Cudart api;
  static std::once_flag once;
  std::call_once(once, [] {
    const std::string soname = "libcudart.so." + std::to_string(CUDART_VERSION / 1000);
    void* lib = ::dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
#ifdef SLUICE_CUDART_PATH
    // The toolkit this was built with, for nodes where it is not on the loader's path.
    if (lib == nullptr) lib = ::dlopen(SLUICE_CUDART_PATH, RTLD_NOW | RTLD_LOCAL);
#endif
    if (lib == nullptr) {
      api.load_error =
          soname + " not found (install the CUDA runtime or add it to LD_LIBRARY_PATH)";
      return;
    }
    // Names as the header spells them (macros in some CUDA versions add _v2).
    api.get_device_count = reinterpret_cast<decltype(api.get_device_count)>(
        ::dlsym(lib, SLUICE_STRINGIFY(cudaGetDeviceCount)));
    api.get_device_properties = reinterpret_cast<decltype(api.get_device_properties)>(
        ::dlsym(lib, SLUICE_STRINGIFY(cudaGetDeviceProperties)));
    api.get_error_string = reinterpret_cast<decltype(api.get_error_string)>(
        ::dlsym(lib, SLUICE_STRINGIFY(cudaGetErrorString)));
    if (!api.get_device_count || !api.get_device_properties || !api.get_error_string)
      api.load_error = soname + " lacks the expected functions";
  });
  return api;
}

std::string format_uuid(const cudaUUID_t& u) {
  const auto* b = reinterpret_cast<const unsigned char*>(u.bytes);
  char buf[48];
  std::snprintf(buf, sizeof buf,
                "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
                b[14], b[15]);
  return buf;
}

}  // namespace

std::vector<GpuDevice> cuda_runtime_devices(std::string& why) {
  std::vector<GpuDevice> out;
  const Cudart& api = cudart();
  if (!api.load_error.empty()) {
    why = api.load_error;
    return out;
  }
  // Without a driver the runtime returns an error (35, 34) and may leave the count unset.
  int count = 0;
  if (cudaError_t e = api.get_device_count(&count); e != cudaSuccess) {
    why = std::string(api.get_error_string(e)) + " (CUDA error " + std::to_string(int(e)) + ")";
    return out;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaError_t e = api.get_device_properties(&prop, i); e != cudaSuccess) {
      why = "device " + std::to_string(i) + ": " + api.get_error_string(e);
      return {};
    }
    GpuDevice d;
    d.index = i;
    d.id = std::to_string(i);
    d.name = prop.name;
    d.memory_bytes = prop.totalGlobalMem;
    d.uuid = format_uuid(prop.uuid);
    out.push_back(std::move(d));
  }
  if (out.empty()) why = "no CUDA device";
  return out;
}

}  // namespace sluice::detail
