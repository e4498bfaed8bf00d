#include "local_backend.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>

#include "process_spawner.hpp"
#include "sluice/engine/gpus.hpp"
#include "sluice/engine/host_info.hpp"
#include "sluice/engine/log_spool.hpp"
#include "sluice/engine/wall_clock.hpp"

extern char** environ;

namespace sluice {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kDefaultKillGrace{2000};
constexpr int kMaxEvents = 64;
#if defined(__SANITIZE_THREAD__)
constexpr bool kFastSpawnByDefault = false;
#else
constexpr bool kFastSpawnByDefault = true;
#endif
// Set to their default in every attempt even when the coordinator ignores them.
constexpr int kDefaultSignals[] = {SIGINT, SIGTERM, SIGCHLD, SIGPIPE};

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

// Field 22 of /proc/PID/stat: the start time in clock ticks since boot; 0 if unknown.
std::uint64_t proc_start_time(pid_t pid) {
  char path[40];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (n <= 0) return 0;
  std::string_view s(buf, static_cast<std::size_t>(n));
  // The command name (field 2) is in parentheses and may contain spaces or ')'.
  std::size_t pos = s.rfind(')');
  if (pos == std::string_view::npos || pos + 2 >= s.size()) return 0;
  pos += 2;  // start of field 3
  for (int field = 3; field < 22; ++field) {
    pos = s.find(' ', pos);
    if (pos == std::string_view::npos) return 0;
    ++pos;
  }
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(s.data() + pos, s.data() + s.size(), value);
  (void)end;
  return ec == std::errc() ? value : 0;
}

// Now, in the unit of /proc/PID/stat's starttime (clock ticks since boot). Taken just
// before a spawn it is at most the child's starttime (a little less on a loaded
// machine), which identifies the process in a handle without reading /proc on the hot
// path: a pid reused by another process starts far later.
std::uint64_t boot_ticks_now() {
  static const long ticks_per_s = ::sysconf(_SC_CLK_TCK);
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * static_cast<std::uint64_t>(ticks_per_s) +
         static_cast<std::uint64_t>(ts.tv_nsec) * static_cast<std::uint64_t>(ticks_per_s) /
             1'000'000'000u;
}

std::string signal_reason(int sig, bool core_dumped) {
  std::string reason = "killed by signal " + std::to_string(sig);
  if (const char* abbrev = ::sigabbrev_np(sig)) {
    reason += " (SIG";
    reason += abbrev;
    reason += ')';
  }
  if (core_dumped) reason += ", core dumped";
  return reason;
}

bool is_regular_file(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

struct TransparentHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Parses a non-negative integer; nullopt-like -1 when malformed.
long long parse_count(std::string_view s) {
  long long value = -1;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || value < 0) return -1;
  return value;
}

class LocalBackend final : public Backend {
 public:
  explicit LocalBackend(const LocalBackendOptions& local);
  ~LocalBackend() override;

  std::string name() const override { return "local"; }
  Capacity capacity() const override { return capacity_; }
  Expected<std::string> launch(const LaunchRequest& request) override;
  void poll(std::vector<Completion>& out, std::chrono::milliseconds timeout) override;
  void kill(TaskId task, std::uint32_t attempt) override;
  std::size_t in_flight() const override { return active_; }
  void abandon(const std::string& handle) override;
  bool spools_logs() const override { return true; }

 private:
  struct Proc {
    bool active = false;
    bool term_sent = false;
    pid_t pid = 0;
    int pidfd = -1;
    TaskId task = 0;
    std::uint32_t attempt = 0;
    std::int64_t started_us = 0;
    SteadyClock::time_point kill_at{};
    std::vector<int> gpus;  // indices into gpu_ids_
    // The read ends of the attempt's stdout and stderr pipes while it spools, else -1.
    int out_pipe = -1;
    int err_pipe = -1;
    bool spooled = false;  // its logs go to the slot's spool (the pipes may be closed already)
  };
  // What an epoll event is about: bits 32+ of its data, the slot in the low bits.
  enum EventKind : std::uint64_t { kExitEvent = 0, kStdoutEvent = 1, kStderrEvent = 2 };

  // Environment assembly (per launch, into reused buffers).
  void env_begin();
  void env_set(std::string_view name, std::string_view value);
  void env_finish();
  std::string_view env_path() const;

  // Resolves argv[0] like execvp, on the attempt's PATH. Returns nullptr and sets err.
  const std::string* resolve(const std::string& argv0, std::string_view path,
                             const std::string& workdir, int& err, bool& cached);

  // Starts `program`; `pidfd` is the child's pidfd where the spawn path gives one, else -1.
  // `out_fd`/`err_fd`: the child's stdout and stderr (-1: attempt_dir/stdout, /stderr).
  int spawn(const std::string& program, const LaunchRequest& request, int out_fd, int err_fd,
            pid_t& pid, int& pidfd);
  // The spawn file actions of `request` (cached when it brings both log fds).
  posix_spawn_file_actions_t* file_actions(const LaunchRequest& request, int out_fd, int err_fd);
  // Moves what the slot's pipes hold into its spool; `to_end`: until the pipes are
  // empty, then closes them (the attempt is over: a process that escaped its group
  // writes into a closed pipe from here on).
  void read_pipes(std::uint32_t slot, bool to_end);
  void read_pipe(std::uint32_t slot, int& fd, LogStream stream, bool to_end);
  std::uint32_t take_slot();
  void release(std::uint32_t slot);
  // Reaps slot if its process has ended (`exited`: known to have ended, its pidfd is
  // readable) and appends its Completion.
  bool try_reap(std::uint32_t slot, bool exited, std::vector<Completion>& out);
  void escalate_kills(SteadyClock::time_point now);
  SteadyClock::time_point next_kill() const;

  Capacity capacity_;
  std::vector<std::string> gpu_ids_;
  std::vector<bool> gpu_busy_;
  std::string host_;
  std::chrono::milliseconds kill_grace_ = kDefaultKillGrace;

  posix_spawnattr_t attr_;
  // clone + execve by default; posix_spawn when asked (tests run both) or under TSan,
  // which cannot follow a child that shares the parent's memory.
  local::Spawner spawner_;
  bool fast_spawn_ = kFastSpawnByDefault;
  int epfd_ = -1;
  bool use_pidfd_ = true;

  // The coordinator's environment with the executable's directory first on PATH.
  std::vector<std::string> base_env_;
  std::vector<char*> base_ptrs_;
  std::unordered_map<std::string, std::size_t, TransparentHash, std::equal_to<>> base_index_;
  std::string exe_dir_;
  std::string base_path_;  // value of PATH in base_env_ ("" and !has_base_path_ when unset)
  bool has_base_path_ = false;

  // Per-launch scratch, reused.
  struct PendingVar {
    std::size_t slot;     // index in envp_
    std::size_t scratch;  // index in scratch_
    std::size_t name_len;
  };
  std::vector<char*> envp_;
  std::vector<std::string> scratch_;
  std::size_t scratch_used_ = 0;
  std::vector<PendingVar> pending_;
  std::vector<char*> argv_;
  std::string out_path_;
  std::string err_path_;
  std::string cache_key_;
  std::string cvd_;
  std::unordered_map<std::string, std::string> resolve_cache_;

  struct FileActionsKey {
    int out_fd = -1;
    int err_fd = -1;
    std::string workdir;
    bool operator==(const FileActionsKey&) const = default;
  };
  struct CachedActions {
    FileActionsKey key;
    posix_spawn_file_actions_t fa;
    CachedActions() = default;
    CachedActions(const CachedActions&) = delete;
    CachedActions& operator=(const CachedActions&) = delete;
    ~CachedActions() { posix_spawn_file_actions_destroy(&fa); }
  };
  static constexpr std::size_t kMaxCachedActions = 32;
  std::vector<std::unique_ptr<CachedActions>> actions_cache_;
  std::unique_ptr<CachedActions> uncached_;

  std::vector<Proc> procs_;
  std::vector<std::uint32_t> free_slots_;
  std::size_t active_ = 0;
  std::size_t kills_pending_ = 0;
  epoll_event events_[kMaxEvents];
  SpoolSet spools_;  // one lane per slot
  std::vector<char> pipe_buffer_ = std::vector<char>(64 * 1024);
};

LocalBackend::LocalBackend(const LocalBackendOptions& local) : host_(host_name()) {
  const BackendOptions& options = local.backend;
  capacity_.cpus = options.cpus > 0 ? options.cpus : usable_cpus();
  if (local.gpu_ids)
    gpu_ids_ = *local.gpu_ids;
  else
    gpu_ids_ = options.gpus >= 0 ? local_gpu_ids(options.gpus) : detect_local_gpus();
  gpu_busy_.assign(gpu_ids_.size(), false);
  capacity_.gpus = static_cast<int>(gpu_ids_.size());
  capacity_.executors = options.executors;
  if (auto it = options.extra.find("kill_grace_ms"); it != options.extra.end()) {
    long long ms = parse_count(it->second);
    if (ms >= 0) kill_grace_ = std::chrono::milliseconds(ms);
  }

  // Spawn attributes are the same for every attempt: own process group, empty signal
  // mask, default dispositions for the signals a coordinator may block or ignore.
  posix_spawnattr_init(&attr_);
  sigset_t empty;
  sigemptyset(&empty);
  posix_spawnattr_setsigmask(&attr_, &empty);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int sig : kDefaultSignals) sigaddset(&defaults, sig);
  posix_spawnattr_setsigdefault(&attr_, &defaults);
  posix_spawnattr_setpgroup(&attr_, 0);
  posix_spawnattr_setflags(
      &attr_,
      static_cast<short>(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF));

  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) use_pidfd_ = false;
  if (auto it = options.extra.find("pidfd"); it != options.extra.end() && it->second == "off") {
    use_pidfd_ = false;  // what a kernel older than 5.3 gets; for tests
  }
  if (auto it = options.extra.find("spawn"); it != options.extra.end())
    fast_spawn_ = it->second != "posix";

  // Base environment, computed once.
  exe_dir_ = self_directory();
  std::vector<std::string_view> entries;
  if (local.environment) {
    entries.assign(local.environment->begin(), local.environment->end());
  } else {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) entries.emplace_back(*e);
  }
  for (std::string_view entry : entries) {
    std::size_t eq = entry.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    std::string_view name = entry.substr(0, eq);
    if (base_index_.find(name) != base_index_.end()) continue;  // first one wins, as getenv
    base_index_.emplace(std::string(name), base_env_.size());
    base_env_.emplace_back(entry);
  }
  auto path_it = base_index_.find(std::string_view("PATH"));
  if (path_it != base_index_.end()) {
    has_base_path_ = true;
    base_path_ = base_env_[path_it->second].substr(5);
  }
  if (!exe_dir_.empty()) {
    std::string_view current(base_path_);
    bool already_first =
        has_base_path_ && (current == exe_dir_ ||
                           (current.starts_with(exe_dir_) && current.size() > exe_dir_.size() &&
                            current[exe_dir_.size()] == ':'));
    if (!already_first) {
      base_path_ = has_base_path_ && !base_path_.empty() ? exe_dir_ + ":" + base_path_ : exe_dir_;
      if (path_it != base_index_.end()) {
        base_env_[path_it->second] = "PATH=" + base_path_;
      } else {
        base_index_.emplace("PATH", base_env_.size());
        base_env_.push_back("PATH=" + base_path_);
      }
      has_base_path_ = true;
    }
  }
  base_ptrs_.reserve(base_env_.size());
  for (auto& entry : base_env_) base_ptrs_.push_back(entry.data());
}

LocalBackend::~LocalBackend() {
  for (auto& p : procs_) {
    if (!p.active) continue;
    ::kill(-p.pid, SIGKILL);
    ::kill(p.pid, SIGKILL);
  }
  for (auto& p : procs_) {
    if (!p.active) continue;
    siginfo_t info;
    while (::waitid(P_PID, static_cast<id_t>(p.pid), &info, WEXITED) < 0 && errno == EINTR) {
    }
    if (p.pidfd >= 0) ::close(p.pidfd);
    if (p.out_pipe >= 0) ::close(p.out_pipe);
    if (p.err_pipe >= 0) ::close(p.err_pipe);
    p.active = false;
  }
  if (epfd_ >= 0) ::close(epfd_);
  posix_spawnattr_destroy(&attr_);
}

void LocalBackend::env_begin() {
  envp_.assign(base_ptrs_.begin(), base_ptrs_.end());
  pending_.clear();
  scratch_used_ = 0;
}

void LocalBackend::env_set(std::string_view name, std::string_view value) {
  if (name.empty()) return;
  for (auto& p : pending_) {
    const std::string& s = scratch_[p.scratch];
    if (p.name_len == name.size() && std::string_view(s).substr(0, p.name_len) == name) {
      scratch_[p.scratch].resize(name.size() + 1);
      scratch_[p.scratch].append(value);
      return;
    }
  }
  std::size_t slot;
  if (auto it = base_index_.find(name); it != base_index_.end()) {
    slot = it->second;
  } else {
    slot = envp_.size();
    envp_.push_back(nullptr);
  }
  if (scratch_used_ == scratch_.size()) scratch_.emplace_back();
  std::string& s = scratch_[scratch_used_];
  s.assign(name);
  s.push_back('=');
  s.append(value);
  pending_.push_back({slot, scratch_used_, name.size()});
  ++scratch_used_;
}

std::string_view LocalBackend::env_path() const {
  for (const auto& p : pending_) {
    const std::string& s = scratch_[p.scratch];
    if (p.name_len == 4 && s.compare(0, 4, "PATH") == 0) return std::string_view(s).substr(5);
  }
  // No PATH at all: execvp's default search path.
  return has_base_path_ ? std::string_view(base_path_) : std::string_view("/bin:/usr/bin");
}

void LocalBackend::env_finish() {
  // A task that sets PATH still finds the coordinator's executable directory first.
  if (!exe_dir_.empty()) {
    for (auto& p : pending_) {
      std::string& s = scratch_[p.scratch];
      if (p.name_len != 4 || s.compare(0, 4, "PATH") != 0) continue;
      std::string_view value = std::string_view(s).substr(5);
      bool first =
          value == exe_dir_ || (value.starts_with(exe_dir_) && value.size() > exe_dir_.size() &&
                                value[exe_dir_.size()] == ':');
      if (!first) s.insert(5, value.empty() ? exe_dir_ : exe_dir_ + ":");
    }
  }
  for (const auto& p : pending_) envp_[p.slot] = scratch_[p.scratch].data();
  envp_.push_back(nullptr);
}

const std::string* LocalBackend::resolve(const std::string& argv0, std::string_view path,
                                         const std::string& workdir, int& err, bool& cached) {
  cached = false;
  cache_key_.assign(argv0);
  cache_key_.push_back('\0');
  cache_key_.append(path);
  cache_key_.push_back('\0');
  cache_key_.append(workdir);
  if (auto it = resolve_cache_.find(cache_key_); it != resolve_cache_.end()) {
    cached = true;
    return &it->second;
  }

  err = ENOENT;
  std::string found;
  if (argv0.empty()) return nullptr;
  if (argv0.find('/') != std::string::npos) {
    // Relative to the working directory the attempt runs in.
    found = argv0.front() == '/' || workdir.empty() ? argv0 : workdir + "/" + argv0;
  } else {
    bool denied = false;
    std::string_view rest = path;
    for (;;) {
      std::size_t colon = rest.find(':');
      std::string_view dir = rest.substr(0, colon);
      std::string candidate;
      if (dir.empty()) dir = ".";  // an empty entry means the current directory
      if (dir.front() != '/' && !workdir.empty()) {
        candidate.assign(workdir).push_back('/');
      }
      candidate.append(dir);
      candidate.push_back('/');
      candidate.append(argv0);
      if (is_regular_file(candidate)) {
        if (::access(candidate.c_str(), X_OK) == 0) {
          found = std::move(candidate);
          break;
        }
        denied = true;
      }
      if (colon == std::string_view::npos) break;
      rest.remove_prefix(colon + 1);
    }
    if (found.empty()) {
      err = denied ? EACCES : ENOENT;
      return nullptr;
    }
  }
  auto [it, inserted] = resolve_cache_.emplace(cache_key_, std::move(found));
  (void)inserted;
  return &it->second;
}

posix_spawn_file_actions_t* LocalBackend::file_actions(const LaunchRequest& request, int out_fd,
                                                       int err_fd) {
  const std::string& workdir = request.spec->workdir;
  // Each posix_spawn_file_actions_add* call asks the kernel for the fd limit: build the
  // actions once per (stdout fd, stderr fd, workdir) and reuse them. The coordinator's
  // prepared log fds come from a small recycled set, so a few entries cover a run.
  const bool cacheable = out_fd >= 0 && err_fd >= 0;
  FileActionsKey key{out_fd, err_fd, workdir};
  if (cacheable) {
    for (auto& e : actions_cache_)
      if (e->key == key) return &e->fa;
    if (actions_cache_.size() >= kMaxCachedActions) actions_cache_.erase(actions_cache_.begin());
  }
  auto entry = std::make_unique<CachedActions>();
  entry->key = std::move(key);
  posix_spawn_file_actions_t* fa = &entry->fa;
  posix_spawn_file_actions_init(fa);
  out_path_.assign(request.attempt_dir).append("/stdout");
  err_path_.assign(request.attempt_dir).append("/stderr");
  // Not O_CLOEXEC: these become the child's fds 0, 1 and 2.
  posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
  if (out_fd >= 0)
    posix_spawn_file_actions_adddup2(fa, out_fd, 1);
  else
    posix_spawn_file_actions_addopen(fa, 1, out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (err_fd >= 0)
    posix_spawn_file_actions_adddup2(fa, err_fd, 2);
  else
    posix_spawn_file_actions_addopen(fa, 2, err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!workdir.empty()) posix_spawn_file_actions_addchdir_np(fa, workdir.c_str());
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
  // Nothing else of the coordinator (store, sockets, pipes) leaks into attempts.
  posix_spawn_file_actions_addclosefrom_np(fa, 3);
#endif
  if (!cacheable) {
    uncached_ = std::move(entry);
    return &uncached_->fa;
  }
  actions_cache_.push_back(std::move(entry));
  return &actions_cache_.back()->fa;
}

int LocalBackend::spawn(const std::string& program, const LaunchRequest& request, int out_fd,
                        int err_fd, pid_t& pid, int& pidfd) {
  posix_spawn_file_actions_t* fa = fast_spawn_ ? nullptr : file_actions(request, out_fd, err_fd);
  local::SpawnRequest s;
  if (fast_spawn_) {
    s.envp = envp_.data();
    s.stdout_fd = out_fd;
    s.stderr_fd = err_fd;
    if (s.stdout_fd < 0)
      s.stdout_path = out_path_.assign(request.attempt_dir).append("/stdout").c_str();
    if (s.stderr_fd < 0)
      s.stderr_path = err_path_.assign(request.attempt_dir).append("/stderr").c_str();
    s.workdir = request.spec->workdir.c_str();
    s.default_signals = kDefaultSignals;
    s.default_signal_count = std::size(kDefaultSignals);
  }
  auto start = [&](const char* path) {
    if (fa != nullptr) return ::posix_spawn(&pid, path, fa, &attr_, argv_.data(), envp_.data());
    s.path = path;
    s.argv = argv_.data();
    return spawner_.spawn(s, pid, use_pidfd_ ? &pidfd : nullptr);
  };
  int rc = start(program.c_str());
  if (rc == ENOEXEC) {
    // execvp semantics: a file without a #! line is a shell script.
    argv_.insert(argv_.begin(), const_cast<char*>("/bin/sh"));
    argv_[1] = const_cast<char*>(program.c_str());
    rc = start("/bin/sh");
  }
  uncached_.reset();
  return rc;
}

std::uint32_t LocalBackend::take_slot() {
  if (!free_slots_.empty()) {
    std::uint32_t slot = free_slots_.back();
    free_slots_.pop_back();
    return slot;
  }
  procs_.emplace_back();
  return static_cast<std::uint32_t>(procs_.size() - 1);
}

void LocalBackend::release(std::uint32_t slot) {
  Proc& p = procs_[slot];
  for (int g : p.gpus) gpu_busy_[static_cast<std::size_t>(g)] = false;
  p.gpus.clear();
  if (p.pidfd >= 0) ::close(p.pidfd);  // also leaves the epoll set
  p.pidfd = -1;
  if (p.out_pipe >= 0) ::close(p.out_pipe);
  if (p.err_pipe >= 0) ::close(p.err_pipe);
  p.out_pipe = p.err_pipe = -1;
  if (p.term_sent) --kills_pending_;
  p.term_sent = false;
  p.active = false;
  --active_;
  free_slots_.push_back(slot);
}

Expected<std::string> LocalBackend::launch(const LaunchRequest& request) {
  if (request.spec == nullptr) return make_error(ErrorCode::kBackend, "launch without a task");
  const TaskSpec& spec = *request.spec;
  const std::vector<std::string>& command = request.command ? *request.command : spec.command;
  const std::string& shell = request.shell ? *request.shell : spec.shell;
  const bool is_shell = command.empty();
  if (is_shell && shell.empty()) {
    return make_error(ErrorCode::kBackend, "task '" + spec.name + "' has no command");
  }
  const std::string& shown = is_shell ? shell : command.front();

  // GPUs: concrete device ids from the free list.
  std::vector<int> gpus;
  if (spec.gpus > 0) {
    for (std::size_t i = 0; i < gpu_busy_.size() && gpus.size() < std::size_t(spec.gpus); ++i) {
      if (!gpu_busy_[i]) gpus.push_back(static_cast<int>(i));
    }
    if (gpus.size() < static_cast<std::size_t>(spec.gpus)) {
      return make_error(ErrorCode::kBackend, "cannot start '" + shown + "': needs " +
                                                 std::to_string(spec.gpus) + " GPU(s), " +
                                                 std::to_string(gpus.size()) + " of " +
                                                 std::to_string(gpu_ids_.size()) + " free");
    }
  }

  env_begin();
  for (const auto& [k, v] : spec.env) env_set(k, v);
  for (const auto& [k, v] : request.env) env_set(k, v);
  if (!gpus.empty()) {
    cvd_.clear();
    for (int g : gpus) {
      if (!cvd_.empty()) cvd_.push_back(',');
      cvd_.append(gpu_ids_[static_cast<std::size_t>(g)]);
    }
    env_set("CUDA_VISIBLE_DEVICES", cvd_);
  } else if (!gpu_ids_.empty()) {
    env_set("CUDA_VISIBLE_DEVICES", "");  // declared GPUs are not this task's to use
  }

  env_finish();

  argv_.clear();
  const std::string* program = nullptr;
  bool cached = false;
  static const std::string kShell = "/bin/sh";
  if (is_shell) {
    program = &kShell;
    argv_.push_back(const_cast<char*>("/bin/sh"));
    argv_.push_back(const_cast<char*>("-c"));
    argv_.push_back(const_cast<char*>(shell.c_str()));
  } else {
    int err = 0;
    program = resolve(command.front(), env_path(), spec.workdir, err, cached);
    if (program == nullptr) {
      return make_error(ErrorCode::kBackend,
                        "cannot start '" + shown + "': " + std::string(std::strerror(err)));
    }
    for (const auto& a : command) argv_.push_back(const_cast<char*>(a.c_str()));
  }
  argv_.push_back(nullptr);

  // Spooled logs come through pipes that this backend reads (log_spool.hpp says why).
  int out_fd = request.stdout_fd;
  int err_fd = request.stderr_fd;
  int out_pipe[2] = {-1, -1};
  int err_pipe[2] = {-1, -1};
  auto close_pipes = [&] {
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]})
      if (fd >= 0) ::close(fd);
  };
  const bool spooled = !request.spool_dir.empty() && out_fd < 0 && err_fd < 0;
  if (spooled) {
    if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
      const int err = errno;
      close_pipes();
      return make_error(ErrorCode::kBackend,
                        "cannot start '" + shown + "': pipe: " + std::strerror(err));
    }
    out_fd = out_pipe[1];
    err_fd = err_pipe[1];
  }

  const std::int64_t started = wall_us();
  pid_t pid = 0;
  const std::uint64_t spawned_tick = boot_ticks_now();  // before the fork: a lower bound
  int pidfd = -1;                                       // from the clone where it can give one
  int rc = spawn(*program, request, out_fd, err_fd, pid, pidfd);
  if (rc != 0 && cached && (rc == ENOENT || rc == EACCES)) {
    // The cached resolution went stale (file removed or changed): search again once.
    resolve_cache_.erase(cache_key_);
    int err = 0;
    program = resolve(command.front(), env_path(), spec.workdir, err, cached);
    if (program == nullptr) {
      rc = err;
    } else {
      argv_.clear();
      for (const auto& a : command) argv_.push_back(const_cast<char*>(a.c_str()));
      argv_.push_back(nullptr);
      rc = spawn(*program, request, out_fd, err_fd, pid, pidfd);
    }
  }
  if (spooled) {  // the child has its own copies of the write ends
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    out_pipe[1] = err_pipe[1] = -1;
  }
  if (rc != 0) {
    close_pipes();
    std::string why = std::strerror(rc);
    struct stat st;
    if (!spec.workdir.empty() && ::stat(spec.workdir.c_str(), &st) != 0) {
      why = "working directory '" + spec.workdir + "': " + std::strerror(errno);
    } else if (::stat(request.attempt_dir.c_str(), &st) != 0) {
      why = "attempt directory '" + request.attempt_dir + "': " + std::strerror(errno);
    }
    return make_error(ErrorCode::kBackend, "cannot start '" + shown + "': " + why);
  }

  if (use_pidfd_ && pidfd < 0) {
    pidfd = open_pidfd(pid);
    if (pidfd < 0 && errno == ENOSYS && active_ == 0) {
      use_pidfd_ = false;  // old kernel: poll() falls back to waitid polling
    } else if (pidfd < 0) {
      int err = errno;
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      close_pipes();
      return make_error(ErrorCode::kBackend,
                        "cannot watch '" + shown + "': pidfd_open: " + std::strerror(err));
    }
  }
  const std::uint32_t slot = take_slot();
  if (pidfd >= 0) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = slot;
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, pidfd, &ev) != 0) {
      int err = errno;
      ::close(pidfd);
      free_slots_.push_back(slot);
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      close_pipes();
      return make_error(ErrorCode::kBackend,
                        "cannot watch '" + shown + "': epoll_ctl: " + std::strerror(err));
    }
  }
  if (spooled) {
    for (int fd : {out_pipe[0], err_pipe[0]}) ::fcntl(fd, F_SETFL, O_NONBLOCK);
    if (use_pidfd_) {  // else poll() reads every pipe on each round
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = slot | (std::uint64_t{kStdoutEvent} << 32);
      ::epoll_ctl(epfd_, EPOLL_CTL_ADD, out_pipe[0], &ev);
      ev.data.u64 = slot | (std::uint64_t{kStderrEvent} << 32);
      ::epoll_ctl(epfd_, EPOLL_CTL_ADD, err_pipe[0], &ev);
    }
    spools_.begin(slot, request.spool_dir, request.task, request.attempt);
  }
  Proc& p = procs_[slot];
  p.active = true;
  p.term_sent = false;
  p.pid = pid;
  p.pidfd = pidfd;
  p.out_pipe = out_pipe[0];
  p.err_pipe = err_pipe[0];
  p.spooled = spooled;
  p.task = request.task;
  p.attempt = request.attempt;
  p.started_us = started;
  p.gpus.assign(gpus.begin(), gpus.end());
  for (int g : gpus) gpu_busy_[static_cast<std::size_t>(g)] = true;
  ++active_;

  std::string handle = std::to_string(pid);
  handle.push_back(':');
  handle += std::to_string(spawned_tick);
  return handle;
}

bool LocalBackend::try_reap(std::uint32_t slot, bool exited, std::vector<Completion>& out) {
  Proc& p = procs_[slot];
  if (!p.active) return false;
  siginfo_t info{};
  // Without a pidfd, peek first. Either way the main process stays a zombie (its pid
  // and process group stay reserved) while whatever it left in its group is killed.
  if (!exited &&
      ::waitid(P_PID, static_cast<id_t>(p.pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
      info.si_pid == 0) {
    return false;  // still running
  }
  ::kill(-p.pid, SIGKILL);
  Completion c;
  c.task = p.task;
  c.attempt = p.attempt;
  c.started_us = p.started_us;
  c.host = host_;
  info = siginfo_t{};
  int rc;
  while ((rc = ::waitid(P_PID, static_cast<id_t>(p.pid), &info, WEXITED | WNOHANG)) < 0 &&
         errno == EINTR) {
  }
  c.ended_us = wall_us();
  if (rc < 0) {
    // Someone else reaped it (SIGCHLD ignored, or a stray waitpid(-1)).
    c.kind = ExitKind::kLost;
    c.code = -1;
    c.reason = std::string("exit status unavailable: ") + std::strerror(errno);
  } else if (info.si_pid == 0) {
    return false;
  } else if (info.si_code == CLD_EXITED) {
    c.kind = ExitKind::kExited;
    c.code = info.si_status;
  } else {
    c.kind = ExitKind::kSignaled;
    c.code = info.si_status;
    c.reason = signal_reason(info.si_status, info.si_code == CLD_DUMPED);
  }
  if (p.spooled) {
    read_pipes(slot, true);
    c.log = spools_.end(slot);
  }
  out.push_back(std::move(c));
  release(slot);
  return true;
}

void LocalBackend::read_pipe(std::uint32_t slot, int& fd, LogStream stream, bool to_end) {
  // Bounded per call while the attempt runs, so one chatty attempt cannot hold up the
  // others' completions; its pipe stays readable and is read again on the next round.
  // At the end, bounded too: an escaped process that writes faster than this reads
  // would otherwise keep the pipe from ever being empty.
  for (int rounds = 0; fd >= 0 && rounds < (to_end ? 1024 : 16); ++rounds) {
    const ssize_t n = ::read(fd, pipe_buffer_.data(), pipe_buffer_.size());
    if (n > 0) {
      spools_.append(slot, stream, pipe_buffer_.data(), static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN && !to_end) return;
    ::close(fd);  // end of file (every writer is gone), or the attempt is over
    fd = -1;
    return;
  }
  if (to_end && fd >= 0) {
    ::close(fd);
    fd = -1;
  }
}

void LocalBackend::read_pipes(std::uint32_t slot, bool to_end) {
  Proc& p = procs_[slot];
  if (!p.active) return;
  read_pipe(slot, p.out_pipe, LogStream::kStdout, to_end);
  read_pipe(slot, p.err_pipe, LogStream::kStderr, to_end);
}

SteadyClock::time_point LocalBackend::next_kill() const {
  auto next = SteadyClock::time_point::max();
  if (kills_pending_ == 0) return next;
  for (const auto& p : procs_) {
    if (p.active && p.term_sent) next = std::min(next, p.kill_at);
  }
  return next;
}

void LocalBackend::escalate_kills(SteadyClock::time_point now) {
  if (kills_pending_ == 0) return;
  for (auto& p : procs_) {
    if (!p.active || !p.term_sent || p.kill_at > now) continue;
    ::kill(-p.pid, SIGKILL);
    ::kill(p.pid, SIGKILL);
    p.kill_at = SteadyClock::time_point::max();  // sent; its exit follows
  }
}

void LocalBackend::poll(std::vector<Completion>& out, std::chrono::milliseconds timeout) {
  const std::size_t before = out.size();
  const auto start = SteadyClock::now();
  // Capped so that `start + timeout` cannot overflow (a year is "forever" here).
  const auto cap = std::chrono::milliseconds(std::chrono::hours(24 * 365));
  const auto deadline = timeout.count() > 0 ? start + std::min(timeout, cap) : start;
  auto fallback_sleep = std::chrono::microseconds(500);
  for (;;) {
    auto now = SteadyClock::now();
    escalate_kills(now);
    auto until = std::min(deadline, next_kill());
    long long wait_ms = 0;
    if (until > now) {
      wait_ms = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
      wait_ms = std::min<long long>(wait_ms, INT_MAX);
    }
    if (use_pidfd_) {
      int n = ::epoll_wait(epfd_, events_, kMaxEvents, static_cast<int>(wait_ms));
      for (int i = 0; i < n; ++i) {
        const auto slot = static_cast<std::uint32_t>(events_[i].data.u64);
        const auto kind = events_[i].data.u64 >> 32;
        if (kind == kExitEvent) {
          try_reap(slot, true, out);
        } else if (slot < procs_.size()) {  // pipe fds of a slot reaped just before are -1
          Proc& p = procs_[slot];
          read_pipe(slot, kind == kStdoutEvent ? p.out_pipe : p.err_pipe,
                    kind == kStdoutEvent ? LogStream::kStdout : LogStream::kStderr, false);
        }
      }
    } else {
      // No pidfds (kernel < 5.3): check each attempt, then sleep a little.
      for (std::uint32_t slot = 0; slot < procs_.size(); ++slot) {
        read_pipes(slot, false);
        try_reap(slot, false, out);
      }
      if (out.size() == before && wait_ms > 0) {
        auto nap =
            std::min<std::chrono::microseconds>(fallback_sleep, std::chrono::milliseconds(wait_ms));
        std::this_thread::sleep_for(nap);
        fallback_sleep =
            std::min<std::chrono::microseconds>(fallback_sleep * 2, std::chrono::milliseconds(10));
      }
    }
    if (out.size() > before || SteadyClock::now() >= deadline) return;
  }
}

void LocalBackend::kill(TaskId task, std::uint32_t attempt) {
  for (auto& p : procs_) {
    if (!p.active || p.task != task || p.attempt != attempt) continue;
    if (p.term_sent) return;
    ::kill(-p.pid, SIGTERM);
    p.term_sent = true;
    p.kill_at = SteadyClock::now() + kill_grace_;
    ++kills_pending_;
    return;
  }
}

void LocalBackend::abandon(const std::string& handle) {
  std::string_view h(handle);
  std::size_t colon = h.find(':');
  if (colon == std::string_view::npos) return;
  long long pid = parse_count(h.substr(0, colon));
  long long start = parse_count(h.substr(colon + 1));
  if (pid <= 1 || start < 0) return;
  // The handle's time was read just before the spawn: the process started at most a
  // few seconds later (however loaded the machine); a reused pid started much later.
  constexpr std::uint64_t kSpawnWindowTicks = 500;
  std::uint64_t actual = proc_start_time(static_cast<pid_t>(pid));
  const auto noted = static_cast<std::uint64_t>(start);
  if (actual == 0 || actual < noted || actual > noted + kSpawnWindowTicks) return;
  ::kill(static_cast<pid_t>(-pid), SIGKILL);
  ::kill(static_cast<pid_t>(pid), SIGKILL);
}

}  // namespace

std::vector<std::string> local_gpu_ids(int count) {
  GpuDetectOptions o;
  o.count = std::max(count, 0);
  return gpu_ids(detect_gpus(o));
}

std::vector<std::string> detect_local_gpus() {
  return gpu_ids(detect_gpus());
}

std::unique_ptr<Backend> make_local_backend(const BackendOptions& options) {
  LocalBackendOptions local;
  local.backend = options;
  return std::make_unique<LocalBackend>(local);
}

std::unique_ptr<Backend> make_local_backend(const LocalBackendOptions& options) {
  return std::make_unique<LocalBackend>(options);
}

const OptionTable& local_option_table() {
  static const OptionTable table = {
      {"kill_grace_ms", std::to_string(kDefaultKillGrace.count()),
       "milliseconds between SIGTERM and SIGKILL when an attempt is killed",
       check_count(0, 24 * 3'600'000)},
      {"pidfd", "on", "off: watch processes by polling waitid, as on kernels without pidfd_open",
       check_one_of({"on", "off"})},
      {"spawn", kFastSpawnByDefault ? "fast" : "posix",
       "how attempts start: fast (clone + execve) or posix (posix_spawn)",
       check_one_of({"fast", "posix"})},
  };
  return table;
}

void register_local_backend() {
  register_backend(
      "local",
      [](const BackendOptions& options) -> Expected<std::unique_ptr<Backend>> {
        return make_local_backend(options);
      },
      local_option_table());
}

}  // namespace sluice
