// The local backend's Backend interface: slots, launching an attempt (its environment,
// program, log pipes and process), and registration under the name "local".
#include "local_backend.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <iterator>
#include <memory>
#include <string_view>
#include <utility>

#include "attempt_pipes.hpp"
#include "local_backend_impl.hpp"
#include "process_identity.hpp"
#include "sluice/engine/gpus.hpp"
#include "sluice/engine/host_info.hpp"
#include "sluice/engine/wall_clock.hpp"

namespace sluice {
namespace local {

long long parse_count(std::string_view s) {
  long long value = -1;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || value < 0) return -1;
  return value;
}

LocalBackend::LocalBackend(const LocalBackendOptions& local)
    : host_(host_name()), env_(local.environment, self_directory()) {
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

int LocalBackend::spawn(const std::string& program, const LaunchRequest& request, int out_fd,
                        int err_fd, pid_t& pid, int& pidfd) {
  posix_spawn_file_actions_t* fa =
      fast_spawn_ ? nullptr
                  : file_actions_.get(request.attempt_dir, request.spec->workdir, out_fd, err_fd);
  local::SpawnRequest s;
  if (fast_spawn_) {
    s.envp = env_.envp();
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
    if (fa != nullptr) return ::posix_spawn(&pid, path, fa, &attr_, argv_.data(), env_.envp());
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
  file_actions_.drop_uncached();
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

  env_.begin();
  for (const auto& [k, v] : spec.env) env_.set(k, v);
  for (const auto& [k, v] : request.env) env_.set(k, v);
  if (!gpus.empty()) {
    cvd_.clear();
    for (int g : gpus) {
      if (!cvd_.empty()) cvd_.push_back(',');
      cvd_.append(gpu_ids_[static_cast<std::size_t>(g)]);
    }
    env_.set("CUDA_VISIBLE_DEVICES", cvd_);
  } else if (!gpu_ids_.empty()) {
    env_.set("CUDA_VISIBLE_DEVICES", "");  // declared GPUs are not this task's to use
  }

  env_.finish();

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
    program = programs_.resolve(command.front(), env_.path(), spec.workdir, err, cached);
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
    if (const int err = open_log_pipes(out_pipe, err_pipe); err != 0) {
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
    programs_.forget_last();
    int err = 0;
    program = programs_.resolve(command.front(), env_.path(), spec.workdir, err, cached);
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

}  // namespace local

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
  return std::make_unique<local::LocalBackend>(local);
}

std::unique_ptr<Backend> make_local_backend(const LocalBackendOptions& options) {
  return std::make_unique<local::LocalBackend>(options);
}

const OptionTable& local_option_table() {
  static const OptionTable table = {
      {"kill_grace_ms", std::to_string(local::kDefaultKillGrace.count()),
       "milliseconds between SIGTERM and SIGKILL when an attempt is killed",
       check_count(0, 24 * 3'600'000)},
      {"pidfd", "on", "off: watch processes by polling waitid, as on kernels without pidfd_open",
       check_one_of({"on", "off"})},
      {"spawn", local::kFastSpawnByDefault ? "fast" : "posix",
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
