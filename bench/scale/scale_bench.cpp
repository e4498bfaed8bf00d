// How the engine's own costs grow with the graph: loads and validates a workflow file
// (bench/gen_workflow.sh sweep|layered N), builds the DAG and the scheduler, then runs
// every task through the scheduler on a no-op backend path (each launch succeeds at
// once, 2 slots, state changes drained every step as the coordinator does), and prints
//   workload=scale shape=SHAPE n=N load_s=… sched_us_per_task=… sched_first_us_per_task=…
//   bytes_per_task=… peak_bytes_per_task=… ok=1
//
//   scale_bench SHAPE FILE
//
// sched_us_per_task: the fastest of at least three passes, and of as many as fit in 0.2 s
// (~100 at 1,000 tasks), so that every size is measured on memory the allocator already
// holds: with a single pass at 1,000,000 tasks, the comparison with 1,000 was one cold
// pass against the best of a hundred warm ones;
// sched_first_us_per_task: the first pass alone, whose memory is fresh at every size
// (on a VM where a page fault costs ~9 us, that is most of the difference).
// load_s: load_workflow_file (TOML parse, matrix expansion, every validation check,
// executables looked up on PATH) plus the cycle check the run performs. bytes_per_task:
// resident memory held once the run is done (workflow, graph, scheduler), minus what
// the process held before loading, over N; peak_bytes_per_task: the same from the peak
// (the TOML parse tree lives only during the load). No store and no processes: those
// are per-task costs measured by the process workloads; this isolates what must stay
// flat as N grows.
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "sluice/engine/graph.hpp"
#include "sluice/engine/loader.hpp"
#include "sluice/engine/scheduler.hpp"

namespace {

// Resident and peak resident memory of this process, in bytes (/proc/self/status).
void memory(long& rss, long& hwm) {
  rss = hwm = 0;
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return;
  char line[256];
  while (std::fgets(line, sizeof line, f)) {
    long kb = 0;
    if (std::sscanf(line, "VmRSS: %ld kB", &kb) == 1) rss = kb * 1024;
    if (std::sscanf(line, "VmHWM: %ld kB", &kb) == 1) hwm = kb * 1024;
  }
  std::fclose(f);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: scale_bench SHAPE FILE\n");
    return 2;
  }
  const std::string shape = argv[1];
  long rss0 = 0, hwm0 = 0;
  memory(rss0, hwm0);

  const auto t_load = std::chrono::steady_clock::now();
  auto loaded = sluice::load_workflow_file(argv[2]);
  if (!loaded) {
    for (const auto& d : loaded.error()) std::fprintf(stderr, "%s\n", d.format().c_str());
    return 1;
  }
  sluice::Workflow& wf = *loaded;
  sluice::Graph graph(wf);
  const bool acyclic = !graph.find_cycle();
  const double load_s = seconds_since(t_load);
  const std::size_t n = wf.tasks.size();

  // A small graph schedules in well under a millisecond: repeat the pass (a fresh
  // scheduler each time) at least three times and for at least 0.2 s and keep the
  // fastest, so one preemption on a busy machine does not decide the result, and every
  // size gets warm passes to compare.
  sluice::Capacity capacity;
  capacity.cpus = 2;
  double sched_s = 0;
  double first_s = 0;  // the first pass alone: its memory is fresh (page faults) at every size
  bool ok = acyclic;
  double spent = 0;
  for (int rep = 0; rep < 3 || spent < 0.2; ++rep) {
    const auto t_sched = std::chrono::steady_clock::now();
    sluice::Scheduler scheduler(wf, graph, capacity);
    auto now = std::chrono::steady_clock::now();
    scheduler.start(now);
    std::size_t launched = 0;
    while (!scheduler.done()) {
      auto launches = scheduler.take_launches();
      (void)scheduler.drain_changes();
      for (const auto& l : launches) scheduler.on_attempt_started(l.task, l.attempt, now);
      launched += launches.size();
      if (launches.empty()) break;  // nothing ready and nothing running: stuck
      for (const auto& l : launches) {
        sluice::Completion c;
        c.task = l.task;
        c.attempt = l.attempt;
        (void)scheduler.on_attempt_finished(c, now);
      }
      (void)scheduler.on_tick(now);
    }
    (void)scheduler.drain_changes();
    const double s = seconds_since(t_sched);
    spent += s;
    sched_s = rep == 0 ? s : std::min(sched_s, s);
    if (rep == 0) first_s = s;
    ok = ok && scheduler.done() && launched == n &&
         scheduler.run_state() == sluice::RunState::kSucceeded;
  }

  long rss1 = 0, hwm1 = 0;
  malloc_trim(0);  // what the process holds, not what the allocator kept from the parse
  memory(rss1, hwm1);
  const double per = n ? 1.0 / static_cast<double>(n) : 0;
  std::printf(
      "workload=scale shape=%s n=%zu load_s=%.3f sched_s=%.3f sched_us_per_task=%.3f "
      "sched_first_us_per_task=%.3f bytes_per_task=%.0f peak_bytes_per_task=%.0f ok=%d\n",
      shape.c_str(), n, load_s, sched_s, sched_s * 1e6 * per, first_s * 1e6 * per,
      static_cast<double>(rss1 - rss0) * per, static_cast<double>(hwm1 - rss0) * per, ok ? 1 : 0);
  return ok ? 0 : 1;
}
