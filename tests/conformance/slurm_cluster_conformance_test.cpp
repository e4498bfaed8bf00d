// The `slurm` backend keeps the Backend contract on the real cluster, when one answers
// (`scontrol ping` says UP); otherwise the test is skipped.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

#include "conformance/backend_conformance.hpp"
#include "slurm_backend.hpp"
#include "support/slurm.hpp"

using namespace sluice;

TEST_CASE("the slurm backend keeps the Backend contract on the real cluster", "[conformance]") {
  REQUIRE_SLURM();
  // auto: libslurm here, where the controller runs the release it was built for; cli: the
  // command-line tools, what a controller of another release gets.
  const std::string driver = GENERATE("auto", "cli");
  conformance::Target t;
  t.name = "slurm (real cluster, driver=" + driver + ")";
  t.make = [driver]() -> std::unique_ptr<Backend> {
    BackendOptions o;
    o.extra = {{"poll_interval", "200ms"}, {"driver", driver}};
    auto b = make_slurm_backend(o);
    REQUIRE(b);
    return std::move(*b);
  };
  t.patience = std::chrono::seconds(120);
  conformance::check_backend_contract(t);
}
