#include "process_spawner.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <ctime>
#include <iterator>

namespace sluice::local {
namespace {

// The child shares the parent's memory until execve: it calls the kernel directly (no
// libc function that could take a lock or be intercepted) and writes nothing of the
// parent's but `err`.
struct ChildArgs {
  const SpawnRequest* request;
  const int* reset;  // the signals to set to SIG_DFL first
  std::size_t reset_count;
  int devnull;
  int err;
};

// The kernel's struct sigaction (x86-64 and arm64 alike: both have sa_restorer).
struct KernelSigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)();
  std::uint64_t mask;
};
constexpr unsigned long kKernelSigsetBytes = 8;
constexpr int kLastSignal = 64;

[[noreturn]] __attribute__((no_sanitize("address", "undefined"))) void child_fail(ChildArgs* a) {
  a->err = errno != 0 ? errno : EINVAL;
  ::syscall(SYS_exit, 127);
  __builtin_unreachable();
}

// A descriptor that must become 0, 1 or 2 is first moved above 2, so that placing one
// never closes another that is still to be placed.
__attribute__((no_sanitize("address", "undefined"))) int above_stdio(int fd) {
  if (fd < 0 || fd > 2) return fd;
  return static_cast<int>(::syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 3));
}

__attribute__((no_sanitize("address", "undefined"))) int open_log(const char* path) {
  return static_cast<int>(
      ::syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
}

__attribute__((no_sanitize("address", "undefined"))) bool place(int from, int to) {
  return ::syscall(SYS_dup3, from, to, 0) == to;  // the copy is not close-on-exec
}

__attribute__((no_sanitize("address", "undefined"))) int child_main(void* arg) {
  auto* a = static_cast<ChildArgs*>(arg);
  const SpawnRequest& r = *a->request;

  // A handler of the parent must never run here. execve itself resets caught signals and
  // keeps ignored ones ignored (nohup); these resets cover the moment between unblocking
  // and execve, and the request's signals that must not stay ignored.
  const KernelSigaction dfl{};
  for (std::size_t i = 0; i < a->reset_count; ++i)
    ::syscall(SYS_rt_sigaction, a->reset[i], &dfl, nullptr, kKernelSigsetBytes);
  if (r.new_process_group && ::syscall(SYS_setpgid, 0, 0) != 0) child_fail(a);

  int in = a->devnull;
  if (in < 0) in = static_cast<int>(::syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY, 0));
  int out = r.stdout_fd >= 0 ? r.stdout_fd : open_log(r.stdout_path);
  int err = r.stderr_fd >= 0 ? r.stderr_fd : open_log(r.stderr_path);
  if (in < 0 || out < 0 || err < 0) child_fail(a);
  in = above_stdio(in);
  out = above_stdio(out);
  err = above_stdio(err);
  if (in < 0 || out < 0 || err < 0) child_fail(a);
  if (!place(in, 0) || !place(out, 1) || !place(err, 2)) child_fail(a);
  if (r.workdir != nullptr && r.workdir[0] != '\0' && ::syscall(SYS_chdir, r.workdir) != 0)
    child_fail(a);
#ifdef SYS_close_range
  // Nothing else of the coordinator (store, sockets, pipes) leaks into the attempt.
  ::syscall(SYS_close_range, 3U, ~0U, 0U);  // ENOSYS before Linux 5.9: all are CLOEXEC
#endif
  const std::uint64_t empty_mask = 0;
  ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &empty_mask, nullptr, kKernelSigsetBytes);
  ::syscall(SYS_execve, r.path, r.argv, r.envp);
  child_fail(a);
}

constexpr std::size_t kStackBytes = 128 * 1024;

}  // namespace

Spawner::~Spawner() {
  if (stack_ != nullptr) ::munmap(stack_, stack_size_);
  if (devnull_ >= 0) ::close(devnull_);
}

// Asking for one signal's disposition is a system call, ~0.3 us on bare metal and 10-16
// us on a paravirtualised VM: 64 of them in every child (what posix_spawn does) held the
// coordinator, waiting on the vfork, for a millisecond per launch there. The parent asks
// instead, at most once a second, and the child resets only what that found caught.
void Spawner::refresh_caught_signals() {
  caught_count_ = 0;
  for (int sig = 1; sig <= kLastSignal; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    KernelSigaction old{};
    if (::syscall(SYS_rt_sigaction, sig, nullptr, &old, kKernelSigsetBytes) != 0) continue;
    if (old.handler != SIG_DFL && old.handler != SIG_IGN) caught_[caught_count_++] = sig;
  }
}

int Spawner::spawn(const SpawnRequest& request, pid_t& pid, int* pidfd) {
  if (stack_ == nullptr) {
    void* p = ::mmap(nullptr, kStackBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (p == MAP_FAILED) return errno;
    ::mprotect(p, static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)), PROT_NONE);  // guard
    stack_ = p;
    stack_size_ = kStackBytes;
  }
  if (devnull_ < 0) devnull_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
  if (now.tv_sec != caught_at_s_ || caught_at_s_ < 0) {
    refresh_caught_signals();
    caught_at_s_ = now.tv_sec;
  }
  // What the child resets: the caught signals and the request's own, each once.
  int reset[kLastSignal];
  std::size_t n = 0;
  for (std::size_t i = 0; i < caught_count_; ++i) reset[n++] = caught_[i];
  for (std::size_t i = 0; i < request.default_signal_count; ++i) {
    const int sig = request.default_signals[i];
    bool seen = false;
    for (std::size_t j = 0; j < caught_count_ && !seen; ++j) seen = caught_[j] == sig;
    if (!seen && sig > 0 && sig <= kLastSignal && n < std::size(reset)) reset[n++] = sig;
  }

  ChildArgs args{&request, reset, n, devnull_, 0};
  sigset_t all;
  sigset_t old;
  sigfillset(&all);
  // CLONE_PIDFD (Linux 5.2): the descriptor comes with the clone, not from a later
  // pidfd_open.
  int fd = -1;
  const int flags = CLONE_VM | CLONE_VFORK | SIGCHLD | (pidfd && pidfd_works_ ? CLONE_PIDFD : 0);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  int child = ::clone(child_main, static_cast<char*>(stack_) + stack_size_, flags, &args, &fd);
  int clone_errno = errno;
  if (child < 0 && clone_errno == EINVAL && (flags & CLONE_PIDFD)) {
    pidfd_works_ = false;  // an older kernel: the caller opens the pidfd itself
    child =
        ::clone(child_main, static_cast<char*>(stack_) + stack_size_, flags & ~CLONE_PIDFD, &args);
    clone_errno = errno;
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (child < 0) return clone_errno;
  // CLONE_VFORK: the child has called execve or exited by now.
  const int child_err = *static_cast<volatile int*>(&args.err);
  if (child_err != 0) {
    if (fd >= 0) ::close(fd);
    while (::waitpid(child, nullptr, 0) < 0 && errno == EINTR) {
    }
    return child_err;
  }
  pid = child;
  if (pidfd) *pidfd = fd;
  return 0;
}

}  // namespace sluice::local
