// The `mpi` backend keeps the Backend contract: run under mpirun (3 ranks), rank 0 runs
// the conformance suite against one MpiBackend shared by every check (there is one per
// MPI job), the other ranks serve as its workers. The restart check is left out: a
// second backend would need a second job.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <memory>

#include "conformance/backend_conformance.hpp"
#include "mpi_backend.hpp"

using namespace sluice;

namespace {

std::unique_ptr<Backend> g_backend;

// Hands the job's one backend to each check without giving it away.
class Borrowed final : public Backend {
 public:
  explicit Borrowed(Backend& b) : b_(b) {}
  std::string name() const override { return b_.name(); }
  Capacity capacity() const override { return b_.capacity(); }
  bool wants_attempt_dir() const override { return b_.wants_attempt_dir(); }
  Expected<std::string> launch(const LaunchRequest& r) override { return b_.launch(r); }
  std::vector<Expected<std::string>> launch_batch(std::span<const LaunchRequest> r) override {
    return b_.launch_batch(r);
  }
  void poll(std::vector<Completion>& out, std::chrono::milliseconds t) override { b_.poll(out, t); }
  void kill(TaskId task, std::uint32_t attempt) override { b_.kill(task, attempt); }
  std::size_t in_flight() const override { return b_.in_flight(); }
  void abandon(const std::string& h) override { b_.abandon(h); }
  bool reattach(const std::string& h, TaskId t, std::uint32_t a) override {
    return b_.reattach(h, t, a);
  }

 private:
  Backend& b_;
};

}  // namespace

TEST_CASE("the mpi backend keeps the Backend contract", "[conformance]") {
  REQUIRE(g_backend);
  conformance::Target t;
  t.name = "mpi";
  t.make = [] { return std::unique_ptr<Backend>(std::make_unique<Borrowed>(*g_backend)); };
  t.restarts = false;
  conformance::check_backend_contract(t);
}

int main(int argc, char** argv) {
  register_mpi_backend();
  BackendOptions options;
  options.cpus = 4;
  options.gpus = 0;
  if (auto rc = enter_worker("mpi", options)) return *rc;
  auto b = create_backend("mpi", options);
  if (!b) {
    std::fprintf(stderr, "mpi backend: %s\n", b.error().message.c_str());
    return 1;
  }
  g_backend = std::move(*b);
  const int rc = Catch::Session().run(argc, argv);
  g_backend.reset();  // releases the workers
  return rc;
}
