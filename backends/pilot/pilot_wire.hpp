// The messages between the coordinator's `pilot` backend and its `sluice worker`s, and
// their framing on a TCP byte stream. Encoding and decoding touch no socket, so they are
// unit-tested without a network.
//
// Frame: u32 length (of what follows), u8 type, payload; after the handshake
// (pilot_handshake.hpp) type and payload are sealed (pilot_crypto.hpp). Payloads are encoded with
// the codec the MPI backend shares (sluice/wire_codec.hpp): a decoder given a truncated or
// malformed payload returns an error; it never reads past the end.
//
//   worker -> coordinator: kHello (once, first after the handshake), kCompletions (a
//                          batch), kIdle (asks to be released: nothing ran for idle_timeout)
//   coordinator -> worker: kWelcome (hello accepted; the worker's id and the heartbeat
//                          timeout), kRefused (a failed handshake or a malformed hello; the
//                          connection closes),
//                          kLaunch (one attempt), kLaunches (several, in one sealed
//                          frame: what one turn of dispatch placed on that worker),
//                          kKill, kShutdown (exit now)
//   both ways:             kHeartbeat (empty), every heartbeat timeout / 6; a side that
//                          hears nothing for the timeout takes the other for gone
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/engine/backend.hpp"
#include "wire_codec.hpp"

namespace sluice::pilot {

enum class MsgType : std::uint8_t {
  kHello = 1,
  kCompletions = 2,
  kIdle = 3,
  kHeartbeat = 4,
  kWelcome = 10,
  kRefused = 11,
  kLaunch = 12,
  kKill = 13,
  kShutdown = 14,
  kLaunches = 15,
  // The handshake (pilot_handshake.hpp), in plain frames.
  kAuthHello = 20,
  kAuthChallenge = 21,
  kAuthProof = 22,
  kAuthOk = 23,
  kAuthFailed = 24,
};

// Larger frames are a protocol error (a stranger talking to the port, or corruption).
// Sealed frames come from a peer that proved the key: the largest launch or batch of
// completions. Before that only handshake frames, which are small.
constexpr std::uint32_t kMaxFrame = 64u << 20;
constexpr std::uint32_t kMaxHandshakeFrame = 256;

// What a worker offers, sent once after connecting.
struct Hello {
  std::string job_id;  // the Slurm allocation it runs in; empty outside Slurm
  std::string host;
  std::int32_t pid = 0;
  std::int32_t cpus = 1;
  std::vector<std::string> gpu_ids;
  std::int64_t memory_mib = 0;         // 0: unknown
  std::vector<std::string> executors;  // empty: any label
  std::int64_t alloc_end_s = 0;        // epoch seconds the allocation ends; 0: never
};

// One attempt (sluice/wire_codec.hpp): the same message as the MPI backend's.
using Launch = wire::Launch;

// A whole frame (length, type, payload) ready to write.
std::string frame(MsgType type, std::string_view payload);

std::string encode_hello(const Hello& h);
Expected<Hello> decode_hello(std::string_view payload);

std::string encode_launch(const LaunchRequest& request);
Expected<Launch> decode_launch(std::string_view payload);

// kLaunches: a count, then each launch as encode_launch made it, length-prefixed. A
// LaunchBatch builds one from launches encoded earlier (the backend encodes a launch when
// it is queued) without decoding them again.
class LaunchBatch {
 public:
  void add(std::string_view encoded_launch);
  std::uint32_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  std::size_t bytes() const { return buf_.size(); }
  // The message to send: kLaunch with the one launch, or kLaunches. Empties the batch.
  MsgType type() const { return n_ == 1 ? MsgType::kLaunch : MsgType::kLaunches; }
  std::string take();

 private:
  std::string buf_;
  std::uint32_t n_ = 0;
};
// Appends the launches of a kLaunches payload to `out`; on a malformed payload `out` is
// left as it was.
Expected<void> decode_launches(std::string_view payload, std::vector<Launch>& out);
// The launches of a kLaunch or kLaunches frame, appended to `out` (what a worker calls
// on either).
Expected<void> decode_any_launch(MsgType type, std::string_view payload, std::vector<Launch>& out);

std::string encode_kill(TaskId task, std::uint32_t attempt);
Expected<std::pair<TaskId, std::uint32_t>> decode_kill(std::string_view payload);

// kWelcome: the worker's id and the heartbeat timeout the coordinator uses.
struct Welcome {
  std::uint32_t worker = 0;
  std::int64_t heartbeat_timeout_ms = 0;
};
std::string encode_welcome(const Welcome& w);
Expected<Welcome> decode_welcome(std::string_view payload);

// kRefused and kShutdown carry a reason.
std::string encode_text(std::string_view text);
Expected<std::string> decode_text(std::string_view payload);

// Completions without `host` and `failure` (the coordinator knows the worker's host;
// `failure` is the engine's). Appends decoded ones to `out`.
std::string encode_completions(std::span<const Completion> completions);
Expected<void> decode_completions(std::string_view payload, std::vector<Completion>& out);

// Splits a byte stream into frames. Feed it what arrived; take whole frames out.
class FrameBuffer {
 public:
  explicit FrameBuffer(std::uint32_t max_frame = kMaxFrame) : max_frame_(max_frame) {}
  void set_max_frame(std::uint32_t max_frame) { max_frame_ = max_frame; }
  void append(const char* data, std::size_t n) { buf_.append(data, n); }
  // Bytes appended and not yet taken out.
  std::size_t buffered() const { return buf_.size() - pos_; }
  // True when the frame begun in the buffer declares a length of 0 or above the maximum:
  // its body need not be read.
  bool header_bad() const;
  // The next whole frame: true with type and payload (valid until the next call), false
  // when none is complete yet. Sets `bad` on a frame of length 0 or above the maximum.
  bool next(MsgType& type, std::string_view& payload, bool& bad);
  // The same, for a frame whose body (what follows its length) is sealed.
  bool next_body(std::string_view& body, bool& bad);

 private:
  std::string buf_;
  std::size_t pos_ = 0;
  std::uint32_t max_frame_;
};

}  // namespace sluice::pilot
