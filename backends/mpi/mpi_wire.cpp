#include "mpi_wire.hpp"

#include <cstring>

namespace sluice::mpi {
namespace {

constexpr const char* kProtocol = "MPI";

std::vector<char> bytes_of(const std::string& s) {
  return std::vector<char>(s.begin(), s.end());
}

std::string_view view(std::span<const char> bytes) {
  return std::string_view(bytes.data(), bytes.size());
}

}  // namespace

std::vector<char> encode_launch(const LaunchRequest& request) {
  return bytes_of(wire::encode_launch(request));
}

Expected<WireLaunch> decode_launch(std::span<const char> bytes) {
  return wire::decode_launch(view(bytes), kProtocol);
}

std::vector<char> encode_hello(const WireHello& hello) {
  wire::Writer w;
  w.str(hello.host);
  w.i32(hello.cpus);
  w.strs(hello.gpu_ids);
  w.i32(hello.node_rank);
  return bytes_of(w.take());
}

void append_launch(std::vector<char>& batch, const LaunchRequest& request) {
  const std::string one = wire::encode_launch(request);
  const auto n = static_cast<std::uint32_t>(one.size());
  const char* p = reinterpret_cast<const char*>(&n);
  batch.insert(batch.end(), p, p + sizeof n);
  batch.insert(batch.end(), one.begin(), one.end());
}

Expected<void> decode_launches(std::span<const char> bytes, std::vector<WireLaunch>& out) {
  out.clear();
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    std::uint32_t n = 0;
    if (bytes.size() - pos < sizeof n) break;
    std::memcpy(&n, bytes.data() + pos, sizeof n);
    if (bytes.size() - pos - sizeof n < n) break;
    auto l = decode_launch(bytes.subspan(pos + sizeof n, n));
    if (!l) {
      out.clear();
      return tl::unexpected(l.error());
    }
    out.push_back(std::move(*l));
    pos += sizeof n + n;
  }
  if (pos == bytes.size() && !out.empty()) return {};
  out.clear();  // a truncated frame, or no launch at all
  return wire::malformed(kProtocol, "launch batch");
}

Expected<WireHello> decode_hello(std::span<const char> bytes) {
  wire::Reader r(view(bytes));
  WireHello h;
  h.host = r.str();
  h.cpus = r.i32();
  h.gpu_ids = r.strs();
  h.node_rank = r.i32();
  if (!r.done()) return wire::malformed(kProtocol, "hello");
  return h;
}

std::vector<char> encode_kill(TaskId task, std::uint32_t attempt) {
  return bytes_of(wire::encode_kill(task, attempt));
}

Expected<std::pair<TaskId, std::uint32_t>> decode_kill(std::span<const char> bytes) {
  return wire::decode_kill(view(bytes), kProtocol);
}

std::vector<char> encode_completions(std::span<const Completion> completions) {
  return bytes_of(wire::encode_completions(completions));
}

Expected<void> decode_completions(std::span<const char> bytes, std::vector<Completion>& out) {
  return wire::decode_completions(view(bytes), out, kProtocol);
}

}  // namespace sluice::mpi
