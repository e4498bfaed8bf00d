// The `slurm` backend keeps the Backend contract on the real cluster, when one answers
// (`scontrol ping` says UP); otherwise the test is skipped.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

#include "conformance/backend_conformance.hpp"
#include "slurm_backend.hpp"

using namespace sluice;

namespace {

bool cluster_up() {
  std::FILE* p = ::popen("scontrol ping 2>/dev/null", "r");
  if (!p) return false;
  std::string text;
  char buf[256];
  while (std::fgets(buf, sizeof buf, p)) text += buf;
  return ::pclose(p) == 0 && text.find("UP") != std::string::npos;
}

}  // namespace

TEST_CASE("the slurm backend keeps the Backend contract on the real cluster", "[conformance]") {
  if (!cluster_up()) {
    std::puts("SLUICE-SKIP: no Slurm cluster answers (scontrol ping)");
    return;
  }
  conformance::Target t;
  t.name = "slurm (real cluster)";
  t.make = []() -> std::unique_ptr<Backend> {
    BackendOptions o;
    o.extra = {{"poll_interval", "200ms"}};
    auto b = make_slurm_backend(o);
    REQUIRE(b);
    return std::move(*b);
  };
  t.patience = std::chrono::seconds(120);
  conformance::check_backend_contract(t);
}
