// Launch throughput of the local backend alone: N `true` processes with IN_FLIGHT at a
// time, launched and polled the way the coordinator does, with no store, scheduler or
// workflow file. What the backend adds over the spawn floor (bench/floor/spawn_floor.c).
//
//   local_launch_bench [N] [IN_FLIGHT]     (default 2000 2)
//
// Prints one line, e.g.
//   workload=local_launch n=2000 in_flight=2 wall_s=1.234 tasks_per_s=1621 ok=1
// ok=1 when every process exited 0 and each task completed exactly once; the exit
// status is 1 otherwise.
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "local_backend.hpp"

using namespace std::chrono_literals;

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 2000;
  const int in_flight = argc > 2 ? std::atoi(argv[2]) : 2;
  if (n <= 0 || in_flight <= 0) {
    std::fprintf(stderr, "usage: local_launch_bench [N] [IN_FLIGHT]\n");
    return 2;
  }
  std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-launch-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::filesystem::path root = tmpl;

  sluice::BackendOptions opts;
  opts.cpus = in_flight;
  auto backend = sluice::make_local_backend(opts);
  sluice::TaskSpec spec;
  spec.name = "t";
  spec.command = {"true"};
  spec.workdir = root.string();
  // Four attempt directories, reused: the file system's cost is not what is measured.
  std::vector<std::string> dirs;
  for (int i = 0; i < 4; ++i) {
    dirs.push_back((root / ("d" + std::to_string(i))).string());
    std::filesystem::create_directories(dirs.back());
  }

  std::vector<sluice::Completion> out;
  out.reserve(static_cast<std::size_t>(n));
  int launched = 0;
  bool ok = true;
  const auto start = std::chrono::steady_clock::now();
  while (ok && out.size() < static_cast<std::size_t>(n)) {
    while (backend->in_flight() < static_cast<std::size_t>(in_flight) && launched < n) {
      sluice::LaunchRequest r;
      r.task = static_cast<sluice::TaskId>(launched);
      r.attempt = 1;
      r.spec = &spec;
      r.attempt_dir = dirs[static_cast<std::size_t>(launched % 4)];
      if (!backend->launch(r)) {
        std::fprintf(stderr, "launch %d failed\n", launched);
        ok = false;
        break;
      }
      ++launched;
    }
    backend->poll(out, 1000ms);
  }
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::set<sluice::TaskId> tasks;
  for (const auto& c : out) {
    ok = ok && c.ok();
    tasks.insert(c.task);
  }
  ok = ok && out.size() == static_cast<std::size_t>(n) && tasks.size() == out.size();
  backend.reset();
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
  std::printf("workload=local_launch n=%d in_flight=%d wall_s=%.3f tasks_per_s=%.0f ok=%d\n", n,
              in_flight, wall, n / wall, ok ? 1 : 0);
  return ok ? 0 : 1;
}
