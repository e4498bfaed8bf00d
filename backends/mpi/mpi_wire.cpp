#include "mpi_wire.hpp"

#include <cstring>

namespace sluice::mpi {
namespace {

class Writer {
 public:
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
  std::vector<char> take() { return std::move(buf_); }

 private:
  // x86-64 and aarch64 are little-endian; ranks of one job share the architecture.
  void raw(const void* p, std::size_t n) {
    const char* c = static_cast<const char*>(p);
    buf_.insert(buf_.end(), c, c + n);
  }
  std::vector<char> buf_;
};

class Reader {
 public:
  explicit Reader(std::span<const char> bytes) : bytes_(bytes) {}
  bool ok() const { return ok_; }
  bool at_end() const { return pos_ == bytes_.size(); }

  std::uint32_t u32() { return fixed<std::uint32_t>(); }
  std::int32_t i32() { return fixed<std::int32_t>(); }
  std::int64_t i64() { return fixed<std::int64_t>(); }
  std::string str() {
    std::uint32_t n = u32();
    if (!ok_ || n > bytes_.size() - pos_) {
      ok_ = false;
      return {};
    }
    std::string s(bytes_.data() + pos_, n);
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
  std::span<const char> bytes_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

tl::unexpected<Error> malformed(const char* what) {
  return make_error(ErrorCode::kBackend, std::string("malformed MPI message: ") + what);
}

}  // namespace

std::vector<char> encode_launch(const LaunchRequest& request) {
  const TaskSpec& spec = *request.spec;
  Writer w;
  w.u32(request.task);
  w.u32(request.attempt);
  w.str(spec.name);
  w.strs(request.command ? *request.command : spec.command);
  w.str(request.shell ? *request.shell : spec.shell);
  w.str(spec.function);
  w.str(spec.arguments);
  w.pairs(spec.env);
  w.pairs(request.env);
  w.str(spec.workdir);
  w.str(request.attempt_dir);
  w.i32(spec.cpus);
  w.i32(spec.gpus);
  return w.take();
}

Expected<WireLaunch> decode_launch(std::span<const char> bytes) {
  Reader r(bytes);
  WireLaunch l;
  l.task = r.u32();
  l.attempt = r.u32();
  l.name = r.str();
  l.command = r.strs();
  l.shell = r.str();
  l.function = r.str();
  l.arguments = r.str();
  l.spec_env = r.pairs();
  l.env = r.pairs();
  l.workdir = r.str();
  l.attempt_dir = r.str();
  l.cpus = r.i32();
  l.gpus = r.i32();
  if (!r.ok() || !r.at_end()) return malformed("launch");
  return l;
}

std::vector<char> encode_hello(const WireHello& hello) {
  Writer w;
  w.str(hello.host);
  w.i32(hello.cpus);
  w.strs(hello.gpu_ids);
  w.i32(hello.node_rank);
  return w.take();
}

Expected<WireHello> decode_hello(std::span<const char> bytes) {
  Reader r(bytes);
  WireHello h;
  h.host = r.str();
  h.cpus = r.i32();
  h.gpu_ids = r.strs();
  h.node_rank = r.i32();
  if (!r.ok() || !r.at_end()) return malformed("hello");
  return h;
}

std::vector<char> encode_kill(TaskId task, std::uint32_t attempt) {
  Writer w;
  w.u32(task);
  w.u32(attempt);
  return w.take();
}

Expected<std::pair<TaskId, std::uint32_t>> decode_kill(std::span<const char> bytes) {
  Reader r(bytes);
  TaskId task = r.u32();
  std::uint32_t attempt = r.u32();
  if (!r.ok() || !r.at_end()) return malformed("kill");
  return std::pair{task, attempt};
}

std::vector<char> encode_completions(std::span<const Completion> completions) {
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
    w.str(c.content_hash);
  }
  return w.take();
}

Expected<void> decode_completions(std::span<const char> bytes, std::vector<Completion>& out) {
  Reader r(bytes);
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
    c.content_hash = r.str();
    out.push_back(std::move(c));
  }
  if (!r.ok() || !r.at_end()) {
    out.resize(before);
    return malformed("completions");
  }
  return {};
}

}  // namespace sluice::mpi
