// GPUs on the local backend with fake devices (`--gpus N`): every GPU task gets its own
// devices in CUDA_VISIBLE_DEVICES for as long as it runs, oversized tasks are rejected
// before anything runs, and `sluice doctor` reports what it sees.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "sluice/engine/capture.hpp"
#include "support/run_queries.hpp"
#include "support/skip.hpp"

using nlohmann::json;
using namespace sluice::testing;
namespace fs = std::filesystem;

namespace {

// The GPU variables of the test's own environment would leak into `sluice`.
void clear_gpu_environment() {
  for (const char* n :
       {"SLUICE_GPUS", "CUDA_VISIBLE_DEVICES", "GPU_DEVICE_ORDINAL", "SLURM_JOB_GPUS"})
    ::unsetenv(n);
}

struct Interval {
  long long start_ns = 0, end_ns = 0;
  std::string task;
};

// A sweep of `n` tasks, each asking for `gpus` devices; each writes
// "CUDA_VISIBLE_DEVICES START_NS END_NS" into OUT/t<i>.txt around a short sleep.
std::string sweep(int n, int gpus, const fs::path& out) {
  std::ostringstream wf;
  wf << "[workflow]\nname = \"gpu_sweep\"\n\n[tasks.use]\nmatrix = { i = [";
  for (int i = 0; i < n; ++i) wf << (i ? ", " : "") << i;
  wf << "] }\ngpus = " << gpus << "\n"
     << "shell = 's=$(date +%s%N); sleep 0.1; e=$(date +%s%N); "
        "echo \"$CUDA_VISIBLE_DEVICES $s $e\" > "
     << out.string() << "/t{i}.txt'\n";
  return wf.str();
}

// Device -> the intervals during which a task held it; checks each record's shape.
std::map<std::string, std::vector<Interval>> read_records(const fs::path& out, int n, int gpus,
                                                          const std::set<std::string>& valid) {
  std::map<std::string, std::vector<Interval>> by_device;
  for (int i = 0; i < n; ++i) {
    const std::string name = "t" + std::to_string(i) + ".txt";
    std::istringstream line(read_file(out / name));
    std::string devices;
    Interval iv;
    iv.task = name;
    line >> devices >> iv.start_ns >> iv.end_ns;
    INFO(name << ": '" << devices << "'");
    REQUIRE(iv.start_ns > 0);
    REQUIRE(iv.end_ns >= iv.start_ns);
    std::set<std::string> mine;
    std::stringstream ss(devices);
    for (std::string d; std::getline(ss, d, ',');) {
      CHECK(valid.count(d) == 1);
      mine.insert(d);
      by_device[d].push_back(iv);
    }
    CHECK(mine.size() == static_cast<std::size_t>(gpus));  // distinct devices, as many as asked
  }
  return by_device;
}

void check_never_shared(std::map<std::string, std::vector<Interval>>& by_device) {
  for (auto& [device, intervals] : by_device) {
    std::sort(intervals.begin(), intervals.end(),
              [](const Interval& a, const Interval& b) { return a.start_ns < b.start_ns; });
    for (std::size_t k = 1; k < intervals.size(); ++k) {
      INFO("device " << device << ": " << intervals[k - 1].task << " and " << intervals[k].task);
      CHECK(intervals[k - 1].end_ns <= intervals[k].start_ns);
    }
  }
}

// Most tasks running at once, over all records.
int peak_concurrency(const std::map<std::string, std::vector<Interval>>& by_device, int gpus) {
  std::vector<std::pair<long long, int>> events;
  for (const auto& [device, intervals] : by_device)
    for (const auto& iv : intervals) {
      events.emplace_back(iv.start_ns, 1);
      events.emplace_back(iv.end_ns, -1);
    }
  std::sort(events.begin(), events.end());
  int now = 0, peak = 0;
  for (const auto& e : events) peak = std::max(peak, now += e.second);
  return peak / gpus;  // each task appears once per device it holds
}

}  // namespace

TEST_CASE("50 one-GPU tasks on 4 fake GPUs never share a device", "[integration][gpus]") {
  clear_gpu_environment();
  ScratchDir dir;
  fs::create_directories(dir / "out");
  write_file(dir / "wf.toml", sweep(50, 1, dir / "out"));
  auto r = run_sluice({"run", "wf.toml", "--gpus", "4", "--cpus", "8", "-q"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("8 cpus, 4 gpus") != std::string::npos);
  auto by_device = read_records(dir / "out", 50, 1, {"0", "1", "2", "3"});
  check_never_shared(by_device);
  CHECK(by_device.size() == 4);  // the load spread over every device
  CHECK(peak_concurrency(by_device, 1) >= 2);
  CHECK(peak_concurrency(by_device, 1) <= 4);
}

TEST_CASE("two-GPU tasks get two distinct devices, never shared", "[integration][gpus]") {
  clear_gpu_environment();
  ScratchDir dir;
  fs::create_directories(dir / "out");
  write_file(dir / "wf.toml", sweep(20, 2, dir / "out"));
  auto r = run_sluice({"run", "wf.toml", "--gpus", "4", "--cpus", "8", "-q"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto by_device = read_records(dir / "out", 20, 2, {"0", "1", "2", "3"});
  check_never_shared(by_device);
  CHECK(peak_concurrency(by_device, 2) <= 2);
}

TEST_CASE("GPU ids follow the coordinator's CUDA_VISIBLE_DEVICES", "[integration][gpus]") {
  clear_gpu_environment();
  ::setenv("CUDA_VISIBLE_DEVICES", "5,7", 1);
  ScratchDir dir;
  fs::create_directories(dir / "out");
  write_file(dir / "wf.toml", sweep(6, 1, dir / "out"));
  auto r = run_sluice({"run", "wf.toml", "--cpus", "4", "-q"}, dir.path());
  clear_gpu_environment();
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("4 cpus, 2 gpus") != std::string::npos);
  auto by_device = read_records(dir / "out", 6, 1, {"5", "7"});
  check_never_shared(by_device);
}

TEST_CASE("a task needing more GPUs than the node has is rejected before anything runs",
          "[integration][gpus]") {
  clear_gpu_environment();
  ScratchDir dir;
  write_file(dir / "wf.toml", R"([workflow]
name = "too_big"

[tasks.train]
gpus = 3
shell = "true"
)");
  auto v = run_sluice({"validate", "wf.toml", "--gpus", "2"}, dir.path());
  INFO(v.out << v.err);
  CHECK(v.exit_code == 2);
  CHECK(v.err.find("wf.toml:5:") != std::string::npos);
  CHECK(v.err.find("needs 3 GPUs but the backend offers 2") != std::string::npos);

  auto r = run_sluice({"run", "wf.toml", "--gpus", "2"}, dir.path());
  INFO(r.out << r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("needs 3 GPUs") != std::string::npos);  // was "needs 3 gpus" (issue 28)
  CHECK_FALSE(fs::exists(dir / ".sluice" / "store.db"));   // nothing written

  CHECK(run_sluice({"validate", "wf.toml", "--gpus", "3"}, dir.path()).exit_code == 0);
}

TEST_CASE("sluice doctor --json reports every check with a status and a hint",
          "[integration][doctor]") {
  clear_gpu_environment();
  ScratchDir dir;
  auto r = run_sluice({"doctor", "--json", "--gpus", "0", "--timeout", "2"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  json d = json::parse(r.out);
  CHECK(d["host"].is_string());
  for (const char* name : {"cpus", "memory", "gpus", "slurm", "mpi", "hdf5", "store"}) {
    INFO(name);
    REQUIRE(d.contains(name));
    CHECK((d[name]["status"] == "ok" || d[name]["status"] == "missing"));
    CHECK(d[name]["summary"].is_string());
    CHECK(d[name]["hint"].is_string());
  }
  CHECK(d["cpus"]["usable"].get<int>() >= 1);
  CHECK(d["memory"]["total_bytes"].get<long long>() > 0);
  CHECK(d["gpus"]["count"] == 0);
  CHECK(d["gpus"]["status"] == "missing");
  CHECK(d["gpus"]["source"] == "override");
  CHECK(d["gpus"]["devices"].empty());
  CHECK(d["hdf5"]["status"] == "ok");
  CHECK(d["hdf5"]["version"].get<std::string>().find('.') != std::string::npos);
  CHECK(d["store"]["exists"] == false);
  CHECK(d["store"]["writable"] == true);
  CHECK(d["store"]["schema_version"].get<int>() >= 1);
  CHECK(d["store"]["path"] == (fs::canonical(dir.path()) / ".sluice" / "store.db").string());

  // A store with one run: its count, still read-only for doctor.
  write_file(dir / "wf.toml", "[workflow]\nname = \"one\"\n[tasks.a]\nshell = \"true\"\n");
  REQUIRE(run_sluice({"run", "wf.toml", "-q", "--gpus", "0"}, dir.path()).exit_code == 0);
  d = json::parse(run_sluice({"doctor", "--json", "--gpus", "2"}, dir.path()).out);
  CHECK(d["store"]["exists"] == true);
  CHECK(d["store"]["runs"] == 1);
  CHECK(d["store"]["status"] == "ok");
  CHECK(d["gpus"]["count"] == 2);
  CHECK(d["gpus"]["devices"][1]["id"] == "1");
}

TEST_CASE("sluice doctor finds no GPU on a machine without one", "[integration][doctor]") {
  clear_gpu_environment();
  // Only meaningful where nothing can report a GPU (no driver device, no nvidia-smi).
  if (fs::exists("/dev/nvidia0") || !sluice::find_on_path("nvidia-smi").empty())
    SLUICE_SKIP("this machine has a GPU driver or nvidia-smi");
  ScratchDir dir;
  auto r = run_sluice({"doctor"}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("missing  gpus    none") != std::string::npos);
  json d = json::parse(run_sluice({"doctor", "--json"}, dir.path()).out);
  CHECK(d["gpus"]["count"] == 0);
  CHECK(d["gpus"]["source"] == "none");
  CHECK_FALSE(d["gpus"]["notes"].empty());
}
