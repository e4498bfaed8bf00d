#include "wire_codec.hpp"
#include "sluice/engine/wall_clock.hpp"

#include <signal.h>

#include <chrono>

namespace sluice::wire {

void Writer::str(std::string_view s) {
  u32(static_cast<std::uint32_t>(s.size()));
  raw(s.data(), s.size());
}

void Writer::strs(const std::vector<std::string>& v) {
  u32(static_cast<std::uint32_t>(v.size()));
  for (const auto& s : v) str(s);
}

void Writer::pairs(const std::vector<std::pair<std::string, std::string>>& v) {
  u32(static_cast<std::uint32_t>(v.size()));
  for (const auto& [k, val] : v) {
    str(k);
    str(val);
  }
}

std::string Reader::str() {
  std::uint32_t n = u32();
  if (!ok_ || n > bytes_.size() - pos_) {
    ok_ = false;
    return {};
  }
  std::string s(bytes_.substr(pos_, n));
  pos_ += n;
  return s;
}

std::vector<std::string> Reader::strs() {
  std::vector<std::string> v;
  std::uint32_t n = count();
  for (std::uint32_t i = 0; i < n && ok_; ++i) v.push_back(str());
  return v;
}

std::vector<std::pair<std::string, std::string>> Reader::pairs() {
  std::vector<std::pair<std::string, std::string>> v;
  std::uint32_t n = count();
  for (std::uint32_t i = 0; i < n && ok_; ++i) {
    std::string k = str();
    v.emplace_back(std::move(k), str());
  }
  return v;
}

std::uint32_t Reader::count() {
  std::uint32_t n = u32();
  if (ok_ && n > (bytes_.size() - pos_) / 4) ok_ = false;
  return ok_ ? n : 0;
}

tl::unexpected<Error> malformed(const char* protocol, const char* what) {
  return make_error(ErrorCode::kBackend,
                    std::string("malformed ") + protocol + " message: " + what);
}

std::string encode_launch(const LaunchRequest& request) {
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
  w.str(request.spool_dir);
  w.i32(spec.cpus);
  w.i32(spec.gpus);
  w.i64(spec.max_exec_time.count());
  return w.take();
}

Expected<Launch> decode_launch(std::string_view payload, const char* protocol) {
  Reader r(payload);
  Launch l;
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
  l.spool_dir = r.str();
  l.cpus = r.i32();
  l.gpus = r.i32();
  l.max_exec_ms = r.i64();
  if (!r.done()) return malformed(protocol, "launch");
  return l;
}

LaunchRequest to_launch_request(const Launch& l, TaskSpec& spec) {
  spec.name = l.name;
  spec.command = l.command;
  spec.shell = l.shell;
  spec.env = l.spec_env;
  spec.workdir = l.workdir;
  spec.cpus = l.cpus;
  spec.gpus = l.gpus;
  LaunchRequest req;
  req.task = l.task;
  req.attempt = l.attempt;
  req.spec = &spec;
  req.attempt_dir = l.attempt_dir;
  req.spool_dir = l.spool_dir;
  req.env = l.env;
  return req;
}

std::string encode_kill(TaskId task, std::uint32_t attempt) {
  Writer w;
  w.u32(task);
  w.u32(attempt);
  return w.take();
}

Expected<std::pair<TaskId, std::uint32_t>> decode_kill(std::string_view payload,
                                                       const char* protocol) {
  Reader r(payload);
  TaskId task = r.u32();
  std::uint32_t attempt = r.u32();
  if (!r.done()) return malformed(protocol, "kill");
  return std::pair{task, attempt};
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
    w.str(c.content_hash);  // of the values a function task wrote (else empty)
    w.str(c.log.spool);
    w.i64(static_cast<std::int64_t>(c.log.offset));
    w.i64(static_cast<std::int64_t>(c.log.length));
    w.i64(static_cast<std::int64_t>(c.log.out_bytes));
    w.i64(static_cast<std::int64_t>(c.log.err_bytes));
  }
  return w.take();
}

Expected<void> decode_completions(std::string_view payload, std::vector<Completion>& out,
                                  const char* protocol) {
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
      return malformed(protocol, "completion kind");
    }
    c.kind = static_cast<ExitKind>(kind);
    c.code = r.i32();
    c.reason = r.str();
    c.started_us = r.i64();
    c.ended_us = r.i64();
    c.content_hash = r.str();
    c.log.spool = r.str();
    c.log.offset = static_cast<std::uint64_t>(r.i64());
    c.log.length = static_cast<std::uint64_t>(r.i64());
    c.log.out_bytes = static_cast<std::uint64_t>(r.i64());
    c.log.err_bytes = static_cast<std::uint64_t>(r.i64());
    out.push_back(std::move(c));
  }
  if (!r.done()) {
    out.resize(before);
    return malformed(protocol, "completions");
  }
  return {};
}

Completion killed_before_start(TaskId task, std::uint32_t attempt, std::string reason,
                               std::string host) {
  Completion c;
  c.task = task;
  c.attempt = attempt;
  c.kind = ExitKind::kSignaled;
  c.code = SIGTERM;
  c.reason = std::move(reason);
  c.started_us = c.ended_us = wall_us();
  c.host = std::move(host);
  return c;
}

}  // namespace sluice::wire
