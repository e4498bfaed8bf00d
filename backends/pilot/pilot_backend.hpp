// The `pilot` backend: Slurm allocations that run `sluice worker`, and many attempts per
// allocation. A Slurm controller starts only a few jobs per second, so a sweep of short
// tasks as one job each takes hours; through a handful of pilot allocations it runs at
// close to local speed.
//
//   sluice run wf.toml --backend slurm -O mode=pilot        (or a saved configuration)
//
// Transport: TCP (compute nodes reach the login node), authenticated both ways and
// encrypted with libsodium. On its first launch the backend listens on an ephemeral port
// on every address, writes RUN_DIR/pilot/address ("HOST:PORT") and RUN_DIR/pilot/secret
// (the run's key: 32 random bytes in hex, mode 0600; kept across `resume`, so workers of
// a crashed coordinator reconnect). The key never crosses the wire: each connection
// opens with a handshake in which both sides prove they hold it (pilot_handshake.hpp),
// then every frame is sealed; a worker refuses a coordinator that cannot prove it, and a
// connection that does not prove it in 5 s is closed. Messages: pilot_wire.hpp.
//
// Allocations: when launches wait that no connected worker can start (no free slot, no
// worker whose allocation has time left for the task's max_exec_time, no matching
// executor label) and no allocation is still starting, one more is submitted, up to
// `max_allocations`: `nodes` nodes, one worker per node (srun --ntasks-per-node=1),
// `cpus`/`gpus`/`memory` per node (no cpus: the whole node, --exclusive), `time_limit`,
// partition/account/qos/constraint/reservation/sbatch as for jobs. Allocations are
// watched with one batched query every `poll_interval`; one that ends before its worker
// connects is replaced by the same rule. A worker that ran nothing for `idle_timeout`
// asks to leave and is released when the coordinator has nothing for it.
//
// Semantics kept from the other backends: the worker kills an attempt past its
// max_exec_time (Capacity::enforces_exec_time); a worker whose connection drops (scancel,
// node failure, time limit) has its attempts reported kLost, which the scheduler retries
// without using up retries; GPUs are split per task inside the worker
// (CUDA_VISIBLE_DEVICES, as on `local`). When the backend is destroyed (end of run,
// cancel) it tells every worker to exit and cancels allocations without a worker.
//
// Liveness: a node that vanishes (power, kernel panic, network split) sends no FIN, and
// a stopped worker keeps its socket open. Both sides send a heartbeat every
// heartbeat_timeout / 6 (default 30s / 6 = 5s); a worker the coordinator hears nothing
// from for `heartbeat_timeout` (default 30s) is dropped and its attempts reported kLost
// (retried elsewhere, no retry used). 30s: six missed heartbeats in a row, so a worker on
// a node busy swapping or a coordinator stalled for seconds on its store is not dropped
// by mistake, while a lost node costs its tasks half a minute, not Slurm's own
// SlurmdTimeout (300s by default) or TCP's keepalive (2h). A worker gives its coordinator
// twice as long (dropping it kills every attempt it runs).
//
// State for `sluice workers RUN`: RUN_DIR/pilot/workers.json, rewritten at most once a
// second while something changes.
//
// Handles: "pilot:ATTEMPT_DIR". abandon() kills nothing itself: a worker kills its
// attempts as soon as it loses its coordinator.
//
// BackendOptions: cpus, gpus (per node of an allocation), executors (labels the workers
// offer). extra: mode (pilot | auto | jobs; see register_pilot_backend), max_allocations
// (default 4), nodes (1), time_limit (1h), idle_timeout (1m), memory (MiB per node),
// gpus_per_worker (G, dividing gpus: one worker per G GPUs on each node, srun
// --ntasks-per-node=gpus/G, each with its own block of devices and an even share of the
// cores and memory; default one worker per node), max_queued (launches handed over at
// once, in cores; default max(1024, 2 x max_allocations x nodes x max(cpus, 64)): each
// holds two open log files), auto_threshold (auto mode: tasks with a longer
// max_exec_time become jobs; default half the time_limit), poll_interval (2s),
// heartbeat_timeout (30s, at least 1s), driver, command_timeout (30s: the CLI driver's
// deadline per Slurm command), partition, account, qos, constraint,
// reservation, sbatch.
#pragma once

#include <memory>

#include "sluice/engine/backend.hpp"
#include "sluice/engine/backend_registry.hpp"

namespace sluice {
namespace slurm {
class SlurmDriver;
}

// A pilot backend submitting its allocations through `driver` (tests pass a fake).
Expected<std::unique_ptr<Backend>> make_pilot_backend(const BackendOptions& options,
                                                      std::unique_ptr<slurm::SlurmDriver> driver);

// Registers "pilot" and replaces "slurm" with a factory that picks by the option `mode`:
// jobs (default: one Slurm job per attempt, slurm_backend.hpp), pilot (this backend), or
// auto (per task: max_exec_time declared and above auto_threshold -> a job of its own,
// otherwise a pilot worker). REQUIRES: register_slurm_backend() was called before.
void register_pilot_backend();

}  // namespace sluice
