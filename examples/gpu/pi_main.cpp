// A GPU task of the π sweep: estimates π with SAMPLES Monte-Carlo points on the GPU
// that Sluice gave it (CUDA_VISIBLE_DEVICES), and writes the estimate and its timing
// into the task's artifact ($SLUICE_OUTPUT) with the HDF5 C API:
//   pi (float64), samples (int64), hits (int64), kernel_ms (float64),
//   seconds (float64, wall time of the whole program), device (string).
// Without a usable GPU it exits 3 with "no CUDA device: …" on stderr.
#include <hdf5.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "pi_kernel.hpp"

namespace {

bool put_scalar(hid_t file, const char* name, hid_t file_type, hid_t mem_type, const void* v) {
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t ds = H5Dcreate2(file, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  const bool ok = ds >= 0 && H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0;
  if (ds >= 0) H5Dclose(ds);
  H5Sclose(space);
  return ok;
}

bool put_string(hid_t file, const char* name, const std::string& s) {
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, s.empty() ? 1 : s.size());
  const bool ok = put_scalar(file, name, type, type, s.c_str());
  H5Tclose(type);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  const auto t0 = std::chrono::steady_clock::now();
  const char* out = std::getenv("SLUICE_OUTPUT");
  if (argc < 2 || out == nullptr) {
    std::fprintf(stderr, "usage: SLUICE_OUTPUT=FILE sluice-gpu-pi SAMPLES [SEED]\n");
    return 2;
  }
  const std::uint64_t samples = std::strtoull(argv[1], nullptr, 10);
  const std::uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1;

  const char* cvd = std::getenv("CUDA_VISIBLE_DEVICES");
  std::string why;
  if (!gpu_available(why)) {
    std::fprintf(stderr, "sluice-gpu-pi: no CUDA device: %s (CUDA_VISIBLE_DEVICES=%s)\n",
                 why.c_str(), cvd ? cvd : "unset");
    return 3;
  }
  PiResult r;
  if (!estimate_pi(samples, seed, r, why)) {
    std::fprintf(stderr, "sluice-gpu-pi: CUDA failed: %s\n", why.c_str());
    return 1;
  }
  const double pi = 4.0 * static_cast<double>(r.hits) / static_cast<double>(r.samples);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto n = static_cast<long long>(r.samples), hits = static_cast<long long>(r.hits);

  hid_t file = H5Fcreate(out, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  bool ok = file >= 0;
  ok = ok && put_scalar(file, "pi", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &pi);
  ok = ok && put_scalar(file, "samples", H5T_STD_I64LE, H5T_NATIVE_LLONG, &n);
  ok = ok && put_scalar(file, "hits", H5T_STD_I64LE, H5T_NATIVE_LLONG, &hits);
  ok = ok && put_scalar(file, "kernel_ms", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &r.kernel_ms);
  ok = ok && put_scalar(file, "seconds", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &seconds);
  ok = ok && put_string(file, "device", r.device);
  if (file >= 0 && H5Fclose(file) < 0) ok = false;
  if (!ok) {
    std::fprintf(stderr, "sluice-gpu-pi: cannot write %s\n", out);
    return 1;
  }
  std::printf("pi ~ %.8f from %lld samples on %s (CUDA_VISIBLE_DEVICES=%s), kernel %.3f ms\n", pi,
              n, r.device.c_str(), cvd ? cvd : "unset", r.kernel_ms);
  return 0;
}
