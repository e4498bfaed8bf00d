#include "pilot_wire.hpp"

#include <cstring>

namespace sluice::pilot {
namespace {

class Writer {
 public:
  void u8(std::uint8_t v) { raw(&v, sizeof v); }
  void u32(std::uint32_t v) { raw(&v, sizeof v); }
  void i32(std::int32_t v) { raw(&v, sizeof v); }
  void i64(std::int64_t v) { raw(&v, sizeof v); }
  void str(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    raw(s.data(), s.size());
  }
  void strs(const std::vector<std::string>& v) {
    u32(static_cast<std::uint32_t>(v.size()));
    for (const auto& s : v) str(s);
  }
  void pairs(const std::vector<std::pair<std::string, std::string>>& v) {
    u32(static_cast<std::uint32_t>(v.size()));
    for (const auto& [k, val] : v) {
      str(k);
      str(val);
    }
  }
  std::string take() { return std::move(buf_); }

 private:
  void raw(const void* p, std::size_t n) { buf_.append(static_cast<const char*>(p), n); }
  std::string buf_;
};

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  bool ok() const { return ok_; }
  bool done() const { return ok_ && pos_ == bytes_.size(); }

  std::uint32_t u32() { return fixed<std::uint32_t>(); }
  std::int32_t i32() { return fixed<std::int32_t>(); }
  std::int64_t i64() { return fixed<std::int64_t>(); }
  std::string str() {
    std::uint32_t n = u32();
    if (!ok_ || n > bytes_.size() - pos_) {
      ok_ = false;
      return {};
    }
    std::string s(bytes_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  std::vector<std::string> strs() {
    std::vector<std::string> v;
    std::uint32_t n = count();
    for (std::uint32_t i = 0; i < n && ok_; ++i) v.push_back(str());
    return v;
  }
  std::vector<std::pair<std::string, std::string>> pairs() {
    std::vector<std::pair<std::string, std::string>> v;
    std::uint32_t n = count();
    for (std::uint32_t i = 0; i < n && ok_; ++i) {
      std::string k = str();
      v.emplace_back(std::move(k), str());
    }
    return v;
  }
  // An element count; each element takes at least 4 bytes, which bounds it.
  std::uint32_t count() {
    std::uint32_t n = u32();
    if (ok_ && n > (bytes_.size() - pos_) / 4) ok_ = false;
    return ok_ ? n : 0;
  }

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

tl::unexpected<Error> malformed(const char* what) {
  return make_error(ErrorCode::kBackend, std::string("malformed pilot message: ") + what);
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
  w.str(h.secret);
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
  h.secret = r.str();
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
  const TaskSpec& spec = *request.spec;
  Writer w;
  w.u32(request.task);
  w.u32(request.attempt);
  w.str(spec.name);
  w.strs(request.command ? *request.command : spec.command);
  w.str(request.shell ? *request.shell : spec.shell);
  w.pairs(spec.env);
  w.pairs(request.env);
  w.str(spec.workdir);
  w.str(request.attempt_dir);
  w.i32(spec.cpus);
  w.i32(spec.gpus);
  w.i64(spec.max_exec_time.count());
  return w.take();
}

Expected<Launch> decode_launch(std::string_view payload) {
  Reader r(payload);
  Launch l;
  l.task = r.u32();
  l.attempt = r.u32();
  l.name = r.str();
  l.command = r.strs();
  l.shell = r.str();
  l.spec_env = r.pairs();
  l.env = r.pairs();
  l.workdir = r.str();
  l.attempt_dir = r.str();
  l.cpus = r.i32();
  l.gpus = r.i32();
  l.max_exec_ms = r.i64();
  if (!r.done()) return malformed("launch");
  return l;
}

std::string encode_kill(TaskId task, std::uint32_t attempt) {
  Writer w;
  w.u32(task);
  w.u32(attempt);
  return w.take();
}

Expected<std::pair<TaskId, std::uint32_t>> decode_kill(std::string_view payload) {
  Reader r(payload);
  TaskId task = r.u32();
  std::uint32_t attempt = r.u32();
  if (!r.done()) return malformed("kill");
  return std::pair{task, attempt};
}

std::string encode_u32(std::uint32_t v) {
  Writer w;
  w.u32(v);
  return w.take();
}

Expected<std::uint32_t> decode_u32(std::string_view payload) {
  Reader r(payload);
  std::uint32_t v = r.u32();
  if (!r.done()) return malformed("u32");
  return v;
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
  Writer w;
  w.u32(static_cast<std::uint32_t>(completions.size()));
  for (const Completion& c : completions) {
    w.u32(c.task);
    w.u32(c.attempt);
    w.i32(static_cast<std::int32_t>(c.kind));
    w.i32(c.code);
    w.str(c.reason);
    w.i64(c.started_us);
    w.i64(c.ended_us);
  }
  return w.take();
}

Expected<void> decode_completions(std::string_view payload, std::vector<Completion>& out) {
  Reader r(payload);
  const std::size_t before = out.size();
  std::uint32_t n = r.count();
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    Completion c;
    c.task = r.u32();
    c.attempt = r.u32();
    std::int32_t kind = r.i32();
    if (kind < 0 || kind > static_cast<std::int32_t>(ExitKind::kLost)) {
      out.resize(before);
      return malformed("completion kind");
    }
    c.kind = static_cast<ExitKind>(kind);
    c.code = r.i32();
    c.reason = r.str();
    c.started_us = r.i64();
    c.ended_us = r.i64();
    out.push_back(std::move(c));
  }
  if (!r.done()) {
    out.resize(before);
    return malformed("completions");
  }
  return {};
}

bool FrameBuffer::next(MsgType& type, std::string_view& payload, bool& bad) {
  bad = false;
  // Compact now and then so the buffer does not grow with the whole stream.
  if (pos_ > 0 && (pos_ == buf_.size() || pos_ > (1u << 16))) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  if (buf_.size() - pos_ < 5) return false;
  std::uint32_t len = 0;
  std::memcpy(&len, buf_.data() + pos_, sizeof len);
  if (len == 0 || len > kMaxFrame) {
    bad = true;
    return false;
  }
  if (buf_.size() - pos_ - 4 < len) return false;
  type = static_cast<MsgType>(static_cast<std::uint8_t>(buf_[pos_ + 4]));
  payload = std::string_view(buf_).substr(pos_ + 5, len - 1);
  pos_ += 4 + len;
  return true;
}

}  // namespace sluice::pilot
