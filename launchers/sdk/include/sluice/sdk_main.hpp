// sluice::main: turns a program that builds a Flow into a complete Sluice tool. One
// binary runs its workflow on any backend, serves as the worker that executes its
// function tasks in other processes, and answers the same queries as `sluice`:
//
//   int main(int argc, char** argv) {
//     sluice::Flow flow("train_and_pick_model", "examples");
//     ...
//     return sluice::main(argc, argv, flow);
//   }
//
//   ./app run [--config NAME | --backend inproc|local] [--cpus N] [-q]
//   ./app prepare                   registers a run without executing it; prints its id
//   ./app start RUN                 executes a prepared run (or resumes a stopped one)
//   ./app submit [WORKFLOW] [--config NAME]   a detached run: prints its id and exits;
//                                   the coordinator goes on in the background
//   mpirun -n N ./app run --backend mpi      function tasks on MPI ranks (when built
//                                   with SLUICE_WITH_MPI; ranks > 0 are workers)
//   ./app run --config C            with C a saved configuration of backend "slurm", mode
//                                   "pilot": allocations run `./app worker`, which calls
//                                   function tasks in-process (pilot_worker.hpp)
//   ./app ps | get RUN | wait RUN | logs RUN TASK | results RUN | artifacts RUN TASK | …
//   ./app __sluice_worker FUNCTION ARGS   (hidden: what backends launch per attempt)
//
// Defined in the sluice_sdk library (launchers/), which also registers the inproc and
// local backends. Returns the process exit code: 0 ok, 1 the workflow failed, 2 bad
// input, 3 internal error.
#pragma once

namespace sluice {

class Flow;
struct OrchestrationDef;

int main(int argc, char** argv, const Flow& flow);
// The same for an orchestration (orchestration.hpp): `run` and `start RUN` (alias
// `resume RUN`) drive its coroutine in the coordinator and replay it after a crash;
// `run` prints the orchestration's value.
int main(int argc, char** argv, const OrchestrationDef& orchestration);

}  // namespace sluice
