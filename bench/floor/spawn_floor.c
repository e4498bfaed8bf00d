/* The spawn floor: what running N tiny processes costs with nothing else around it.
 *
 *   spawn_floor N [JOBS [CMD ARG...]]
 *
 * Spawns CMD (default `true`, found on PATH) N times with at most JOBS (default 2) in
 * flight, waiting for each with waitpid. No files, no environment changes, no
 * bookkeeping: every workflow engine that runs tasks as processes pays at least this,
 * so bench.sh prints it beside Sluice and the peers. Exit 1 if any child failed. */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

extern char** environ;

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: spawn_floor N [JOBS [CMD ARG...]]\n");
    return 2;
  }
  long n = strtol(argv[1], NULL, 10);
  long jobs = argc > 2 ? strtol(argv[2], NULL, 10) : 2;
  char* default_cmd[] = {"true", NULL};
  char** cmd = argc > 3 ? argv + 3 : default_cmd;
  if (n < 0 || jobs < 1) return 2;
  long started = 0, running = 0, failed = 0;
  while (started < n || running > 0) {
    while (started < n && running < jobs) {
      pid_t pid;
      if (posix_spawnp(&pid, cmd[0], NULL, NULL, cmd, environ) != 0) {
        perror("posix_spawnp");
        return 1;
      }
      ++started;
      ++running;
    }
    int status;
    if (wait(&status) < 0) {
      perror("wait");
      return 1;
    }
    --running;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
  }
  return failed ? 1 : 0;
}
