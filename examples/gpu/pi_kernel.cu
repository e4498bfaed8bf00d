// The GPU half of the π example: a Monte-Carlo kernel and the small host functions
// pi_main.cpp calls (it is compiled by the host compiler and knows nothing of CUDA).
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "pi_kernel.hpp"

namespace {

// splitmix64: a tiny counter-based generator, good enough to scatter points.
__device__ std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

__device__ double unit(std::uint64_t& state) {
  return static_cast<double>(splitmix64(state) >> 11) * 0x1.0p-53;  // [0, 1)
}

// Each thread draws `per_thread` points in the unit square and counts those inside the
// quarter circle; a block sums its threads' counts in shared memory, then adds once.
__global__ void count_hits(std::uint64_t per_thread, std::uint64_t seed, unsigned long long* hits) {
  extern __shared__ unsigned long long block_hits[];
  const std::uint64_t tid = blockIdx.x * static_cast<std::uint64_t>(blockDim.x) + threadIdx.x;
  std::uint64_t state = seed ^ (tid * 0xd1b54a32d192ed03ull);
  unsigned long long mine = 0;
  for (std::uint64_t i = 0; i < per_thread; ++i) {
    const double x = unit(state), y = unit(state);
    mine += (x * x + y * y < 1.0) ? 1 : 0;
  }
  block_hits[threadIdx.x] = mine;
  __syncthreads();
  for (unsigned stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) block_hits[threadIdx.x] += block_hits[threadIdx.x + stride];
    __syncthreads();
  }
  if (threadIdx.x == 0) atomicAdd(hits, block_hits[0]);
}

std::string describe(cudaError_t e) {
  return std::string(cudaGetErrorString(e)) + " (CUDA error " + std::to_string(int(e)) + ")";
}

}  // namespace

bool gpu_available(std::string& why) {
  int count = 0;  // may stay unset when there is no driver
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    why = describe(e);
    return false;
  }
  if (count == 0) {
    why = "the runtime lists no device";
    return false;
  }
  return true;
}

bool estimate_pi(std::uint64_t samples, std::uint64_t seed, PiResult& out, std::string& why) {
  constexpr unsigned kThreads = 256, kBlocks = 1024;
  const std::uint64_t threads = std::uint64_t(kThreads) * kBlocks;
  const std::uint64_t per_thread = (samples + threads - 1) / threads;

  cudaDeviceProp prop{};
  int device = 0;
  unsigned long long* d_hits = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  cudaError_t e = cudaGetDevice(&device);
  if (e == cudaSuccess) e = cudaGetDeviceProperties(&prop, device);
  if (e == cudaSuccess) e = cudaMalloc(&d_hits, sizeof *d_hits);
  if (e == cudaSuccess) e = cudaMemset(d_hits, 0, sizeof *d_hits);
  if (e == cudaSuccess) e = cudaEventCreate(&start);
  if (e == cudaSuccess) e = cudaEventCreate(&stop);
  if (e == cudaSuccess) {
    cudaEventRecord(start);
    count_hits<<<kBlocks, kThreads, kThreads * sizeof(unsigned long long)>>>(per_thread, seed,
                                                                             d_hits);
    e = cudaGetLastError();
    cudaEventRecord(stop);
  }
  if (e == cudaSuccess) e = cudaEventSynchronize(stop);
  unsigned long long hits = 0;
  float ms = 0;
  if (e == cudaSuccess) e = cudaMemcpy(&hits, d_hits, sizeof hits, cudaMemcpyDeviceToHost);
  if (e == cudaSuccess) e = cudaEventElapsedTime(&ms, start, stop);
  if (start) cudaEventDestroy(start);
  if (stop) cudaEventDestroy(stop);
  if (d_hits) cudaFree(d_hits);
  if (e != cudaSuccess) {
    why = describe(e);
    return false;
  }
  out.samples = per_thread * threads;
  out.hits = hits;
  out.kernel_ms = ms;
  out.device = prop.name;
  return true;
}
