#include "slurm_backend.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "driver_choice.hpp"
#include "job_script.hpp"
#include "sluice/duration.hpp"
#include "sluice/engine/attempt_logs.hpp"
#include "sluice/engine/host_info.hpp"
#include "sluice/engine/wall_clock.hpp"
#include "slurm_driver.hpp"
#include "submit_log.hpp"

namespace sluice {
namespace {

using Clock = std::chrono::steady_clock;
using slurm::JobStatus;
using slurm::SubmitRequest;

// The directory of the running sluice binary: first on every job's PATH, so that tasks
// calling `sluice put` get the same binary as the coordinator.
std::string exe_dir() {
  std::string dir = self_directory();
  return dir.empty() ? "/usr/local/bin" : dir;
}

// The status the job's script recorded at the end of its stderr, or -1. Only the tail is
// read: the record is the last line, unless the coordinator appended an attempt's cut
// reason (at most a few KiB) after it. Older homes kept it in DIR/exit_status.
int read_exit_status(const std::string& dir) {
  constexpr off_t kTail = 64 << 10;
  const int fd = ::open((dir + "/stderr").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    struct stat st;
    std::string tail;
    if (::fstat(fd, &st) == 0 && st.st_size > 0) {
      const off_t from = st.st_size > kTail ? st.st_size - kTail : 0;
      tail.resize(static_cast<std::size_t>(st.st_size - from));
      const ssize_t n = ::pread(fd, tail.data(), tail.size(), from);
      tail.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    }
    ::close(fd);
    if (int code = find_exit_trailer(tail); code >= 0) return code;
  }
  std::ifstream in(dir + "/exit_status");
  int code = -1;
  if (!(in >> code)) return -1;
  return code;
}

// Array scripts hold every element's body: past this many bytes an array is split, well
// below Slurm's default max_script_size of 4 MB.
constexpr std::size_t kMaxArrayScriptBytes = 1 << 20;

std::string run_dir_of(const std::string& attempt_dir) {
  const auto pos = attempt_dir.rfind("/tasks/");
  return pos == std::string::npos ? attempt_dir : attempt_dir.substr(0, pos);
}

bool is_final(const std::string& state) {
  return state != "PENDING" && state != "RUNNING" && state != "COMPLETING" &&
         state != "CONFIGURING" && state != "SUSPENDED" && state != "REQUEUED";
}

std::string base_of(const std::string& key) {
  return key.substr(0, key.find('_'));
}

struct Options {
  std::string driver = "auto";
  SubmitRequest placement;  // partition, account, qos, constraint, reservation, extra
  std::map<std::string, std::string> executor_partition;
  std::size_t max_queued = 1000;
  Millis poll_interval{1000};
  slurm::CommandPolicy commands;  // the CLI tools' deadline and retries
  bool arrays = true;
  int array_throttle = 0;
  int cpus = 1 << 20;  // the cluster decides; the scheduler only needs an upper bound
  int gpus = 1 << 20;
};

Expected<Options> parse_options(const BackendOptions& in) {
  Options o;
  if (in.cpus > 0) o.cpus = in.cpus;
  if (in.gpus >= 0) o.gpus = in.gpus;
  auto bad = [](const std::string& k, const std::string& v, const std::string& why) {
    return make_error(ErrorCode::kInvalidInput, "slurm backend option " + k + "=" + v + ": " + why);
  };
  for (const auto& [k, v] : in.extra) {
    if (k == "driver") {
      if (v != "auto" && v != "libslurm" && v != "cli")
        return bad(k, v, "use auto, libslurm or cli");
      o.driver = v;
    } else if (parse_placement_option(k, v, o.placement)) {
      // partition, account, qos, constraint, reservation, sbatch
    } else if (k.rfind("executor.", 0) == 0) {
      o.executor_partition[k.substr(9)] = v;
    } else if (k == "max_queued") {
      auto n = parse_option_int(v);
      if (!n || *n < 1) return bad(k, v, "not a positive number");
      o.max_queued = static_cast<std::size_t>(*n);
    } else if (k == "array_throttle") {
      auto n = parse_option_int(v);
      if (!n || *n < 0 || *n > (1 << 30)) return bad(k, v, "not a number");
      o.array_throttle = static_cast<int>(*n);
    } else if (k == "arrays") {
      if (v != "on" && v != "off") return bad(k, v, "use on or off");
      o.arrays = v == "on";
    } else if (k == "poll_interval") {
      auto d = parse_duration(v);
      if (!d || d->count() <= 0) return bad(k, v, "not a duration (use 500ms, 2s)");
      o.poll_interval = *d;
    } else if (k == "command_timeout") {
      auto d = parse_duration(v);
      if (!d || d->count() <= 0) return bad(k, v, "not a duration (use 30s, 2m)");
      o.commands.timeout = *d;
    } else {
      return make_error(ErrorCode::kInvalidInput,
                        "unknown slurm backend option '" + k +
                            "' (known: driver, partition, account, qos, constraint, "
                            "reservation, sbatch, executor.LABEL, max_queued, poll_interval, "
                            "command_timeout, arrays, array_throttle)");
    }
  }
  return o;
}

class SlurmBackend final : public Backend {
 public:
  SlurmBackend(Options o, std::unique_ptr<slurm::SlurmDriver> driver, std::string why)
      : o_(std::move(o)),
        driver_(std::move(driver)),
        why_(std::move(why)),
        path_first_(exe_dir()) {}

  std::string name() const override { return "slurm"; }

  std::string describe() const override { return "driver " + driver_->name() + ": " + why_; }

  Capacity capacity() const override {
    Capacity c;
    c.cpus = o_.cpus;
    c.gpus = o_.gpus;
    c.enforces_exec_time = true;  // --time
    return c;
  }

  Expected<std::string> launch(const LaunchRequest& request) override {
    return std::move(launch_batch(std::span<const LaunchRequest>(&request, 1)).front());
  }

  std::vector<Expected<std::string>> launch_batch(
      std::span<const LaunchRequest> requests) override {
    std::vector<Expected<std::string>> results(requests.size(), std::string());
    std::vector<Pending> ready;
    std::vector<std::size_t> index;
    for (std::size_t i = 0; i < requests.size(); ++i) {
      auto p = prepare(requests[i]);
      if (!p) {
        results[i] = tl::unexpected(p.error());
        continue;
      }
      // Beyond max_queued, requests wait in the backend (behind those already waiting).
      if (!held_.empty() || live_.size() + ready.size() >= o_.max_queued) {
        results[i] = "slurm:held:" + p->dir;
        held_.push_back(std::move(*p));
        continue;
      }
      ready.push_back(std::move(*p));
      index.push_back(i);
    }
    auto keys = submit(ready);
    for (std::size_t k = 0; k < ready.size(); ++k) {
      if (keys[k])
        results[index[k]] = "slurm:" + *keys[k] + ":" + ready[k].dir;
      else
        results[index[k]] = tl::unexpected(keys[k].error());
    }
    return results;
  }

  void poll(std::vector<Completion>& out, std::chrono::milliseconds timeout) override {
    if (!to_cancel_.empty()) {
      driver_->cancel(to_cancel_);
      for (const auto& key : to_cancel_)
        if (auto it = live_.find(key); it != live_.end()) it->second.cancel_requested = true;
      to_cancel_.clear();
    }
    if (done_.empty()) {
      if (live_.empty() && held_.empty()) {
        std::this_thread::sleep_for(timeout);
        return;
      }
      const auto now = Clock::now();
      if (now < next_query_) {
        std::this_thread::sleep_for(std::min<Clock::duration>(timeout, next_query_ - now));
        if (Clock::now() < next_query_) return;
      }
      next_query_ = Clock::now() + o_.poll_interval;
      refresh();
      release_held();
    }
    for (auto& c : done_) out.push_back(std::move(c));
    done_.clear();
  }

  void kill(TaskId task, std::uint32_t attempt) override {
    auto it = by_attempt_.find({task, attempt});
    if (it != by_attempt_.end()) {
      to_cancel_.push_back(it->second);  // one scancel for all kills of a step, in poll()
      return;
    }
    for (auto h = held_.begin(); h != held_.end(); ++h) {
      if (h->task != task || h->attempt != attempt) continue;
      Completion c;
      c.task = task;
      c.attempt = attempt;
      c.kind = ExitKind::kSignaled;
      c.code = 15;
      c.reason = "cancelled before it was submitted";
      c.started_us = c.ended_us = wall_us();
      done_.push_back(std::move(c));
      held_.erase(h);
      return;
    }
  }

  std::string unrecorded_handle(const std::string& attempt_dir) override {
    if (!submission_of(attempt_dir)) return {};  // sbatch never ran
    return "slurm:held:" + attempt_dir;
  }

  void set_stopping_check(std::function<bool()> stopping) override {
    o_.commands.stopping = stopping;
    driver_->set_stopping_check(std::move(stopping));
  }

  std::size_t in_flight() const override { return live_.size() + held_.size() + done_.size(); }

  void abandon(const std::string& handle) override {
    auto [key, dir] = parse_handle(handle);
    if (!key.empty()) driver_->cancel({key});
  }

  bool reattach(const std::string& handle, TaskId task, std::uint32_t attempt) override {
    auto [key, dir] = parse_handle(handle);
    if (key.empty()) {
      // Submitted (its intent says so) and already forgotten by slurmctld: it ran, and
      // its exit status is all there is to report. Otherwise never submitted: run again.
      const int code = dir.empty() ? -1 : read_exit_status(dir);
      if (code < 0 || !submission_of(dir)) return false;
      Job j;
      j.task = task;
      j.attempt = attempt;
      j.dir = dir;
      finish(j, ExitKind::kExited, code, {});
      return true;
    }
    Job j;
    j.task = task;
    j.attempt = attempt;
    j.key = key;
    j.dir = dir;
    j.submitted = Clock::now();
    by_attempt_[{task, attempt}] = key;
    live_.emplace(key, std::move(j));
    return true;
  }

 private:
  // An attempt whose script is made, not yet submitted.
  struct Pending {
    TaskId task = 0;
    std::uint32_t attempt = 0;
    std::string dir;
    std::string run_id;
    std::string group;  // the task's [tasks.NAME]
    SubmitRequest job;  // for this attempt alone
    std::string body;   // what the attempt runs (job.script without its #SBATCH lines)
    std::string key;    // what must match for attempts to share an array
    Millis max_wait{0};
  };
  // A submitted attempt (plain job or array element) not yet reported.
  struct Job {
    TaskId task = 0;
    std::uint32_t attempt = 0;
    std::string key;  // "123" or "123_4"
    std::string dir;
    std::string raw_id;  // the element's own job id once seen (sacct lists arrays by it)
    Millis max_wait{0};
    Clock::time_point submitted;
    std::int64_t started_us = 0;
    std::string pending_reason = "None";
    bool wait_expired = false;
    bool cancel_requested = false;  // kill() was sent on as scancel
    int missing = 0;                // polls in a row in which the cluster did not list it
  };

  // The run's submission log of the run that attempt directory `dir` belongs to.
  slurm::SubmitLog& log_of(const std::string& dir) {
    const std::string run = run_dir_of(dir);
    auto it = logs_.find(run);
    if (it == logs_.end()) it = logs_.emplace(run, std::make_unique<slurm::SubmitLog>(run)).first;
    return *it->second;
  }

  // What the run recorded about the submission of attempt `dir` (in its run's log, or in
  // the attempt directory of an older home); nullopt when sbatch never ran for it.
  std::optional<slurm::Submission> submission_of(const std::string& dir) {
    if (const slurm::Submission* s = log_of(dir).find(dir); s && !s->name.empty()) {
      slurm::Submission out = *s;
      if (out.key.empty())
        if (auto legacy = slurm::read_legacy_submission(dir)) out.key = legacy->key;
      return out;
    }
    return slurm::read_legacy_submission(dir);
  }

  // "slurm:KEY:DIR" -> {KEY, DIR}; "slurm:held:DIR" -> the key the attempt was submitted
  // under later (in the run's log, or found by its intent), or "" when it never was.
  std::pair<std::string, std::string> parse_handle(const std::string& handle) {
    if (handle.rfind("slurm:", 0) != 0) return {};
    const auto colon = handle.find(':', 6);
    std::string key = handle.substr(6, colon == std::string::npos ? colon : colon - 6);
    std::string dir = colon == std::string::npos ? "" : handle.substr(colon + 1);
    if (key == "held") {
      key.clear();
      if (auto s = submission_of(dir)) {
        key = s->key;
        if (key.empty()) key = slurm::find_submitted_job(*driver_, *s, dir);
        if (!key.empty() && s->key.empty()) log_of(dir).record_keys({dir}, {key});
      }
    }
    return {key, dir};
  }

  Expected<Pending> prepare(const LaunchRequest& req) {
    const TaskSpec& spec = *req.spec;
    Pending p;
    p.task = req.task;
    p.attempt = req.attempt;
    p.dir = req.attempt_dir;
    p.group = spec.group.empty() ? spec.name : spec.group;
    p.max_wait = spec.max_wait_time;
    for (const auto& [k, v] : req.env)
      if (k == "SLUICE_RUN_ID") p.run_id = v;
    SubmitRequest& j = p.job;
    j = o_.placement;
    if (auto it = o_.executor_partition.find(spec.executor); it != o_.executor_partition.end())
      j.partition = it->second;
    for (const auto& [k, v] : spec.slurm) {
      if (k == "partition") j.partition = v;
      if (k == "account") j.account = v;
      if (k == "qos") j.qos = v;
      if (k == "constraint") j.constraint = v;
      if (k == "reservation") j.reservation = v;
    }
    j.extra.insert(j.extra.end(), spec.slurm_extra.begin(), spec.slurm_extra.end());
    j.name = "sluice:" + p.run_id + ":" + spec.name;
    // Tells this submission from the task's other attempts, which share its name.
    j.comment = "sluice:" + spec.name + "/" + std::to_string(req.attempt);
    j.workdir = spec.workdir;
    j.output = p.dir + "/stdout";
    j.error = p.dir + "/stderr";
    j.cpus = spec.cpus;
    j.gpus = spec.gpus;
    j.mem_mib = spec.memory_mib;
    const auto ms = spec.max_exec_time.count();
    j.time_min = static_cast<int>((ms + 59'999) / 60'000);
    for (const auto& opt : slurm::resource_options(j)) p.key += opt + "\n";
    p.key += j.workdir;
    p.body = slurm::attempt_body(req, j, path_first_);
    return p;
  }

  // Submits `batch`, grouped into arrays where allowed; one job key per entry.
  std::vector<Expected<std::string>> submit(std::vector<Pending>& batch) {
    std::vector<Expected<std::string>> keys(batch.size(), std::string());
    std::map<std::string, std::vector<std::size_t>> groups;  // ordered: deterministic
    std::vector<std::string> order;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      auto [it, fresh] = groups.try_emplace(batch[i].key);
      if (fresh) order.push_back(batch[i].key);
      it->second.push_back(i);
    }
    for (const auto& g : order) {
      const auto& members = groups[g];
      if (!o_.arrays || members.size() == 1) {
        for (std::size_t i : members) keys[i] = submit_one(batch[i]);
        continue;
      }
      const std::size_t chunk = static_cast<std::size_t>(std::max(1, driver_->max_array_size()));
      for (std::size_t from = 0, to = 0; from < members.size(); from = to) {
        std::size_t bytes = 0;
        for (to = from;
             to < members.size() && to - from < chunk &&
             (to == from || bytes + batch[members[to]].body.size() <= kMaxArrayScriptBytes);
             ++to)
          bytes += batch[members[to]].body.size();
        std::vector<std::size_t> part(members.begin() + static_cast<std::ptrdiff_t>(from),
                                      members.begin() + static_cast<std::ptrdiff_t>(to));
        if (part.size() == 1) {
          keys[part[0]] = submit_one(batch[part[0]]);
          continue;
        }
        auto ids = submit_array(batch, part);
        for (std::size_t k = 0; k < part.size(); ++k) keys[part[k]] = ids[k];
      }
    }
    return keys;
  }

  Expected<std::string> submit_one(Pending& p) {
    p.job.script = slurm::attempt_script(p.job, p.body);
    slurm::SubmitLog& log = log_of(p.dir);
    log.record_intent(p.job, {p.dir});
    auto id = driver_->submit(p.job);
    if (!id) return id;
    log.record_keys({p.dir}, {*id});
    watch(p, *id);
    return id;
  }

  std::vector<Expected<std::string>> submit_array(const std::vector<Pending>& batch,
                                                  const std::vector<std::size_t>& part) {
    const Pending& first = batch[part[0]];
    SubmitRequest a = first.job;
    a.name = "sluice:" + first.run_id + ":" + first.group;
    // %A_%a cannot name per-attempt directories: the script redirects into them itself,
    // before anything else runs, so Slurm's own file per element would stay empty.
    a.output = "/dev/null";
    a.error = a.output;
    a.array = "0-" + std::to_string(part.size() - 1);
    if (o_.array_throttle > 0) a.array += "%" + std::to_string(o_.array_throttle);
    std::vector<std::string> dirs, bodies;
    for (std::size_t i : part) {
      dirs.push_back(batch[i].dir);
      bodies.push_back(batch[i].body);
    }
    a.script = slurm::array_script(a, dirs, bodies);
    slurm::SubmitLog& log = log_of(first.dir);
    log.record_intent(a, dirs);
    auto id = driver_->submit(a);
    std::vector<Expected<std::string>> out;
    std::vector<std::string> keys;
    for (std::size_t k = 0; k < part.size(); ++k) {
      if (!id) {
        out.push_back(tl::unexpected(id.error()));
        continue;
      }
      std::string key = *id + "_" + std::to_string(k);
      watch(batch[part[k]], key);
      keys.push_back(key);
      out.push_back(std::move(key));
    }
    if (id) log.record_keys(dirs, keys);
    return out;
  }

  void watch(const Pending& p, const std::string& key) {
    Job j;
    j.task = p.task;
    j.attempt = p.attempt;
    j.key = key;
    j.dir = p.dir;
    j.max_wait = p.max_wait;
    j.submitted = Clock::now();
    by_attempt_[{p.task, p.attempt}] = key;
    live_.emplace(key, std::move(j));
  }

  void release_held() {
    if (held_.empty() || live_.size() >= o_.max_queued) return;
    std::vector<Pending> batch;
    while (!held_.empty() && live_.size() + batch.size() < o_.max_queued) {
      batch.push_back(std::move(held_.front()));
      held_.pop_front();
    }
    auto keys = submit(batch);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (keys[i]) continue;
      Completion c;
      c.task = batch[i].task;
      c.attempt = batch[i].attempt;
      c.kind = ExitKind::kLaunchFailed;
      c.code = -1;
      c.reason = keys[i].error().message;
      c.started_us = c.ended_us = wall_us();
      done_.push_back(std::move(c));
    }
  }

  void refresh() {
    std::set<std::string> bases;
    for (const auto& [key, j] : live_) bases.insert(base_of(key));
    auto status = driver_->query({bases.begin(), bases.end()});
    if (!status) {
      unanswered(status.error().message);
      return;
    }
    if (failed_queries_ > 0)
      std::fprintf(stderr, "sluice: slurm: the cluster answers again (after %d failed queries)\n",
                   failed_queries_);
    failed_queries_ = 0;
    std::vector<std::string> finished;
    std::vector<std::string> ask_sacct;
    for (auto& [key, j] : live_) {
      auto it = status->find(key);
      // An array cancelled while pending is one record under the array's id.
      if (it == status->end() && key.find('_') != std::string::npos) {
        it = status->find(base_of(key));
        if (it != status->end() && !is_final(it->second.state)) it = status->end();
      }
      if (it != status->end()) {
        j.missing = 0;
        if (!it->second.raw_id.empty()) j.raw_id = it->second.raw_id;
        if (observe(j, it->second)) finished.push_back(key);
        continue;
      }
      // Gone from slurmctld (MinJobAge) or not listed yet: the job's own record first.
      if (int code = read_exit_status(j.dir); code >= 0) {
        finish(j, ExitKind::kExited, code, {});
        finished.push_back(key);
      } else if (++j.missing >= 2) {
        ask_sacct.push_back(j.raw_id.empty() ? key : j.raw_id);
      }
    }
    if (!ask_sacct.empty()) {
      auto old = slurm::completed_jobs_from_sacct(ask_sacct, o_.commands);
      for (auto& [key, j] : live_) {
        if (j.missing < 2) continue;
        auto it = old.find(j.raw_id.empty() ? key : j.raw_id);
        if (it != old.end() && observe(j, it->second)) {
          finished.push_back(key);
        } else if (j.missing > kLostAfterPolls) {
          finish(j, ExitKind::kLost, -1, "Slurm: job " + key + " vanished");
          finished.push_back(key);
        }
      }
    }
    for (const auto& key : finished) {
      auto it = live_.find(key);
      if (it == live_.end()) continue;
      by_attempt_.erase({it->second.task, it->second.attempt});
      live_.erase(it);
    }
  }

  // The cluster did not answer this poll (the driver already retried): ask again at the
  // next one, and meanwhile end what can be ended without it, so that a run neither
  // hangs nor loses track of anything for long. A job that recorded its exit status has
  // finished; one the run cancelled is over as far as the run is concerned (SIGINT
  // must end the run even while slurmctld is away); after kGiveUpAfterFailedQueries
  // polls in a row without an answer the rest are cancelled (best effort) and lost.
  void unanswered(const std::string& why) {
    if (++failed_queries_ == 1)
      std::fprintf(stderr, "sluice: slurm: asking about %zu jobs failed: %s; asking again\n",
                   live_.size(), why.c_str());
    const bool give_up = failed_queries_ >= kGiveUpAfterFailedQueries;
    std::vector<std::string> finished, abandoned;
    for (auto& [key, j] : live_) {
      if (int code = read_exit_status(j.dir); code >= 0) {
        finish(j, ExitKind::kExited, code, {});
      } else if (j.cancel_requested) {
        finish(j, ExitKind::kSignaled, 15, "cancelled; Slurm did not confirm it: " + why);
      } else if (give_up) {
        finish(j, ExitKind::kLost, -1,
               "Slurm: no answer about job " + key + " in " + std::to_string(failed_queries_) +
                   " polls in a row: " + why);
        abandoned.push_back(key);
      } else {
        continue;
      }
      finished.push_back(key);
    }
    if (!abandoned.empty()) driver_->cancel(abandoned);
    for (const auto& key : finished) {
      auto it = live_.find(key);
      by_attempt_.erase({it->second.task, it->second.attempt});
      live_.erase(it);
    }
  }

  // Applies one status; true when the job ended (its Completion is queued).
  bool observe(Job& j, const JobStatus& s) {
    const std::string& st = s.state;
    if (st == "PENDING" || st == "REQUEUED" || st == "REQUEUE_HOLD" || st == "REQUEUE_FED") {
      if (!s.reason.empty()) j.pending_reason = s.reason;
      if (j.max_wait.count() > 0 && !j.wait_expired && Clock::now() - j.submitted > j.max_wait) {
        j.wait_expired = true;
        driver_->cancel({j.key});
      }
      return false;
    }
    if (st == "RUNNING" || st == "COMPLETING" || st == "CONFIGURING" || st == "SUSPENDED" ||
        st == "STOPPED" || st == "RESIZING" || st == "SIGNALING" || st == "STAGE_OUT") {
      if (!j.started_us) j.started_us = wall_us();
      return false;
    }
    const int recorded = read_exit_status(j.dir);
    if (st == "COMPLETED") {
      finish(j, ExitKind::kExited, std::max(recorded, 0), {});
    } else if (st == "FAILED") {
      int code = recorded >= 0 ? recorded : s.exit_code;
      if (code <= 0 && s.signal > 0)
        finish(j, ExitKind::kSignaled, s.signal, "Slurm: FAILED");
      else
        finish(j, ExitKind::kExited, code > 0 ? code : 1, {});
    } else if (st == "CANCELLED" && j.wait_expired) {
      finish(j, ExitKind::kSignaled, 15,
             "no slot: Slurm pending reason " + j.pending_reason + " after max_wait_time " +
                 format_duration(j.max_wait));
    } else if (st == "NODE_FAIL" || st == "PREEMPTED" || st == "BOOT_FAIL") {
      finish(j, ExitKind::kLost, -1, "Slurm: " + st);
    } else {  // TIMEOUT, OUT_OF_MEMORY, CANCELLED, DEADLINE, REVOKED, SPECIAL_EXIT
      finish(j, ExitKind::kSignaled, s.signal > 0 ? s.signal : 9, "Slurm: " + st);
    }
    return true;
  }

  void finish(const Job& j, ExitKind kind, int code, std::string reason) {
    Completion c;
    c.task = j.task;
    c.attempt = j.attempt;
    c.kind = kind;
    c.code = code;
    c.reason = std::move(reason);
    c.ended_us = wall_us();
    c.started_us = j.started_us ? j.started_us : c.ended_us;
    done_.push_back(std::move(c));
  }

  // A job neither slurmctld, nor sacct, nor its exit-status record knows about for this
  // many polls in a row is reported lost.
  static constexpr int kLostAfterPolls = 60;
  // Polls in a row whose query failed (each after the driver's retries, so at least
  // ~10 x command_timeout x tries when squeue hangs) before the live jobs are given up.
  static constexpr int kGiveUpAfterFailedQueries = 10;

  Options o_;
  std::unique_ptr<slurm::SlurmDriver> driver_;
  std::string why_;  // why this driver (slurm::DriverChoice::reason)
  std::string path_first_;
  std::map<std::string, Job> live_;  // by job key
  std::map<std::pair<TaskId, std::uint32_t>, std::string> by_attempt_;
  std::deque<Pending> held_;
  std::vector<std::string> to_cancel_;  // killed since the last poll()
  std::vector<Completion> done_;
  Clock::time_point next_query_{};
  // By run directory; a coordinator has one, the tests more.
  std::map<std::string, std::unique_ptr<slurm::SubmitLog>> logs_;
  int failed_queries_ = 0;  // polls in a row whose query failed
};

}  // namespace

Expected<std::unique_ptr<Backend>> make_slurm_backend(const BackendOptions& options) {
  auto o = parse_options(options);
  if (!o) return tl::unexpected(o.error());
  auto chosen = slurm::make_driver(o->driver, o->commands);
  if (!chosen) return tl::unexpected(chosen.error());
  return std::unique_ptr<Backend>(std::make_unique<SlurmBackend>(
      std::move(*o), std::move(chosen->driver), std::move(chosen->choice.reason)));
}

Expected<std::unique_ptr<Backend>> make_slurm_backend_with(
    const BackendOptions& options, std::unique_ptr<slurm::SlurmDriver> driver) {
  auto o = parse_options(options);
  if (!o) return tl::unexpected(o.error());
  if (!driver) return make_error(ErrorCode::kInvalidInput, "slurm backend without a driver");
  return std::unique_ptr<Backend>(
      std::make_unique<SlurmBackend>(std::move(*o), std::move(driver), "given by the caller"));
}

bool parse_placement_option(const std::string& key, const std::string& value,
                            slurm::SubmitRequest& placement) {
  if (key == "partition") {
    placement.partition = value;
  } else if (key == "account") {
    placement.account = value;
  } else if (key == "qos") {
    placement.qos = value;
  } else if (key == "constraint") {
    placement.constraint = value;
  } else if (key == "reservation") {
    placement.reservation = value;
  } else if (key == "sbatch") {
    std::istringstream words(value);
    for (std::string w; words >> w;) placement.extra.push_back(w);
  } else {
    return false;
  }
  return true;
}

const OptionTable& placement_option_table() {
  static const OptionTable table = {
      {"partition", "", "the Slurm partition jobs go to (default: the cluster's)", {}},
      {"account", "", "the account jobs are charged to", {}},
      {"qos", "", "the quality of service jobs ask for", {}},
      {"constraint", "", "node features jobs need (sbatch --constraint)", {}},
      {"reservation", "", "the reservation jobs run in", {}},
      {"sbatch", "", "more sbatch options, separated by spaces (\"--exclusive --mem=4G\")", {}},
  };
  return table;
}

const OptionTable& slurm_command_option_table() {
  static const OptionTable table = {
      {"driver", "auto",
       "how Slurm is asked: libslurm, cli (sbatch, squeue, ...) or auto (libslurm when the "
       "controller runs the release it was built for, else cli; sluice doctor says which)",
       check_one_of({"auto", "libslurm", "cli"})},
      {"command_timeout", "30s",
       "an sbatch, squeue, scontrol, sacct or scancel that runs longer is killed (and, "
       "but for sbatch, tried again up to 3 times)",
       check_duration()},
  };
  return table;
}

const OptionTable& slurm_option_table() {
  static const OptionTable table = merge_option_tables(
      slurm_command_option_table(),
      merge_option_tables(
          placement_option_table(),
          {
              {"executor.*", "", "executor.LABEL=P: partition P for tasks with executor LABEL", {}},
              {"max_queued", "1000", "jobs in Slurm's queue at once; the rest wait here",
               check_count(1, 10'000'000)},
              {"poll_interval", "1s", "how often Slurm is asked about every live job",
               check_duration()},
              {"arrays", "on", "on: identical launches of one batch become a job array",
               check_one_of({"on", "off"})},
              {"array_throttle", "0", "N > 0: at most N elements of an array run at once",
               check_count(0, 1 << 30)},
          }));
  return table;
}

void register_slurm_backend() {
  register_backend("slurm", make_slurm_backend, slurm_option_table());
}

}  // namespace sluice
