// The messages the MPI backend's ranks exchange, as plain bytes (MPI_BYTE). Encoding
// and decoding need no MPI, so they are tested without mpirun.
//
//   rank 0 -> worker: kTagLaunch (one or more WireLaunch), kTagKill (task, attempt),
//                     kTagAbandon (attempt directory), kTagShutdown (empty)
//   worker -> rank 0: kTagHello (WireHello, once at start), kTagCompletions (a batch)
//
// Encoded with the codec the pilot backend shares (sluice/wire_codec.hpp): a decoder
// given a truncated or malformed message returns an error; it never reads past the end.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/engine/backend.hpp"
#include "wire_codec.hpp"

namespace sluice::mpi {

enum Tag : int {
  kTagLaunch = 101,
  kTagKill = 102,
  kTagAbandon = 103,
  kTagShutdown = 104,
  kTagHello = 110,
  kTagCompletions = 111,
};

// One attempt (sluice/wire_codec.hpp): the same message as the pilot backend's.
using WireLaunch = wire::Launch;

// What a worker offers, sent once when it starts.
struct WireHello {
  std::string host;
  std::int32_t cpus = 1;
  std::vector<std::string> gpu_ids;  // the node's devices this worker hands out
  std::int32_t node_rank = 0;        // among the ranks of its node
};

std::vector<char> encode_launch(const LaunchRequest& request);
Expected<WireLaunch> decode_launch(std::span<const char> bytes);

// A kTagLaunch message: the launches rank 0 hands one worker in one scheduling step,
// each a u32 length and encode_launch()'s bytes (one message, not one per attempt).
void append_launch(std::vector<char>& batch, const LaunchRequest& request);
// Replaces `out` with the batch's launches; on error `out` is left empty.
Expected<void> decode_launches(std::span<const char> bytes, std::vector<WireLaunch>& out);

std::vector<char> encode_hello(const WireHello& hello);
Expected<WireHello> decode_hello(std::span<const char> bytes);

std::vector<char> encode_kill(TaskId task, std::uint32_t attempt);
Expected<std::pair<TaskId, std::uint32_t>> decode_kill(std::span<const char> bytes);

// Completions (with their content hash) without `host` and `failure` (rank 0 knows each worker's
// host; `failure` is the engine's). Appends decoded ones to `out`.
std::vector<char> encode_completions(std::span<const Completion> completions);
Expected<void> decode_completions(std::span<const char> bytes, std::vector<Completion>& out);

}  // namespace sluice::mpi
