#pragma once
// Starting an attempt's process: clone(CLONE_VM | CLONE_VFORK) on a stack kept for the
// backend's lifetime, a few raw system calls in the child, then execve.
//
// Why not posix_spawn: glibc's maps and unmaps a fresh stack for every child and, in the
// child, asks for and resets the disposition of every one of the 64 signals (~120 system
// calls) while the parent waits. Measured on a 2-core VM: 20-25 us of CPU per process
// (`true`, 10,000 runs), which on a sweep of tiny tasks is as much as the rest of the
// coordinator's launch path. The child here does the same job in a dozen calls.
//
// The parent blocks all signals around the clone, so no handler can run in the child while
// it shares the parent's memory; the child resets every signal the parent catches (as the
// parent found them, at most a second ago) to its default and then takes the mask it is
// given. Only one thread may spawn through a Spawner at a time
// (the stack is reused); the local backend spawns only from the coordinator's thread.
#include <sys/types.h>

#include <cstddef>

namespace sluice::local {

struct SpawnRequest {
  const char* path = nullptr;         // what execve runs (already resolved)
  char* const* argv = nullptr;        // null-terminated
  char* const* envp = nullptr;        // null-terminated
  int stdout_fd = -1;                 // becomes fd 1; else stdout_path is created
  int stderr_fd = -1;                 // becomes fd 2; else stderr_path is created
  const char* stdout_path = nullptr;  //
  const char* stderr_path = nullptr;  //
  const char* workdir = nullptr;      // chdir before exec when non-empty
  bool new_process_group = true;      // setpgid(0, 0)
  // Signals set to SIG_DFL even when ignored in the parent (caught ones always are).
  const int* default_signals = nullptr;
  std::size_t default_signal_count = 0;
};

class Spawner {
 public:
  Spawner() = default;
  ~Spawner();
  Spawner(const Spawner&) = delete;
  Spawner& operator=(const Spawner&) = delete;

  // Starts the process. 0 and its pid, or the errno of the step that failed (nothing is
  // left running then), like posix_spawn. With `pidfd`, also a pidfd of the child
  // (O_CLOEXEC), or -1 where the kernel cannot give one with the clone.
  int spawn(const SpawnRequest& request, pid_t& pid, int* pidfd = nullptr);

 private:
  void refresh_caught_signals();

  void* stack_ = nullptr;
  std::size_t stack_size_ = 0;
  int devnull_ = -1;  // the child's stdin
  // The signals the process catches (has a handler for), asked at most once a second.
  int caught_[64] = {};
  std::size_t caught_count_ = 0;
  long caught_at_s_ = -1;
  bool pidfd_works_ = true;
};

}  // namespace sluice::local
