// Two works on two kinds of machine (the seed's flow/work app): one asks for a "cpu"
// executor, the other for a "gpu" one; a backend offering both labels runs them side
// by side, a cluster configuration puts each where its label is offered.
//
//   ./two_workers run --executors cpu,gpu
#include <sluice/sdk.hpp>
#include <string>

std::string work_a(const std::string& what) { return "code A ran on a CPU machine: " + what; }
std::string work_b(const std::string& what) { return "code B ran on a GPU machine: " + what; }

int main(int argc, char** argv) {
  auto a = sluice::task("work_a", "1", &work_a);
  auto b = sluice::task("work_b", "1", &work_b);
  sluice::Flow flow("two_workers", "examples");
  flow.call(sluice::opts{.executor = "cpu"}, a, std::string("preprocess"));
  // gpus = 0 so it runs on a laptop; on a GPU node ask for one: .gpus = 1.
  flow.call(sluice::opts{.executor = "gpu"}, b, std::string("train"));
  return sluice::main(argc, argv, flow);
}
