// Per-task overhead of C++ function tasks: N no-op functions, independent ("indep") or
// one chain ("chain"), run through the whole engine (scheduler, run store, coordinator)
// on the backend a configuration names. Prints one machine-readable line:
//   workload=functions tool=sluice-inproc shape=indep n=100000 wall_s=… us_per_task=… ok=1
//
//   functions_bench run --config inproc -q   (with FB_SHAPE=indep|chain|distinct FB_N=N
//   FB_RESULT=0|1) mpirun -n 3 functions_bench run --backend mpi -q   (the tasks run on ranks 1 and
//   2)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sluice/sdk.hpp>
#include <string>

void noop() {}
void noop_i(int) {}
int noop_int(int x) {
  return x;
}

int main(int argc, char** argv) {
  auto noop_t = sluice::task("noop", "1", &noop);
  auto int_t = sluice::task("noop_int", "1", &noop_int);
  auto noop_i_t = sluice::task("noop_i", "1", &noop_i);
  const char* shape_env = std::getenv("FB_SHAPE");
  const std::string shape = shape_env ? shape_env : "indep";
  const long n = std::getenv("FB_N") ? std::atol(std::getenv("FB_N")) : 1000;
  const bool with_result = std::getenv("FB_RESULT") && std::string(std::getenv("FB_RESULT")) == "1";

  sluice::Flow flow("functions_" + shape, "bench");
  // A worker process runs one function: no need to build the graph.
  if (argc > 1 && std::string(argv[1]) == "__sluice_worker") return sluice::main(argc, argv, flow);
  if (shape == "chain") {
    // Each link waits for the previous one; no-op links pass no value.
    if (with_result) {
      auto prev = flow.call(int_t, 0);
      for (long i = 1; i < n; ++i) prev = flow.call(int_t, prev);
    } else {
      auto prev = flow.call(noop_t);
      for (long i = 1; i < n; ++i) prev = flow.call(sluice::opts{.after = {prev.task()}}, noop_t);
    }
  } else if (shape == "distinct") {
    // Independent no-ops with distinct arguments: each is a cache miss that runs and
    // files an entry of its own (identical calls share one entry; they run too: a run's
    // own entries serve later runs only).
    for (long i = 0; i < n; ++i) flow.call(noop_i_t, static_cast<int>(i));
  } else {
    for (long i = 0; i < n; ++i) {
      if (with_result) {
        flow.call(int_t, static_cast<int>(i));
      } else {
        flow.call(noop_t);
      }
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = sluice::main(argc, argv, flow);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Under mpirun every rank gets here; only the coordinator's (rank 0) line counts.
  if (const char* rank = std::getenv("OMPI_COMM_WORLD_RANK"); rank && std::string(rank) != "0")
    return rc;
  const char* tool = std::getenv("FB_TOOL");
  std::printf(
      "workload=functions tool=%s shape=%s result=%d n=%ld wall_s=%.3f us_per_task=%.2f ok=%d\n",
      tool ? tool : "sluice", shape.c_str(), with_result ? 1 : 0, n, wall,
      wall * 1e6 / static_cast<double>(n), rc == 0 ? 1 : 0);
  return rc;
}
