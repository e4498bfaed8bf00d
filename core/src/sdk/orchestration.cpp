// Orchestrations in the coordinator: every call is a dynamic task hanging from the
// orchestration's own task (NAME), named NAME.call-SEQ-FUNCTION; now() and random() are
// journaled in RUN_DIR/orchestration.journal. A resumed run replays the coroutine from
// the start against both records.
#include "sdk/orchestration_driver.hpp"

#include "sdk/call_options.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string_view>

#include "sluice/engine/hdf5_codec.hpp"
#include "sluice/engine/sdk_definition.hpp"
#include "sluice/function_args.hpp"

namespace sluice {
namespace {

// The orchestration's own task: it does nothing, and every call is its child, so the
// graph shows them under it. Its key is kOrchestrationFunction (`sluice resume` refuses).
const auto kAnchor = task("sluice.orchestration", "1", [] {});
// The run's last task: holds the orchestration's value as its result (`results RUN`).
const auto kReturn = task("sluice.orchestration_return", "1", [](Value v) { return v; });

constexpr const char* kJournal = "/orchestration.journal";

std::string hash_hex(const std::string& s) {  // FNV-1a: enough to tell arguments apart
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string_view function_name(std::string_view key) {
  return key.substr(0, key.find('@'));
}

struct JournalEntry {
  std::string kind;  // "now" or "random"
  std::string value;
};

class Driver final : public OrchestrationDriver, private detail::Host {
 public:
  explicit Driver(const OrchestrationDef& def) : def_(def), ctx_(*this) {}
  // SLUICE_ORCH_PROFILE=1: the orchestration's own cost (the coroutine, replay checks,
  // adding tasks, reading results; not the tasks, nor the commits) on stderr, which is
  // what bench/orchestration_bench.sh reports per awaited call.
  ~Driver() override {
    if (std::getenv("SLUICE_ORCH_PROFILE") == nullptr || seq_ == 0) return;
    std::fprintf(stderr, "orchestration_profile calls=%llu own_us=%.1f per_call_us=%.2f\n",
                 static_cast<unsigned long long>(seq_), own_ns_ / 1e3,
                 own_ns_ / 1e3 / static_cast<double>(seq_));
  }

  void start(RunDriverHost& host) override {
    const Timer timer(own_ns_);
    host_ = &host;
    Workflow& wf = host.workflow();
    auto a = wf.index.find(def_.name);
    if (a == wf.index.end()) return stop("the run has no task '" + def_.name + "'");
    anchor_ = a->second;
    const std::string prefix = def_.name + ".call-";
    for (TaskId t = 0; t < wf.tasks.size(); ++t) {
      TaskSpec& s = wf.tasks[t];
      if (s.name.rfind(prefix, 0) != 0) continue;
      std::uint64_t seq = 0;
      const char* p = s.name.data() + prefix.size();
      auto [end, ec] = std::from_chars(p, s.name.data() + s.name.size(), seq);
      if (ec != std::errc() || seq == 0) continue;
      // A restored call keeps only its command (the worker invocation): in-process
      // backends need the function and its arguments back.
      if (s.function.empty() && s.command.size() >= 4 && s.command[1] == "__sluice_worker") {
        s.function = s.command[2];
        s.arguments = s.command[3];
      }
      recorded_[seq] = t;
    }
    if (auto r = wf.index.find(def_.name + ".return"); r != wf.index.end()) {
      TaskSpec& s = wf.tasks[r->second];
      if (s.function.empty() && s.command.size() >= 4) {
        s.function = s.command[2];
        s.arguments = s.command[3];
      }
      return_task_ = r->second;
    }
    read_journal(host.run_dir() + kJournal);
    root_.emplace(def_.body(ctx_));
    root_->start();
    check_done();
  }

  void on_attempt_ended(TaskId t, int exit_code, const std::string& reason) override {
    if (t <= anchor_) return;  // calls come after the orchestration's own task
    // A success says nothing settle() reads: kept out of the map (an insertion per call).
    if (exit_code == 0 && reason.empty()) {
      ended_.erase(t);
      return;
    }
    ended_[t] = {exit_code, reason};
  }

  bool wants_step(const RunDriverHost& host) const override {
    for (const auto& [t, s] : pending_)
      if (is_terminal(host.state(t))) return true;
    return false;
  }

  void step(RunDriverHost& host) override {
    const Timer timer(own_ns_);
    host_ = &host;
    std::vector<std::shared_ptr<detail::CallState>>& finished = finished_;
    for (std::size_t i = 0; i < pending_.size();) {
      auto& [t, s] = pending_[i];
      if (!is_terminal(host.state(t))) {
        ++i;
        continue;
      }
      settle(t, *s);
      finished.push_back(std::move(s));
      pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
    }
    for (auto& s : finished)
      if (!must_stop()) s->finish();  // resumes the coroutine
    finished.clear();
    check_done();
  }

  bool must_stop() const override { return !nondeterminism_.empty() || !failure_.empty(); }

  RunState final_state(RunState s) const override {
    if (must_stop()) return RunState::kFailed;
    if (s == RunState::kCancelled || !return_task_ || !host_) return s;
    return host_->state(*return_task_) == TaskState::kSucceeded ? RunState::kSucceeded
                                                                : RunState::kFailed;
  }

  const std::string& nondeterminism() const override { return nondeterminism_; }

 private:
  // detail::Host: where the coroutine's calls go.
  std::shared_ptr<detail::CallState> call(const std::string& function, std::string arguments,
                                          const CallOptions& o) override {
    TaskSpec s;
    s.function = function;
    s.arguments = std::move(arguments);
    s.version = function.substr(function.find('@') + 1);
    s.command = worker_command(program_, s.function, s.arguments);
    return issue(std::move(s), function_name(function), o, false);
  }

  std::shared_ptr<detail::CallState> command(std::vector<std::string> argv,
                                             const CallOptions& o) override {
    TaskSpec s;
    s.command = std::move(argv);
    return issue(std::move(s), "command", o, true);
  }

  std::int64_t now_us() override {
    const std::string v = journaled("now", [] {
      return std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count());
    });
    return std::strtoll(v.c_str(), nullptr, 10);
  }

  std::uint64_t random() override {
    const std::string v = journaled("random", [] {
      std::random_device rd;
      return std::to_string((std::uint64_t{rd()} << 32) | rd());
    });
    return std::strtoull(v.c_str(), nullptr, 10);
  }

  template <class Make>
  std::string journaled(const std::string& kind, Make make) {
    const std::uint64_t seq = ++seq_;
    if (auto it = journal_.find(seq); it != journal_.end()) {
      if (it->second.kind != kind)
        mismatch(seq, "ctx." + kind + "()", "ctx." + it->second.kind + "()");
      return it->second.value;
    }
    if (auto r = recorded_.find(seq); r != recorded_.end()) {
      mismatch(seq, "ctx." + kind + "()", "task '" + spec(r->second).name + "'");
      return "0";
    }
    JournalEntry e{kind, make()};
    append_journal(seq, e);
    journal_.emplace(seq, e);
    return e.value;
  }

  std::shared_ptr<detail::CallState> issue(TaskSpec s, std::string_view label, const CallOptions& o,
                                           bool is_command) {
    auto state = std::make_shared<detail::CallState>();
    const std::uint64_t seq = ++seq_;
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, seq).ptr;
    s.name.reserve(def_.name.size() + 7 + static_cast<std::size_t>(end - digits) + label.size());
    s.name.append(def_.name).append(".call-").append(digits, end).append(1, '-').append(label);
    state->task = s.name;
    if (must_stop()) return state;  // never done: the run is stopping
    if (journal_.count(seq) != 0) {
      mismatch(seq, "task '" + s.name + "'", "ctx." + journal_[seq].kind + "()");
      return state;
    }
    if (auto r = recorded_.find(seq); r != recorded_.end()) {
      const TaskSpec& was = spec(r->second);
      const bool same = was.name == s.name && was.function == s.function &&
                        (is_command ? was.command == s.command : was.arguments == s.arguments);
      if (!same) {
        mismatch(seq, describe(s, is_command),
                 "task '" + was.name + "': " + describe(was, is_command));
        return state;
      }
      track(r->second, state, is_command);
      return state;
    }
    if (seq <= last_recorded()) {  // a gap the record does not explain
      mismatch(seq, describe(s, is_command), "nothing");
      return state;
    }
    s.group = def_.name;
    apply_call_options(o, s);
    s.workdir = host_->workflow().base_dir;
    const TaskId t = host_->add_task(std::move(s), anchor_);
    track(t, state, is_command);
    return state;
  }

  // A call's task: settled at once when its outcome is known (a replayed success),
  // else watched until it finishes.
  void track(TaskId t, const std::shared_ptr<detail::CallState>& state, bool is_command) {
    if (is_command) commands_.insert(t);
    // Already finished (a replayed success, or a restored call that ran again and
    // ended before the replay reached it): no later step would wake the coroutine.
    if (is_terminal(host_->state(t))) {
      settle(t, *state);
      state->done = true;
      return;
    }
    pending_.emplace_back(t, state);
  }

  void settle(TaskId t, detail::CallState& s) {
    const bool is_command = commands_.count(t) != 0;
    const TaskState st = host_->state(t);
    auto ended = ended_.find(t);
    if (st == TaskState::kSucceeded) {
      // In memory when the backend still holds it (inproc), as committed: opening the
      // artifact was two thirds of the orchestration's own cost per call.
      if (auto held = is_command ? nullptr : host_->result_in_memory(t)) {
        s.value = *held;
      } else if (auto packed = host_->packed_values(t)) {
        if (is_command) {
          s.command.values = *packed;
        } else if (const Value* v = packed->find(kResultKey)) {
          s.value = *v;
        }
      } else if (auto reader = ArtifactReader::open(host_->artifact(t))) {
        if (is_command) {
          if (auto all = reader->get_all()) s.command.values = std::move(*all);
        } else if (reader->contains(kResultKey)) {
          if (auto v = reader->get(kResultKey)) s.value = std::move(*v);
        }
      } else if (!is_command && !function_returns_void(t)) {
        s.failed = true;
        s.error = "its result cannot be read: " + reader.error().message;
      }
    } else if (is_command && ended != ended_.end() && ended->second.first > 0) {
      s.command.exit_status = ended->second.first;
    } else {
      s.failed = true;
      s.error = ended != ended_.end() && !ended->second.second.empty()
                    ? ended->second.second
                    : "task is " + std::string(to_string(st));
    }
    if (ended != ended_.end()) ended_.erase(ended);
  }

  bool function_returns_void(TaskId t) const {
    const FunctionInfo* f = find_function(spec(t).function);
    return f != nullptr && f->returns_void;
  }

  // Once the coroutine ended: its value becomes the run's return task.
  void check_done() {
    if (!root_ || !root_->done() || done_handled_ || must_stop()) return;
    done_handled_ = true;
    Value v;
    try {
      v = root_->result();
    } catch (const std::exception& e) {
      return fail(e.what());
    } catch (...) {
      return fail("an exception that is not a std::exception");
    }
    if (last_recorded() > seq_) {
      const std::uint64_t seq = seq_ + 1;
      auto r = recorded_.find(seq);
      return mismatch(seq, "nothing (the orchestration returned)",
                      r != recorded_.end() ? "task '" + spec(r->second).name + "'"
                                           : "ctx." + journal_[seq].kind + "()");
    }
    std::vector<Argument> args(1);
    args[0].value = std::move(v);
    const std::string encoded = encode_arguments(args);
    if (return_task_) {
      if (spec(*return_task_).arguments != encoded)
        mismatch(seq_ + 1, "a return value with hash " + hash_hex(encoded),
                 "one with hash " + hash_hex(spec(*return_task_).arguments));
      return;
    }
    TaskSpec s;
    s.name = def_.name + ".return";
    s.group = def_.name;
    s.function = kReturn.key();
    s.version = kReturn.version();
    s.arguments = encoded;
    s.command = worker_command(program_, s.function, s.arguments);
    s.workdir = host_->workflow().base_dir;
    return_task_ = host_->add_task(std::move(s), anchor_);
  }

  std::string describe(const TaskSpec& s, bool is_command) const {
    if (is_command) {
      std::string argv;
      for (const auto& a : s.command) argv += (argv.empty() ? "" : " ") + a;
      return "command '" + argv + "'";
    }
    return s.function + " with arguments hash " + hash_hex(s.arguments);
  }

  void mismatch(std::uint64_t seq, const std::string& now, const std::string& was) {
    if (!nondeterminism_.empty()) return;
    nondeterminism_ = "orchestration '" + def_.name + "' did not replay its record: call " +
                      std::to_string(seq) + " is now " + now + ", but the run recorded " + was +
                      " (calls 1-" + std::to_string(seq - 1) +
                      " matched); orchestrations must decide only on their arguments, awaited "
                      "values, ctx.now() and ctx.random()";
    std::fprintf(stderr, "%s\n", nondeterminism_.c_str());
  }
  void fail(const std::string& why) {
    failure_ = "orchestration '" + def_.name + "' failed: " + why;
    std::fprintf(stderr, "%s\n", failure_.c_str());
  }
  void stop(const std::string& why) { fail(why); }

  const TaskSpec& spec(TaskId t) const { return host_->workflow().tasks[t]; }
  std::uint64_t last_recorded() const {
    std::uint64_t last = recorded_.empty() ? 0 : recorded_.rbegin()->first;
    if (!journal_.empty()) last = std::max(last, journal_.rbegin()->first);
    return last;
  }

  void read_journal(const std::string& path) {
    journal_path_ = path;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      std::uint64_t seq = 0;
      JournalEntry e;
      if (ls >> seq >> e.kind >> e.value) journal_[seq] = e;  // a torn last line is unused
    }
  }
  // Durable before the value is returned: fsync'd, so a replay after a crash of the
  // machine sees what the coroutine saw.
  void append_journal(std::uint64_t seq, const JournalEntry& e) {
    const int fd = ::open(journal_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return fail("cannot write " + journal_path_);
    const std::string line = std::to_string(seq) + " " + e.kind + " " + e.value + "\n";
    const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                    ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) fail("cannot write " + journal_path_);
  }

  struct Timer {
    explicit Timer(double& total) : total(total), t0(std::chrono::steady_clock::now()) {}
    ~Timer() {
      total +=
          std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    }
    double& total;
    std::chrono::steady_clock::time_point t0;
  };

  const OrchestrationDef& def_;
  Context ctx_;
  double own_ns_ = 0;
  const std::string program_ = this_program_name();  // read once: a readlink per call
  RunDriverHost* host_ = nullptr;
  TaskId anchor_ = 0;
  std::optional<Orchestration<Value>> root_;
  bool done_handled_ = false;
  std::uint64_t seq_ = 0;
  std::map<std::uint64_t, TaskId> recorded_;  // seq -> call task restored from the store
  std::map<std::uint64_t, JournalEntry> journal_;
  std::string journal_path_;
  std::vector<std::pair<TaskId, std::shared_ptr<detail::CallState>>> pending_;
  std::vector<std::shared_ptr<detail::CallState>> finished_;  // step()'s, kept for its capacity
  std::map<TaskId, std::pair<int, std::string>> ended_;       // last attempt: exit code, reason
  std::set<TaskId> commands_;
  std::optional<TaskId> return_task_;
  std::string nondeterminism_;
  std::string failure_;
};

}  // namespace

Flow OrchestrationDef::flow() const {
  Flow f(name, project);
  f.call(CallOptions{.name = name}, kAnchor);
  return f;
}

std::unique_ptr<OrchestrationDriver> make_orchestration_driver(const OrchestrationDef& def) {
  return std::make_unique<Driver>(def);
}

}  // namespace sluice
