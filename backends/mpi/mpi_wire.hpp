// The messages the MPI backend's ranks exchange, as plain bytes (MPI_BYTE). Encoding
// and decoding need no MPI, so they are tested without mpirun.
//
//   rank 0 -> worker: kTagLaunch (WireLaunch), kTagKill (task, attempt),
//                     kTagAbandon (attempt directory), kTagShutdown (empty)
//   worker -> rank 0: kTagHello (WireHello, once at start), kTagCompletions (a batch)
//
// Integers are little-endian fixed width, strings a u32 length and the bytes. A decoder
// given a truncated or malformed message returns an error; it never reads past the end.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/backend.hpp"

namespace sluice::mpi {

enum Tag : int {
  kTagLaunch = 101,
  kTagKill = 102,
  kTagAbandon = 103,
  kTagShutdown = 104,
  kTagHello = 110,
  kTagCompletions = 111,
};

// One attempt, everything a worker needs to start it without the workflow.
struct WireLaunch {
  TaskId task = 0;
  std::uint32_t attempt = 0;
  std::string name;  // for messages
  // Exactly one of command / shell / function is set. `function` names a registered
  // in-process function (SDK function tasks); the worker runs it through its
  // FunctionTaskRunner instead of spawning a process.
  std::vector<std::string> command;
  std::string shell;
  std::string function;
  std::string arguments;  // the function's bound arguments (TaskSpec::arguments)
  std::vector<std::pair<std::string, std::string>> spec_env;  // the task's `env`
  std::vector<std::pair<std::string, std::string>> env;       // LaunchRequest::env
  std::string workdir;
  std::string attempt_dir;
  std::int32_t cpus = 1;
  std::int32_t gpus = 0;
};

// What a worker offers, sent once when it starts.
struct WireHello {
  std::string host;
  std::int32_t cpus = 1;
  std::vector<std::string> gpu_ids;  // the node's devices this worker hands out
  std::int32_t node_rank = 0;        // among the ranks of its node
};

std::vector<char> encode_launch(const LaunchRequest& request);
Expected<WireLaunch> decode_launch(std::span<const char> bytes);

std::vector<char> encode_hello(const WireHello& hello);
Expected<WireHello> decode_hello(std::span<const char> bytes);

std::vector<char> encode_kill(TaskId task, std::uint32_t attempt);
Expected<std::pair<TaskId, std::uint32_t>> decode_kill(std::span<const char> bytes);

// Completions (with their content hash) without `host` and `failure` (rank 0 knows each worker's
// host; `failure` is the engine's). Appends decoded ones to `out`.
std::vector<char> encode_completions(std::span<const Completion> completions);
Expected<void> decode_completions(std::span<const char> bytes, std::vector<Completion>& out);

}  // namespace sluice::mpi
