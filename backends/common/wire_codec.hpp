// The byte encoding that backends with remote workers (`mpi` ranks, `pilot` workers)
// share: a Writer and a Reader of fixed-width integers and length-prefixed strings, and
// the messages every such backend sends the same way (a launch, a kill, a batch of
// completions). Pure functions over bytes: nothing here touches a socket or MPI, so
// each backend's framing and each message are unit-tested alone.
//
// Integers are little-endian fixed width (workers and coordinator share the
// architecture, as ranks of one job do), strings a u32 length and the bytes. A decoder
// given a truncated or malformed payload returns an error; it never reads past the end.
// Thread-safety: none needed (no shared state).
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/engine/backend.hpp"

namespace sluice::wire {

class Writer {
 public:
  void u8(std::uint8_t v) { raw(&v, sizeof v); }
  void u32(std::uint32_t v) { raw(&v, sizeof v); }
  void i32(std::int32_t v) { raw(&v, sizeof v); }
  void i64(std::int64_t v) { raw(&v, sizeof v); }
  void str(std::string_view s);
  void strs(const std::vector<std::string>& v);
  void pairs(const std::vector<std::pair<std::string, std::string>>& v);
  std::string take() { return std::move(buf_); }

 private:
  void raw(const void* p, std::size_t n) { buf_.append(static_cast<const char*>(p), n); }
  std::string buf_;
};

// Reads what a Writer wrote. After any read past the end, ok() is false and every
// further read returns a zero value.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  bool ok() const { return ok_; }
  // True when everything was read and nothing is left over.
  bool done() const { return ok_ && pos_ == bytes_.size(); }

  std::uint32_t u32() { return fixed<std::uint32_t>(); }
  std::int32_t i32() { return fixed<std::int32_t>(); }
  std::int64_t i64() { return fixed<std::int64_t>(); }
  std::string str();
  std::vector<std::string> strs();
  std::vector<std::pair<std::string, std::string>> pairs();
  // An element count; each element takes at least 4 bytes, which bounds it.
  std::uint32_t count();

 private:
  template <class T>
  T fixed() {
    T v{};
    if (!ok_ || bytes_.size() - pos_ < sizeof v) {
      ok_ = false;
      return v;
    }
    std::memcpy(&v, bytes_.data() + pos_, sizeof v);
    pos_ += sizeof v;
    return v;
  }
  std::string_view bytes_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

// One attempt, everything a worker needs to start it without the workflow.
struct Launch {
  TaskId task = 0;
  std::uint32_t attempt = 0;
  std::string name;  // for messages
  // Exactly one of command / shell is set. `function`, when set, names a registered
  // in-process function (SDK function tasks) with its bound `arguments`: a worker built
  // into the SDK program may call it instead of running `command`.
  std::vector<std::string> command;
  std::string shell;
  std::string function;
  std::string arguments;
  std::vector<std::pair<std::string, std::string>> spec_env;  // the task's `env`
  std::vector<std::pair<std::string, std::string>> env;       // LaunchRequest::env
  std::string workdir;
  std::string attempt_dir;
  std::string spool_dir;  // LaunchRequest::spool_dir: where the worker spools the logs
  std::int32_t cpus = 1;
  std::int32_t gpus = 0;
  std::int64_t max_exec_ms = 0;  // the task's max_exec_time; 0: unlimited
};

// `protocol` names the backend in error messages ("malformed pilot message: launch").
std::string encode_launch(const LaunchRequest& request);
Expected<Launch> decode_launch(std::string_view payload, const char* protocol);

// The request a worker hands its own (local) backend for `l`. `spec` is scratch storage
// the request points into: keep it alive and unchanged until launch() returns.
LaunchRequest to_launch_request(const Launch& l, TaskSpec& spec);

std::string encode_kill(TaskId task, std::uint32_t attempt);
Expected<std::pair<TaskId, std::uint32_t>> decode_kill(std::string_view payload,
                                                       const char* protocol);

// Completions without `host` and `failure` (the coordinator knows each worker's host;
// `failure` is the engine's). Appends decoded ones to `out`; on error appends nothing.
std::string encode_completions(std::span<const Completion> completions);
Expected<void> decode_completions(std::string_view payload, std::vector<Completion>& out,
                                  const char* protocol);

// The completion of an attempt killed while it still waited in a backend's queue for a
// worker (it never started): signaled with SIGTERM, `reason`, started and ended now on
// `host`.
Completion killed_before_start(TaskId task, std::uint32_t attempt, std::string reason,
                               std::string host);

// The error every decoder returns: kBackend, "malformed PROTOCOL message: WHAT".
tl::unexpected<Error> malformed(const char* protocol, const char* what);

}  // namespace sluice::wire
