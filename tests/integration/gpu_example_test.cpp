// The CUDA example (examples/gpu/): on a GPU node the sweep runs and the reduce
// combines the estimates; elsewhere every GPU task must fail with a clear "no CUDA
// device" reason, and the test is reported as skipped (ctest matches "SLUICE-SKIP:").
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "support/run_queries.hpp"
#include "support/skip.hpp"

using nlohmann::json;
using namespace sluice::testing;

TEST_CASE("the CUDA pi sweep runs on GPUs, or fails clearly without one",
          "[integration][gpus][examples]") {
#ifndef SLUICE_GPU_EXAMPLE
  SLUICE_SKIP("built without CUDA (SLUICE_WITH_CUDA=OFF): no GPU example to run");
#else
  for (const char* n : {"SLUICE_GPUS", "GPU_DEVICE_ORDINAL", "SLURM_JOB_GPUS"}) ::unsetenv(n);
  ScratchDir dir;
  // Without a detected GPU, declare one so that the tasks start and show their reason.
  auto doctor = run_sluice({"doctor", "--json"}, dir.path());
  REQUIRE(doctor.exit_code == 0);
  const int gpus = json::parse(doctor.out)["gpus"]["count"];
  std::vector<std::string> args{"run", SLUICE_GPU_EXAMPLE, "-q"};
  if (gpus == 0) {
    args.push_back("--gpus");
    args.push_back("1");
  }
  auto r = run_sluice(args, dir.path());
  INFO(r.out << r.err);
  const std::string id = run_id_of(r);

  if (gpus == 0 || r.exit_code != 0) {
    auto logs = run_sluice({"logs", id, "pi.0", "--stderr"}, dir.path());
    INFO(logs.out << logs.err);
    const std::string text = logs.out + logs.err;
    const auto at = text.find("no CUDA device");
    if (gpus == 0) {
      REQUIRE(r.exit_code == 1);
      REQUIRE(at != std::string::npos);
      SLUICE_SKIP(text.substr(at, text.find('\n', at) - at));
    }
    FAIL("the sweep failed on a machine with " << gpus << " GPU(s)");
  }
  json reduce = results_json(id, dir.path())["results"]["reduce"];
  INFO(reduce.dump(2));
  // 1.111e9 points: the combined estimate is within 1e-3 of pi.
  CHECK(std::fabs(reduce["pi"].get<double>() - M_PI) < 1e-3);
  CHECK(reduce["samples"].get<double>() >= 1.111e9);
  CHECK_FALSE(reduce["devices"].get<std::string>().empty());
  auto art = run_sluice({"artifacts", id, "pi.3", "--json"}, dir.path());
  INFO(art.out << art.err);
  CHECK(art.exit_code == 0);
  CHECK(art.out.find("kernel_ms") != std::string::npos);
#endif
}
