// GPU detection (sluice/gpus.hpp): the order of sources, CUDA_VISIBLE_DEVICES filtering,
// the nvidia-smi parser, and a probe that must not fail on a machine without GPUs.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "sluice/engine/capture.hpp"
#include "sluice/engine/gpus.hpp"
#include "support/scratch_dir.hpp"

using namespace sluice;
namespace fs = std::filesystem;

namespace {

// Sets (or unsets) environment variables for one test and restores them after.
class EnvGuard {
 public:
  void set(const char* name, const char* value) {
    remember(name);
    if (value == nullptr)
      ::unsetenv(name);
    else
      ::setenv(name, value, 1);
  }
  ~EnvGuard() {
    for (const auto& [name, value] : saved_) {
      if (value)
        ::setenv(name.c_str(), value->c_str(), 1);
      else
        ::unsetenv(name.c_str());
    }
  }

 private:
  void remember(const char* name) {
    for (const auto& s : saved_)
      if (s.first == name) return;
    const char* v = std::getenv(name);
    saved_.emplace_back(name, v ? std::optional<std::string>(v) : std::nullopt);
  }
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// No GPU-related variable set: each test states what it wants.
void clear_gpu_env(EnvGuard& env) {
  for (const char* n :
       {"SLUICE_GPUS", "CUDA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL", "SLURM_JOB_GPUS"})
    env.set(n, nullptr);
}

// Only the environment source: nothing on this machine can change the answer.
GpuDetectOptions env_only() {
  GpuDetectOptions o;
  o.use_cuda_runtime = false;
  o.use_nvidia_smi = false;
  return o;
}

// A fake `nvidia-smi` printing `text` (or exiting with `rc`), in a temporary directory.
struct FakeSmi {
  sluice::testing::ScratchDir dir;
  std::string path = (dir / "nvidia-smi").string();
  FakeSmi(const std::string& text, int rc = 0) {
    std::ofstream(path) << "#!/bin/sh\ncat <<'END'\n" << text << "END\nexit " << rc << "\n";
    ::chmod(path.c_str(), 0755);
  }
  GpuDetectOptions options() const {
    GpuDetectOptions o;
    o.use_cuda_runtime = false;
    o.nvidia_smi = path;
    return o;
  }
};

const char* kTwoA100 =
    "GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5f3c2b1a-0000-1111-2222-333344445555)\n"
    "  MIG 1g.5gb     Device  0: (UUID: MIG-aaaa)\n"
    "GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-77aa0000-0000-1111-2222-333344445555)\n";

}  // namespace

TEST_CASE("nvidia-smi -L output becomes devices with names and UUIDs", "[gpus]") {
  auto d = parse_nvidia_smi_list(kTwoA100);
  REQUIRE(d.size() == 2);
  CHECK(d[0].index == 0);
  CHECK(d[0].id == "0");
  CHECK(d[0].name == "NVIDIA A100-SXM4-40GB");
  CHECK(d[0].uuid == "GPU-5f3c2b1a-0000-1111-2222-333344445555");
  CHECK(d[1].id == "1");
  CHECK(parse_nvidia_smi_list("No devices were found\n").empty());
  CHECK(parse_nvidia_smi_list("").empty());
}

TEST_CASE("device lists split on commas, NoDevFiles and empty mean none", "[gpus]") {
  CHECK(parse_device_list("0,1, 3") == std::vector<std::string>{"0", "1", "3"});
  CHECK(parse_device_list("GPU-ab,GPU-cd") == std::vector<std::string>{"GPU-ab", "GPU-cd"});
  CHECK(parse_device_list("").empty());
  CHECK(parse_device_list("NoDevFiles").empty());
}

TEST_CASE("an explicit count wins over everything and reuses CUDA_VISIBLE_DEVICES ids", "[gpus]") {
  EnvGuard env;
  clear_gpu_env(env);
  GpuDetectOptions o = env_only();
  o.count = 3;
  auto inv = detect_gpus(o);
  CHECK(inv.source == GpuSource::kOverride);
  CHECK(gpu_ids(inv) == std::vector<std::string>{"0", "1", "2"});

  env.set("CUDA_VISIBLE_DEVICES", "4,5,6,7");
  CHECK(gpu_ids(detect_gpus(o)) == std::vector<std::string>{"4", "5", "6"});
  o.count = 0;
  CHECK(detect_gpus(o).devices.empty());
  CHECK(detect_gpus(o).source == GpuSource::kOverride);

  // SLUICE_GPUS is the same override from the environment; the option beats it.
  env.set("CUDA_VISIBLE_DEVICES", nullptr);
  env.set("SLUICE_GPUS", "2");
  CHECK(gpu_ids(detect_gpus(env_only())) == std::vector<std::string>{"0", "1"});
  CHECK(detect_gpus(o).devices.empty());
  env.set("SLUICE_GPUS", "lots");
  auto bad = detect_gpus(env_only());
  CHECK(bad.source == GpuSource::kNone);
  REQUIRE_FALSE(bad.notes.empty());
  CHECK(bad.notes.front().find("SLUICE_GPUS") != std::string::npos);
}

TEST_CASE("nvidia-smi is used when the CUDA runtime finds nothing", "[gpus]") {
  EnvGuard env;
  clear_gpu_env(env);
  FakeSmi smi(kTwoA100);
  auto inv = detect_gpus(smi.options());
  CHECK(inv.source == GpuSource::kNvidiaSmi);
  REQUIRE(inv.devices.size() == 2);
  CHECK(inv.devices[1].name == "NVIDIA A100-SXM4-40GB");

  // Only the devices this process may use, named as CUDA_VISIBLE_DEVICES names them.
  env.set("CUDA_VISIBLE_DEVICES", "1");
  inv = detect_gpus(smi.options());
  REQUIRE(inv.devices.size() == 1);
  CHECK(inv.devices[0].id == "1");
  CHECK(inv.devices[0].index == 0);
  CHECK(inv.devices[0].uuid == "GPU-77aa0000-0000-1111-2222-333344445555");
  env.set("CUDA_VISIBLE_DEVICES", "GPU-5f3c2b1a");
  inv = detect_gpus(smi.options());
  REQUIRE(inv.devices.size() == 1);
  CHECK(inv.devices[0].id == "GPU-5f3c2b1a");
  CHECK(inv.devices[0].name == "NVIDIA A100-SXM4-40GB");
}

TEST_CASE("a failing or missing nvidia-smi falls back to the environment", "[gpus]") {
  EnvGuard env;
  clear_gpu_env(env);
  FakeSmi broken("NVIDIA-SMI has failed because it couldn't communicate with the driver\n", 9);
  env.set("CUDA_VISIBLE_DEVICES", "2,3");
  auto inv = detect_gpus(broken.options());
  CHECK(inv.source == GpuSource::kEnvironment);
  CHECK(gpu_ids(inv) == std::vector<std::string>{"2", "3"});
  REQUIRE_FALSE(inv.notes.empty());
  CHECK(inv.notes.back().find("exit 9") != std::string::npos);

  GpuDetectOptions missing = broken.options();
  missing.nvidia_smi = "/nonexistent/nvidia-smi";
  env.set("CUDA_VISIBLE_DEVICES", nullptr);
  inv = detect_gpus(missing);
  CHECK(inv.source == GpuSource::kNone);
  CHECK(inv.devices.empty());
}

TEST_CASE("Slurm's variables are the last source", "[gpus]") {
  EnvGuard env;
  clear_gpu_env(env);
  env.set("SLURM_JOB_GPUS", "0,1");
  CHECK(gpu_ids(detect_gpus(env_only())) == std::vector<std::string>{"0", "1"});
  env.set("GPU_DEVICE_ORDINAL", "1");
  CHECK(gpu_ids(detect_gpus(env_only())) == std::vector<std::string>{"1"});
  env.set("CUDA_VISIBLE_DEVICES", "NoDevFiles");
  CHECK(detect_gpus(env_only()).devices.empty());
}

TEST_CASE("probing the real machine never fails, GPU or not", "[gpus]") {
  EnvGuard env;
  clear_gpu_env(env);
  GpuDetectOptions o;
  o.timeout = std::chrono::milliseconds(10000);
  GpuInventory inv = detect_gpus(o);  // CUDA runtime (if built), real nvidia-smi
  for (std::size_t i = 0; i < inv.devices.size(); ++i) {
    CHECK(inv.devices[i].index == static_cast<int>(i));
    CHECK_FALSE(inv.devices[i].id.empty());
  }
  if (inv.devices.empty()) {
    CHECK(inv.source == GpuSource::kNone);
    CHECK_FALSE(inv.notes.empty());  // why each probe found nothing
  }
}

TEST_CASE("capture_output collects stdout, stderr, exit status and enforces a deadline",
          "[gpus][capture]") {
  auto r = capture_output({"sh", "-c", "echo out; echo err >&2; exit 3"},
                          std::chrono::milliseconds(5000));
  REQUIRE(r.has_value());
  CHECK(r->out == "out\n");
  CHECK(r->err == "err\n");
  CHECK(r->exit_code == 3);
  CHECK_FALSE(r->timed_out);

  const auto start = std::chrono::steady_clock::now();
  auto slow = capture_output({"sh", "-c", "sleep 5"}, std::chrono::milliseconds(200));
  REQUIRE(slow.has_value());
  CHECK(slow->timed_out);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(3));

  auto none = capture_output({"no-such-program-sluice"}, std::chrono::milliseconds(1000));
  REQUIRE_FALSE(none.has_value());
  CHECK(none.error().code == ErrorCode::kNotFound);
  CHECK(format_memory(80ull << 30) == "80 GiB");
  CHECK(format_memory(0) == "unknown");
}
