// The `mpi` backend: a task farm over the ranks of one MPI job, for many small tasks
// inside one allocation.
//
//   mpirun -n N sluice run --backend mpi wf.toml      (or srun --mpi=pmix … inside Slurm)
//   mpirun -n N sluice resume RUN --backend mpi
//
// Rank 0 runs the ordinary coordinator (scheduler, run store) with an MpiBackend; every
// other rank is a worker (mpi_worker.hpp) that starts command attempts as its own child
// processes and runs SDK function tasks in-process (a program built with the SDK is
// its own worker: `mpirun -n N ./app run --backend mpi`). Workers, not rank 0, lend
// each command attempt a scratch folder of their own in RUN/scratch ("rRANK.LANE-SEQ",
// reused while attempts leave it empty, renamed to RUN/tasks/TASK/N when one writes
// there: scratch_folders.hpp); rank 0 sweeps RUN/scratch when the run starts or
// resumes. Launches, kills and completions travel as MPI messages (mpi_wire.hpp);
// spools, attempt directories and values live on the shared filesystem as on every
// backend. Capacity = the sum of the workers' slots; each launch goes to the worker
// with the most free cores that can hold it, and waits inside the backend when no
// single worker can hold it yet (its cores and GPUs are split across workers). No rank
// spins: waiting ranks sleep in steps growing to 1 ms.
//
// Option queue_per_slot=D (default 1; 64 in programs built with the SDK, whose tasks are
// functions): capacity counts D attempts per worker core. Function tasks then queue on
// their worker and run back to back without a round trip to rank 0 each; command tasks
// still start only on a free core and otherwise wait in rank 0's queue (their
// max_exec_time counts from the launch, so keep D at 1 for timed command tasks).
//
// Handles: "mpi:HOST:ATTEMPT_DIR". abandon() asks one worker on HOST to kill whatever
// still runs as that attempt (processes an earlier, killed job left), found by the
// SLUICE_RUN_ID, SLUICE_TASK and SLUICE_ATTEMPT in its environment.
//
// The `sluice` executable does not link MPI (loading libmpi would cost every
// `sluice put` in every task ~5 ms): `sluice run --backend mpi` re-executes itself as
// `sluice-mpi`, installed next to it, which does.
#pragma once

#include <optional>

#include "sluice/engine/backend_registry.hpp"

namespace sluice {

// The options "mpi" takes besides cpus, gpus and executors: queue_per_slot. One table
// for `sluice` and `sluice-mpi`, so both refuse the same keys before any rank starts.
const OptionTable& mpi_option_table();

// Registers the backend "mpi" (with mpi_option_table()) and its worker entry (see
// backend_registry.hpp). In `sluice` both re-execute the process as `sluice-mpi`; in
// `sluice-mpi` they join the MPI job: the worker entry serves on ranks > 0 and returns
// their exit status, and the factory (rank 0) waits for every worker's hello and returns the
// backend.
void register_mpi_backend();

}  // namespace sluice
