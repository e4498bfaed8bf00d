// The CLI driver: sbatch, squeue, scancel and scontrol, as a user would type them.
// Needs nothing at build time, so it is always available.
#include <charconv>
#include <sstream>

#include "slurm_driver.hpp"
#include "subprocess.hpp"

namespace sluice::slurm {
namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

std::string join(const std::vector<std::string>& v, char sep) {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

// "3:0" (exit code : signal) as scontrol and sacct print it.
void parse_exit(const std::string& text, JobStatus& st) {
  const auto colon = text.find(':');
  if (colon == std::string::npos) return;
  int code = 0, sig = 0;
  std::from_chars(text.data(), text.data() + colon, code);
  std::from_chars(text.data() + colon + 1, text.data() + text.size(), sig);
  st.exit_code = code;
  st.signal = sig;
}

class CliDriver final : public SlurmDriver {
 public:
  std::string name() const override { return "cli"; }

  Expected<std::string> submit(const SubmitRequest& request) override {
    // Every option is an #SBATCH line of the script: what runs is what a user would
    // resubmit by hand.
    auto r = run_process({"sbatch", "--parsable", request.script_path});
    if (r.status != 0)
      return make_error(ErrorCode::kBackend,
                        "sbatch failed: " + trim(r.err.empty() ? r.out : r.err));
    std::string id = trim(r.out);
    if (auto semi = id.find(';'); semi != std::string::npos) id.resize(semi);  // "id;cluster"
    if (id.empty()) return make_error(ErrorCode::kBackend, "sbatch printed no job id");
    return id;
  }

  Expected<std::map<std::string, JobStatus>> query(
      const std::vector<std::string>& base_ids) override {
    std::map<std::string, JobStatus> out;
    if (base_ids.empty()) return out;
    // -r: one line per array element, also for pending ones; -t all: finished jobs too
    // (until MinJobAge).
    auto r = run_process(
        {"squeue", "-h", "-r", "-t", "all", "-o", "%i|%T|%r|%A", "-j", join(base_ids, ',')});
    if (r.status != 0) {
      // squeue fails when *every* id is unknown (all purged): that is an empty answer.
      if (r.err.find("Invalid job id") != std::string::npos) return out;
      return make_error(ErrorCode::kBackend, "squeue failed: " + trim(r.err));
    }
    std::istringstream in(r.out);
    std::string line;
    while (std::getline(in, line)) {
      const auto a = line.find('|');
      const auto b = line.find('|', a + 1);
      if (a == std::string::npos || b == std::string::npos) continue;
      JobStatus st;
      st.state = line.substr(a + 1, b - a - 1);
      const auto c = line.find('|', b + 1);
      st.reason = line.substr(b + 1, c == std::string::npos ? c : c - b - 1);
      if (c != std::string::npos) st.raw_id = line.substr(c + 1);
      out[line.substr(0, a)] = std::move(st);
    }
    // squeue shows no exit codes: ask scontrol for the few failed ones.
    for (auto& [key, st] : out) {
      if (st.state != "FAILED" && st.state != "OUT_OF_MEMORY") continue;
      auto s = run_process({"scontrol", "show", "job", "-o", key});
      const auto pos = s.out.find(" ExitCode=");
      if (pos != std::string::npos)
        parse_exit(s.out.substr(pos + 10, s.out.find(' ', pos + 10) - pos - 10), st);
    }
    return out;
  }

  void cancel(const std::vector<std::string>& keys) override {
    if (keys.empty()) return;
    std::vector<std::string> argv{"scancel", "--quiet"};
    argv.insert(argv.end(), keys.begin(), keys.end());
    run_process(argv);
  }

  int max_array_size() override {
    if (max_array_ > 0) return max_array_;
    auto r = run_process({"scontrol", "show", "config"});
    std::istringstream in(r.out);
    std::string line;
    max_array_ = 1001;  // Slurm's default
    while (std::getline(in, line)) {
      if (line.rfind("MaxArraySize", 0) != 0) continue;
      const auto eq = line.find('=');
      if (eq != std::string::npos) max_array_ = std::atoi(line.c_str() + eq + 1);
    }
    return max_array_;
  }

 private:
  int max_array_ = 0;
};

}  // namespace

std::unique_ptr<SlurmDriver> make_cli_driver() {
  return std::make_unique<CliDriver>();
}

std::map<std::string, JobStatus> completed_jobs_from_sacct(const std::vector<std::string>& ids) {
  std::map<std::string, JobStatus> out;
  if (ids.empty()) return out;
  auto r =
      run_process({"sacct", "-c", "-n", "-P", "-o", "jobid,state,exitcode", "-j", join(ids, ',')});
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    const auto a = line.find('|');
    const auto b = line.find('|', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    JobStatus st;
    st.state = line.substr(a + 1, b - a - 1);
    if (auto sp = st.state.find(' '); sp != std::string::npos)
      st.state.resize(sp);  // "CANCELLED by 0"
    parse_exit(line.substr(b + 1), st);
    out[line.substr(0, a)] = std::move(st);  // a later line (a requeue) wins
  }
  return out;
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

}  // namespace sluice::slurm
