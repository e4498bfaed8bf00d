// GPU detection: which devices this process may hand out to tasks, and what they are.
// Backends turn the result into slots (the local backend puts one device id per GPU a
// task asks for into its CUDA_VISIBLE_DEVICES); `sluice doctor` prints it.
//
// Sources, first one that yields devices wins:
//   1. an explicit count: GpuDetectOptions::count (`--gpus N`, a configuration's
//      `gpus = N`), else the SLUICE_GPUS environment variable;
//   2. the CUDA runtime (only in builds with SLUICE_WITH_CUDA; any CUDA error, such as
//      no driver on this node, means no devices from this source);
//   3. `nvidia-smi -L`;
//   4. the environment a scheduler left: CUDA_VISIBLE_DEVICES, else Slurm's
//      GPU_DEVICE_ORDINAL, else SLURM_JOB_GPUS.
// When CUDA_VISIBLE_DEVICES is set, sources 2 and 3 keep only the devices it lists and
// each device's `id` is its entry there, so that a task given `id` in its own
// CUDA_VISIBLE_DEVICES sees the same physical device this process sees.
//
// Thread-safe (no shared state). Detection may take a few hundred milliseconds on a GPU
// node (driver start-up, nvidia-smi): call it once per backend, not per task.
//
// Usage:
//   GpuInventory inv = detect_gpus();
//   for (const GpuDevice& d : inv.devices) std::printf("%s %s\n", d.id.c_str(), d.name.c_str());
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

struct GpuDevice {
  int index = 0;                   // 0-based position in the inventory
  std::string id;                  // what a task gets in CUDA_VISIBLE_DEVICES: "0", "3", "GPU-…"
  std::string name;                // "NVIDIA H100 80GB HBM3"; empty when the source does not say
  std::uint64_t memory_bytes = 0;  // 0 when unknown
  std::string uuid;                // "GPU-8b1c…"; empty when unknown
};

enum class GpuSource {
  kNone,         // no source found a device
  kOverride,     // an explicit count (option or SLUICE_GPUS)
  kCudaRuntime,  // cudaGetDeviceCount / cudaGetDeviceProperties
  kNvidiaSmi,    // `nvidia-smi -L`
  kEnvironment,  // CUDA_VISIBLE_DEVICES, GPU_DEVICE_ORDINAL or SLURM_JOB_GPUS
};

std::string_view to_string(GpuSource source);

struct GpuInventory {
  GpuSource source = GpuSource::kNone;
  std::vector<GpuDevice> devices;
  // Why sources before the winning one found nothing, one line each ("CUDA runtime:
  // CUDA driver version is insufficient…", "nvidia-smi: not found on PATH").
  std::vector<std::string> notes;
};

struct GpuDetectOptions {
  int count = -1;  // >= 0: exactly this many devices, nothing is probed
  bool use_cuda_runtime = true;
  bool use_nvidia_smi = true;
  std::string nvidia_smi = "nvidia-smi";    // program name or path (tests use a fake)
  std::chrono::milliseconds timeout{5000};  // for nvidia-smi
};

// Runs the detection described above. Never fails: a source that errs is skipped (its
// reason goes to `notes`), and no source at all gives an empty inventory.
GpuInventory detect_gpus(const GpuDetectOptions& options = {});

// Devices for an explicit count (count >= 0): ids are the first `count` entries of
// CUDA_VISIBLE_DEVICES when it lists that many, else "0" … "count-1". No names.
std::vector<GpuDevice> gpus_for_count(int count);

// Parses the output of `nvidia-smi -L` ("GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-…)";
// MIG lines are skipped). Ids are the GPU numbers; memory is unknown (0).
std::vector<GpuDevice> parse_nvidia_smi_list(std::string_view text);

// Splits a device list such as CUDA_VISIBLE_DEVICES ("0,1", "GPU-…,GPU-…"); "" and
// "NoDevFiles" give none.
std::vector<std::string> parse_device_list(std::string_view text);

// The ids of `inventory`'s devices, in order.
std::vector<std::string> gpu_ids(const GpuInventory& inventory);

// "80 GiB", "512 MiB", "unknown" for 0.
std::string format_memory(std::uint64_t bytes);

}  // namespace sluice
