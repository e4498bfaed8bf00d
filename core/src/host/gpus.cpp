#include "sluice/engine/gpus.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>

#include "host/gpus_internal.hpp"
#include "sluice/engine/capture.hpp"

namespace sluice {
namespace {

constexpr long long kMaxGpus = 4096;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// A non-negative count, or -1 when malformed.
long long parse_count(std::string_view s) {
  s = trim(s);
  long long value = -1;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || value < 0) return -1;
  return value;
}

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

// CUDA_VISIBLE_DEVICES when set (possibly to nothing), else nullptr.
const char* cuda_visible_devices() {
  return std::getenv("CUDA_VISIBLE_DEVICES");
}

// Keeps the devices CUDA_VISIBLE_DEVICES names (by number or UUID), in its order, with
// ids taken from it. `by_position`: the list is already filtered by the runtime (CUDA
// enumerates exactly the visible devices, in that order).
std::vector<GpuDevice> restrict_to_visible(std::vector<GpuDevice> devices, bool by_position) {
  const char* cvd = cuda_visible_devices();
  if (cvd == nullptr) return devices;
  const std::vector<std::string> visible = parse_device_list(cvd);
  std::vector<GpuDevice> out;
  if (by_position) {
    for (std::size_t i = 0; i < devices.size() && i < visible.size(); ++i) {
      devices[i].id = visible[i];
      out.push_back(std::move(devices[i]));
    }
  } else {
    for (const std::string& v : visible) {
      for (const GpuDevice& d : devices) {
        const bool uuid_match = !d.uuid.empty() && v.size() >= 8 && d.uuid.starts_with(v);
        if (v == d.id || uuid_match) {
          out.push_back(d);
          out.back().id = v;
          break;
        }
      }
    }
  }
  for (std::size_t i = 0; i < out.size(); ++i) out[i].index = static_cast<int>(i);
  return out;
}

std::vector<GpuDevice> from_ids(const std::vector<std::string>& ids) {
  std::vector<GpuDevice> out;
  for (const std::string& id : ids) {
    GpuDevice d;
    d.index = static_cast<int>(out.size());
    d.id = id;
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace

std::string_view to_string(GpuSource source) {
  switch (source) {
    case GpuSource::kNone:
      return "none";
    case GpuSource::kOverride:
      return "override";
    case GpuSource::kCudaRuntime:
      return "cuda-runtime";
    case GpuSource::kNvidiaSmi:
      return "nvidia-smi";
    case GpuSource::kEnvironment:
      return "environment";
  }
  return "none";
}

std::vector<std::string> parse_device_list(std::string_view text) {
  std::vector<std::string> out;
  if (trim(text) == "NoDevFiles") return out;
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    std::string_view item = trim(text.substr(0, comma));
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

std::vector<GpuDevice> gpus_for_count(int count) {
  std::vector<std::string> ids;
  if (count <= 0) return {};
  std::vector<std::string> visible;
  if (const char* cvd = cuda_visible_devices()) visible = parse_device_list(cvd);
  if (visible.size() >= static_cast<std::size_t>(count)) {
    ids.assign(visible.begin(), visible.begin() + count);
  } else {
    for (int i = 0; i < count; ++i) ids.push_back(std::to_string(i));
  }
  return from_ids(ids);
}

std::vector<GpuDevice> parse_nvidia_smi_list(std::string_view text) {
  std::vector<GpuDevice> out;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    // "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5f3c…)"; MIG lines start with "MIG".
    if (!line.starts_with("GPU ")) continue;
    line.remove_prefix(4);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || parse_count(line.substr(0, colon)) < 0) continue;
    GpuDevice d;
    d.index = static_cast<int>(out.size());
    d.id = std::string(trim(line.substr(0, colon)));
    std::string_view rest = trim(line.substr(colon + 1));
    if (const std::size_t u = rest.rfind("(UUID:"); u != std::string_view::npos) {
      std::string_view uuid = rest.substr(u + 6);
      if (const std::size_t close = uuid.find(')'); close != std::string_view::npos)
        uuid = uuid.substr(0, close);
      d.uuid = std::string(trim(uuid));
      rest = trim(rest.substr(0, u));
    }
    d.name = std::string(rest);
    out.push_back(std::move(d));
  }
  return out;
}

GpuInventory detect_gpus(const GpuDetectOptions& options) {
  GpuInventory inv;
  long long count = options.count;
  if (count < 0) {
    if (const char* n = env("SLUICE_GPUS")) {
      count = parse_count(n);
      if (count < 0) inv.notes.push_back(std::string("SLUICE_GPUS: not a count: '") + n + "'");
    }
  }
  if (count >= 0) {
    inv.source = GpuSource::kOverride;
    inv.devices = gpus_for_count(static_cast<int>(std::min(count, kMaxGpus)));
    return inv;
  }

  if (options.use_cuda_runtime) {
#ifdef SLUICE_WITH_CUDA
    std::string why;
    auto devices = restrict_to_visible(detail::cuda_runtime_devices(why), true);
    if (!devices.empty()) {
      inv.source = GpuSource::kCudaRuntime;
      inv.devices = std::move(devices);
      return inv;
    }
    inv.notes.push_back("CUDA runtime: " + (why.empty() ? "no visible device" : why));
#else
    inv.notes.push_back("CUDA runtime: not in this build (SLUICE_WITH_CUDA=OFF)");
#endif
  }

  if (options.use_nvidia_smi) {
    auto listed = capture_output({options.nvidia_smi, "-L"}, options.timeout);
    if (!listed) {
      inv.notes.push_back(listed.error().message);  // "nvidia-smi: not found on PATH"
    } else if (listed->timed_out || listed->exit_code != 0) {
      std::string first = listed->out.empty() ? listed->err : listed->out;
      first = std::string(trim(first.substr(0, first.find('\n'))));
      inv.notes.push_back("nvidia-smi: " +
                          (listed->timed_out ? std::string("timed out")
                                             : "exit " + std::to_string(listed->exit_code)) +
                          (first.empty() ? "" : ": " + first));
    } else {
      auto devices = restrict_to_visible(parse_nvidia_smi_list(listed->out), false);
      if (!devices.empty()) {
        inv.source = GpuSource::kNvidiaSmi;
        inv.devices = std::move(devices);
        return inv;
      }
      inv.notes.push_back("nvidia-smi: no visible device");
    }
  }

  std::vector<std::string> ids;
  if (const char* cvd = cuda_visible_devices())
    ids = parse_device_list(cvd);
  else if (const char* ordinal = env("GPU_DEVICE_ORDINAL"))
    ids = parse_device_list(ordinal);
  else if (const char* job = env("SLURM_JOB_GPUS"))
    ids = parse_device_list(job);
  if (!ids.empty()) {
    inv.source = GpuSource::kEnvironment;
    inv.devices = from_ids(ids);
  }
  return inv;
}

std::vector<std::string> gpu_ids(const GpuInventory& inventory) {
  std::vector<std::string> ids;
  ids.reserve(inventory.devices.size());
  for (const GpuDevice& d : inventory.devices) ids.push_back(d.id);
  return ids;
}

std::string format_memory(std::uint64_t bytes) {
  if (bytes == 0) return "unknown";
  constexpr std::uint64_t kMiB = 1ull << 20, kGiB = 1ull << 30;
  char buf[32];
  if (bytes >= kGiB)
    std::snprintf(buf, sizeof buf, "%.0f GiB", static_cast<double>(bytes) / kGiB);
  else
    std::snprintf(buf, sizeof buf, "%.0f MiB", static_cast<double>(bytes) / kMiB);
  return buf;
}

}  // namespace sluice
