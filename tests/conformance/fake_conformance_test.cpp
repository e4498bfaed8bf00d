// The test kit keeps the contract it stands in for: the FakeBackend, and a FaultBackend
// with no fault armed around it.
#include <catch2/catch.hpp>

#include "conformance/backend_conformance.hpp"
#include "support/fake_backend.hpp"
#include "support/fault_backend.hpp"

using sluice::testing::FakeBackend;
using sluice::testing::FaultBackend;

namespace {

// Attempts end as their names say: ok*, fail*, hang* (until killed); others exit 0.
std::unique_ptr<FakeBackend> scripted_fake() {
  auto fake = std::make_unique<FakeBackend>();
  fake->script = [](const FakeBackend::Attempt& a) {
    if (a.name.rfind("fail", 0) == 0) return FakeBackend::exits(3);
    if (a.name.rfind("hang", 0) == 0) return FakeBackend::held();
    return FakeBackend::exits(0, std::chrono::milliseconds(20));
  };
  return fake;
}

// A FaultBackend owning the backend it wraps.
class OwningFault : public FaultBackend {
 public:
  explicit OwningFault(std::unique_ptr<FakeBackend> inner)
      : FaultBackend(*inner), inner_(std::move(inner)) {}

 private:
  std::unique_ptr<FakeBackend> inner_;
};

}  // namespace

TEST_CASE("the fake backend keeps the Backend contract", "[conformance]") {
  sluice::conformance::Target t;
  t.name = "fake";
  t.make = [] { return std::unique_ptr<sluice::Backend>(scripted_fake()); };
  sluice::conformance::check_backend_contract(t);
}

TEST_CASE("a fault wrapper with no fault armed keeps the Backend contract", "[conformance]") {
  sluice::conformance::Target t;
  t.name = "fault(fake)";
  t.make = [] {
    return std::unique_ptr<sluice::Backend>(std::make_unique<OwningFault>(scripted_fake()));
  };
  sluice::conformance::check_backend_contract(t);
}
