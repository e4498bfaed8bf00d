#include "slurm_parse.hpp"

#include "sluice/engine/printable.hpp"

#include <charconv>
#include <sstream>
#include <vector>

namespace sluice::slurm {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out.push_back(line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return out;
}

std::vector<std::string_view> split(std::string_view line, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    const auto at = line.find(sep);
    out.push_back(line.substr(0, at));
    if (at == std::string_view::npos) return out;
    line.remove_prefix(at + 1);
  }
}

// "3:0" (exit code : signal) as scontrol and sacct print it.
bool parse_exit(std::string_view text, JobStatus& st) {
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  int code = 0, sig = 0;
  const auto a = std::from_chars(text.data(), text.data() + colon, code);
  const auto b = std::from_chars(text.data() + colon + 1, text.data() + text.size(), sig);
  if (a.ec != std::errc() || b.ec != std::errc() || a.ptr != text.data() + colon) return false;
  st.exit_code = code;
  st.signal = sig;
  return true;
}

bool contains(std::string_view text, std::string_view what) {
  return text.find(what) != std::string_view::npos;
}

}  // namespace

std::string quote_output(std::string_view text, std::size_t max) {
  if (text.size() <= max) return "'" + printable(text) + "'";
  return "'" + printable(text.substr(0, max)) + "...' (" + std::to_string(text.size()) + " bytes)";
}

Expected<std::string> parse_sbatch_output(std::string_view out) {
  const std::string_view text = trim(out);
  auto bad = [&] {
    return make_error(ErrorCode::kBackend, text.empty()
                                               ? std::string("sbatch printed no job id")
                                               : "sbatch printed no job id: unexpected output " +
                                                     quote_output(text, 200));
  };
  if (text.find('\n') != std::string_view::npos) return bad();
  std::string_view id = text;
  constexpr std::string_view kPrefix = "Submitted batch job ";
  if (id.substr(0, kPrefix.size()) == kPrefix) {
    id.remove_prefix(kPrefix.size());
    if (const auto sp = id.find(' '); sp != std::string_view::npos) {
      if (id.substr(sp, 12) != " on cluster ") return bad();
      id = id.substr(0, sp);
    }
  } else if (const auto semi = id.find(';'); semi != std::string_view::npos) {
    if (trim(id.substr(semi + 1)).empty()) return bad();
    id = id.substr(0, semi);  // --parsable on a federation: "id;cluster"
  }
  if (!all_digits(id)) return bad();
  return std::string(id);
}

std::map<std::string, JobStatus> parse_squeue(std::string_view out) {
  std::map<std::string, JobStatus> jobs;
  for (std::string_view line : lines_of(out)) {
    const auto f = split(line, '|');
    if (f.size() != 4 || trim(f[0]).empty() || trim(f[1]).empty()) continue;
    JobStatus st;
    st.state = trim(f[1]);
    st.reason = trim(f[2]);
    st.raw_id = trim(f[3]);
    jobs[std::string(trim(f[0]))] = std::move(st);
  }
  return jobs;
}

bool is_unknown_job_error(std::string_view err) {
  return contains(err, "Invalid job id");
}

bool apply_scontrol_exit_code(std::string_view out, JobStatus& status) {
  // -o: one line of KEY=VALUE fields separated by spaces; DerivedExitCode= must not match.
  for (std::string_view line : lines_of(out)) {
    for (std::string_view field : split(line, ' ')) {
      if (field.substr(0, 9) == "ExitCode=") return parse_exit(field.substr(9), status);
    }
  }
  return false;
}

int parse_max_array_size(std::string_view out, int fallback) {
  for (std::string_view line : lines_of(out)) {
    if (line.substr(0, 12) != "MaxArraySize") continue;
    const auto eq = line.find('=');
    if (eq == std::string_view::npos || trim(line.substr(0, eq)) != "MaxArraySize") continue;
    const std::string_view v = trim(line.substr(eq + 1));
    int n = 0;
    const auto r = std::from_chars(v.data(), v.data() + v.size(), n);
    if (r.ec == std::errc() && r.ptr == v.data() + v.size() && n > 0) return n;
    return fallback;
  }
  return fallback;
}

std::map<std::string, JobStatus> parse_sacct(std::string_view out) {
  std::map<std::string, JobStatus> jobs;
  for (std::string_view line : lines_of(out)) {
    const auto f = split(line, '|');
    if (f.size() < 3 || trim(f[0]).empty()) continue;
    JobStatus st;
    std::string_view state = trim(f[1]);
    state = state.substr(0, state.find(' '));  // "CANCELLED by 0"
    st.state = state;
    parse_exit(trim(f[2]), st);
    jobs[std::string(trim(f[0]))] = std::move(st);  // a later line (a requeue) wins
  }
  return jobs;
}

bool is_connect_failure(std::string_view err) {
  return contains(err, "Unable to contact slurm controller") ||
         contains(err, "Connection refused") || contains(err, "connect failure");
}

bool is_transient_error(std::string_view err) {
  return is_connect_failure(err) || contains(err, "Socket timed out on send/recv") ||
         contains(err, "Zero Bytes were transmitted or received") ||
         contains(err, "temporarily unable") || contains(err, "Resource temporarily unavailable");
}

std::vector<std::uint32_t> expand_array_indexes(const std::string& expr) {
  std::vector<std::uint32_t> out;
  std::string body = expr.substr(0, expr.find('%'));
  if (!body.empty() && body.front() == '[') body = body.substr(1, body.find(']') - 1);
  std::istringstream in(body);
  std::string part;
  while (std::getline(in, part, ',')) {
    std::uint32_t lo = 0, hi = 0, step = 1;
    const char* p = part.data();
    const char* end = p + part.size();
    auto r = std::from_chars(p, end, lo);
    hi = lo;
    if (r.ptr < end && *r.ptr == '-') r = std::from_chars(r.ptr + 1, end, hi);
    if (r.ptr < end && *r.ptr == ':') std::from_chars(r.ptr + 1, end, step);
    if (step == 0) step = 1;
    for (std::uint32_t i = lo; i <= hi && out.size() < 10'000'000; i += step) out.push_back(i);
  }
  return out;
}

std::map<std::string, std::string> parse_squeue_commands(std::string_view out) {
  std::map<std::string, std::string> jobs;
  for (std::string_view line : lines_of(out)) {
    const auto bar = line.find('|');
    if (bar == std::string_view::npos) continue;
    const std::string_view key = trim(line.substr(0, bar));
    const std::string_view base = key.substr(0, key.find('_'));
    if (!all_digits(base)) continue;
    jobs[std::string(key)] = std::string(trim(line.substr(bar + 1)));
  }
  return jobs;
}

}  // namespace sluice::slurm
