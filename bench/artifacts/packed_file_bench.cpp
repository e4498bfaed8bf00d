// packed_file_bench: what writing a run's view run.h5 costs per task (the coordinator
// writes it once, at the end of a run; bench/functions_bench.sh's wall time includes it).
//
//   packed_file_bench [N ...]   (default: 1000 10000 100000)
//
// Each task packs one int64 under "result", as an SDK function task that returns an int;
// every task has one provenance row. Prints one line per N:
//   workload=packed_file n=10000 wall_s=… us_per_task=… bytes_per_task=… ok=1
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "sluice/engine/packed_file.hpp"
#include "sluice/value.hpp"

int main(int argc, char** argv) {
  std::vector<long> sizes;
  for (int i = 1; i < argc; ++i) sizes.push_back(std::atol(argv[i]));
  if (sizes.empty()) sizes = {1000, 10000, 100000};
  const char* tmp = std::getenv("TMPDIR");
  int failed = 0;
  for (long n : sizes) {
    std::vector<sluice::Map> values(static_cast<std::size_t>(n));
    std::vector<sluice::ProvenanceRow> rows(static_cast<std::size_t>(n));
    sluice::PackedFileContents contents;
    for (long i = 0; i < n; ++i) {
      const std::string name = i == 0 ? "triple" : "triple." + std::to_string(i);
      values[i].insert_or_assign("result", sluice::Value(std::int64_t{3 * i}));
      contents.tasks.emplace_back(name, &values[i]);
      rows[i].task = name + "@1";
      rows[i].attempt = 1;
      rows[i].host = "node";
      rows[i].command = "app __sluice_worker triple@1 [" + std::to_string(i) + "]";
    }
    contents.provenance = &rows;
    const std::string path = std::string(tmp ? tmp : "/tmp") + "/packed_file_bench-" +
                             std::to_string(::getpid()) + ".h5";
    const auto t0 = std::chrono::steady_clock::now();
    auto ok = sluice::write_packed_file(path, contents);
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    struct stat st {};
    ::stat(path.c_str(), &st);
    ::unlink(path.c_str());
    if (!ok) {
      std::fprintf(stderr, "packed_file_bench: %s\n", ok.error().message.c_str());
      ++failed;
    }
    std::printf(
        "workload=packed_file n=%ld wall_s=%.3f us_per_task=%.2f bytes_per_task=%.0f ok=%d\n", n,
        wall, wall * 1e6 / static_cast<double>(n),
        static_cast<double>(st.st_size) / static_cast<double>(n), ok ? 1 : 0);
  }
  return failed ? 1 : 0;
}
