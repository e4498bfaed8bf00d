// The Sluice C++ SDK: write tasks as C++ functions and workflows as C++ code, run them
// on threads (inproc), processes (local) or a cluster, and query any run by id.
//
//   #include <sluice/sdk.hpp>
//
//   double train(std::vector<double> data, double lr) { ... }
//   double best(std::vector<double> scores) { ... }
//
//   int main(int argc, char** argv) {
//     auto train_t = sluice::task("train", "1", &train);
//     auto best_t = sluice::task("best", "1", &best);
//     sluice::Flow flow("tune", "examples");
//     std::vector<sluice::Future<double>> scores;
//     for (double lr : {0.1, 0.01, 0.001})
//       scores.push_back(flow.call(sluice::opts{.executor = "gpu"}, train_t, data, lr));
//     flow.call(best_t, flow.gather(scores));
//     return sluice::main(argc, argv, flow);      // ./tune run --config inproc
//   }
//
// Pieces, each documented in its header:
//   codec.hpp         C++ types <-> Values (and your own types via sluice::Codec)
//   function.hpp      sluice::task(): registered functions, TaskContext
//   flow.hpp          sluice::Flow, Future, gather, CallOptions, sub-workflows
//   orchestration.hpp coroutines that await calls' values, with durable replay
//   config.hpp        named runtime configurations (inproc, local, saved TOML)
//   workflow_run.hpp  WorkflowRun: prepare/run, and any run by id (status, results, logs)
//   sdk_main.hpp      sluice::main(): run, worker and query verbs in one binary
#pragma once

#include "sluice/codec.hpp"
#include "sluice/config.hpp"
#include "sluice/flow.hpp"
#include "sluice/function.hpp"
#include "sluice/orchestration.hpp"
#include "sluice/sdk_main.hpp"
#include "sluice/workflow_run.hpp"
