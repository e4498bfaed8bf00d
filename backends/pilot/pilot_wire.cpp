#include "pilot_wire.hpp"

#include <cstring>

namespace sluice::pilot {
namespace {

constexpr const char* kProtocol = "pilot";

using wire::Reader;
using wire::Writer;

tl::unexpected<Error> malformed(const char* what) {
  return wire::malformed(kProtocol, what);
}

}  // namespace

std::string frame(MsgType type, std::string_view payload) {
  Writer w;
  w.u32(static_cast<std::uint32_t>(payload.size() + 1));
  w.u8(static_cast<std::uint8_t>(type));
  std::string out = w.take();
  out.append(payload);
  return out;
}

std::string encode_hello(const Hello& h) {
  Writer w;
  w.str(h.job_id);
  w.str(h.host);
  w.i32(h.pid);
  w.i32(h.cpus);
  w.strs(h.gpu_ids);
  w.i64(h.memory_mib);
  w.strs(h.executors);
  w.i64(h.alloc_end_s);
  return w.take();
}

Expected<Hello> decode_hello(std::string_view payload) {
  Reader r(payload);
  Hello h;
  h.job_id = r.str();
  h.host = r.str();
  h.pid = r.i32();
  h.cpus = r.i32();
  h.gpu_ids = r.strs();
  h.memory_mib = r.i64();
  h.executors = r.strs();
  h.alloc_end_s = r.i64();
  if (!r.done()) return malformed("hello");
  return h;
}

std::string encode_launch(const LaunchRequest& request) {
  return wire::encode_launch(request);
}

Expected<Launch> decode_launch(std::string_view payload) {
  return wire::decode_launch(payload, kProtocol);
}

void LaunchBatch::add(std::string_view encoded_launch) {
  if (n_ == 0) buf_.assign(4, '\0');  // the count, filled in by take()
  const auto len = static_cast<std::uint32_t>(encoded_launch.size());
  buf_.append(reinterpret_cast<const char*>(&len), sizeof len);
  buf_ += encoded_launch;
  ++n_;
}

std::string LaunchBatch::take() {
  std::string out;
  if (n_ == 1) {
    out = buf_.substr(8);  // past the count and the launch's length
  } else if (n_ > 1) {
    std::memcpy(buf_.data(), &n_, sizeof n_);
    out = std::move(buf_);
  }
  buf_.clear();
  n_ = 0;
  return out;
}

Expected<void> decode_launches(std::string_view payload, std::vector<Launch>& out) {
  Reader r(payload);
  const std::size_t before = out.size();
  const std::uint32_t n = r.count();
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    const std::string one = r.str();
    if (!r.ok()) break;
    auto l = decode_launch(one);
    if (!l) {
      out.resize(before);
      return tl::unexpected(l.error());
    }
    out.push_back(std::move(*l));
  }
  if (!r.done()) {
    out.resize(before);
    return malformed("launches");
  }
  return {};
}

Expected<void> decode_any_launch(MsgType type, std::string_view payload, std::vector<Launch>& out) {
  if (type == MsgType::kLaunches) return decode_launches(payload, out);
  auto l = decode_launch(payload);
  if (!l) return tl::unexpected(l.error());
  out.push_back(std::move(*l));
  return {};
}

std::string encode_kill(TaskId task, std::uint32_t attempt) {
  return wire::encode_kill(task, attempt);
}

Expected<std::pair<TaskId, std::uint32_t>> decode_kill(std::string_view payload) {
  return wire::decode_kill(payload, kProtocol);
}

std::string encode_welcome(const Welcome& welcome) {
  Writer w;
  w.u32(welcome.worker);
  w.i64(welcome.heartbeat_timeout_ms);
  return w.take();
}

Expected<Welcome> decode_welcome(std::string_view payload) {
  Reader r(payload);
  Welcome w;
  w.worker = r.u32();
  w.heartbeat_timeout_ms = r.i64();
  if (!r.done()) return malformed("welcome");
  return w;
}

std::string encode_text(std::string_view text) {
  Writer w;
  w.str(text);
  return w.take();
}

Expected<std::string> decode_text(std::string_view payload) {
  Reader r(payload);
  std::string s = r.str();
  if (!r.done()) return malformed("text");
  return s;
}

std::string encode_completions(std::span<const Completion> completions) {
  return wire::encode_completions(completions);
}

Expected<void> decode_completions(std::string_view payload, std::vector<Completion>& out) {
  return wire::decode_completions(payload, out, kProtocol);
}

bool FrameBuffer::header_bad() const {
  if (buf_.size() - pos_ < 4) return false;
  std::uint32_t len = 0;
  std::memcpy(&len, buf_.data() + pos_, sizeof len);
  return len == 0 || len > max_frame_;
}

bool FrameBuffer::next_body(std::string_view& body, bool& bad) {
  bad = false;
  // Compact now and then so the buffer does not grow with the whole stream.
  if (pos_ > 0 && (pos_ == buf_.size() || pos_ > (1u << 16))) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  if (buf_.size() - pos_ < 4) return false;
  if (header_bad()) {
    bad = true;
    return false;
  }
  std::uint32_t len = 0;
  std::memcpy(&len, buf_.data() + pos_, sizeof len);
  if (buf_.size() - pos_ - 4 < len) return false;
  body = std::string_view(buf_).substr(pos_ + 4, len);
  pos_ += 4 + len;
  return true;
}

bool FrameBuffer::next(MsgType& type, std::string_view& payload, bool& bad) {
  std::string_view body;
  if (!next_body(body, bad)) return false;
  type = static_cast<MsgType>(static_cast<std::uint8_t>(body[0]));
  payload = body.substr(1);
  return true;
}

}  // namespace sluice::pilot
