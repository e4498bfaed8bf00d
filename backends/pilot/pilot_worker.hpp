// `sluice worker`: the process a pilot allocation runs on each of its nodes. It connects
// to the run's coordinator (pilot_backend.hpp), says what it offers, starts the attempts
// it is sent through the worker runtime the mpi backend shares (worker_runtime.hpp: child
// processes of a `local` backend of its own, with the same environment, PATH, process
// groups, logs and CUDA_VISIBLE_DEVICES handling as `--backend local`), and sends their
// completions back in batches. Only the transport, TCP with a handshake that proves the
// run's key both ways and sealed frames after it (pilot_handshake.hpp), is its own. A
// coordinator that cannot prove the key is sent nothing and given nothing to run.
//
// SDK function tasks: in a program built with the SDK (sluice::main offers the same
// `worker` verb, and an allocation started by that program's coordinator runs that
// program), a function task is called in the worker's own process, on a thread of its
// own, through the runner the program sets (worker::set_function_task_runner); no process starts
// per task. The coordinator gives it `cpus` of the worker's slots like any task. A running function
// cannot be interrupted: a kill or max_exec_time takes effect when it returns (then
// reported "timed out"), as on `inproc`. Function tasks that ask for GPUs, and every
// function task in a worker without a runner (`sluice worker`), run as processes
// (`PROGRAM __sluice_worker …`) so that each gets its own CUDA_VISIBLE_DEVICES.
//
// It kills an attempt past its max_exec_time (reported as signaled, "timed out after
// …"). A failure the coordinator did not ask for is reported 0.5 s late: scancel and the
// time limit signal the attempts too, and a worker stopped meanwhile leaves them to be
// reported lost (retried for free) rather than failed. After `idle_timeout` with nothing running it
// asks the coordinator to release it. When the coordinator's connection drops it kills every
// attempt it started (the coordinator has reported them lost), then tries to reconnect to the
// address in PILOT_DIR/address (a resumed coordinator writes a new one) for `reconnect_timeout`,
// and exits 0 if none answers, which ends its allocation. SIGTERM (scancel, time limit)
// kills its attempts and exits 128+15.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace sluice::pilot {

struct WorkerOptions {
  std::string connect;      // HOST:PORT; empty: read pilot_dir/address
  std::string secret_file;  // the run's key; empty: pilot_dir/secret
  std::string pilot_dir;
  int cpus = 0;   // 0: SLURM_CPUS_ON_NODE, else the cores it may use
  int gpus = -1;  // -1: detect (CUDA_VISIBLE_DEVICES of the allocation, ...)
  std::int64_t memory_mib = 0;
  std::vector<std::string> executors;
  std::int64_t alloc_end_s = 0;  // epoch seconds; 0: unknown
  // Workers started on this node (srun --ntasks-per-node): this one, number
  // SLURM_LOCALID, serves the SLURM_LOCALID-th contiguous block of the node's GPUs (its
  // CUDA_VISIBLE_DEVICES is narrowed to it) and, without `cpus`, its share of the cores.
  int workers_per_node = 1;
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds reconnect_timeout{60'000};
};

// Serves until released. Function tasks still running on threads when it returns
// cannot be stopped: see worker::function_tasks_running(). Exit status: 0 released or no
// coordinator to reconnect to, 3 refused (by the coordinator, or every coordinator found
// until reconnect_timeout could not prove the key) or unusable options, 128+signal when
// stopped by a signal.
int serve_worker(const WorkerOptions& options);

}  // namespace sluice::pilot
