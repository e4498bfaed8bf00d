// What one worker of several on a node gets of it: its cores, its block of the node's
// GPUs, and the base environment its attempts start from. Pure functions over what the
// caller read (affinity, detection, Slurm's variables), so the mpi and pilot workers
// share one rule and it is unit-tested without MPI, sockets or GPUs.
//
// Thread-safety: none needed (no shared state); process_environment() reads environ.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::worker {

// The cores one of `workers` workers on a node takes: `explicit_cpus` when > 0; else all
// of `offered` (the cores it may use) when its launcher `bound` it to its own cores
// (mpirun/srun binding); else an even share of `offered`. At least 1.
int cpu_share(int explicit_cpus, int offered, int workers, bool bound);

// The `index`-th of `workers` contiguous blocks of `node` (the node's device ids, in
// order): the first `node.size() % workers` blocks hold one device more. `index` is
// clamped into [0, workers); `workers` < 1 counts as 1.
std::vector<std::string> gpu_block(const std::vector<std::string>& node, int workers, int index);

// This process's environment, "NAME=value" entries in order (read, never changed).
std::vector<std::string> process_environment();

// Removes the entries whose name starts with one of `prefixes` (e.g. the MPI runtime's
// OMPI_, PMIX_: an attempt that itself calls mpirun must start a job of its own).
void drop_variables(std::vector<std::string>& env, std::span<const std::string_view> prefixes);

// Narrows `env` to a worker's block of its node's GPUs: SLUICE_GPUS removed (it would
// count the node's devices again) and, when the node has devices, CUDA_VISIBLE_DEVICES
// set to `block` ("" for an empty block), so that nothing the attempts start sees another
// worker's devices.
void narrow_gpus(std::vector<std::string>& env, const std::vector<std::string>& block,
                 bool node_has_gpus);

}  // namespace sluice::worker
