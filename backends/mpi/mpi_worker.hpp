// The worker side of the `mpi` backend: every rank but 0 runs serve_as_worker() in
// place of a coordinator. It is the transport around the worker runtime the pilot
// backend shares (worker_runtime.hpp): a `local` backend sized to its share of the node
// (cores, GPUs) starts the attempts rank 0 sends as child processes (own process group,
// as on `local`), so a crashing task fails its attempt and never the rank; it makes
// their attempt directories, runs SDK function tasks back to back on its MPI thread
// (worker::set_function_task_runner), and sends completions back in batches.
//
// Slots: BackendOptions::cpus per worker when given; else the cores this rank may use
// (its affinity mask) split evenly among the node's workers, at least 1; a rank that
// mpirun/srun bound to fewer cores than the node has keeps exactly those. GPUs: the
// node's devices (BackendOptions::gpus as a count, else SLUICE_GPUS /
// CUDA_VISIBLE_DEVICES, as on `local`) are split into contiguous blocks among the
// node's workers; each worker's attempts see only devices of its own block.
//
// Losing the coordinator: when its parent (mpirun/orted/slurmstepd) dies, or on
// SIGTERM/SIGINT/SIGHUP, a worker kills every attempt it started (whole process
// groups) and exits without waiting for rank 0.
//
// Attempts do not inherit Open MPI's or PMIx's environment (OMPI_*, PMIX_*, …): an
// attempt that itself calls mpirun starts a job of its own.
#pragma once

#include "sluice/engine/backend_registry.hpp"

namespace sluice::mpi {

// Serves attempts until rank 0 sends kTagShutdown. Returns the process exit status.
// REQUIRES: MpiSession::get().rank() > 0.
int serve_as_worker(const BackendOptions& options);

}  // namespace sluice::mpi
