// What pi_main.cpp needs from the GPU, in plain C++ (no CUDA headers).
#pragma once

#include <cstdint>
#include <string>

struct PiResult {
  std::uint64_t samples = 0;  // points drawn (the request rounded up to fill the grid)
  std::uint64_t hits = 0;     // points inside the quarter circle
  double kernel_ms = 0;       // kernel time measured with CUDA events
  std::string device;         // the device's name
};

// True when the CUDA runtime sees at least one device; otherwise `why` says why not
// ("CUDA driver version is insufficient…" on a node without a driver).
bool gpu_available(std::string& why);

// Runs the Monte-Carlo kernel on the current device. False, with `why`, on a CUDA error.
bool estimate_pi(std::uint64_t samples, std::uint64_t seed, PiResult& out, std::string& why);
