// Reads a run that another process started — by id, read-only — and prints its status,
// its tasks, the results of its final tasks and one task's log.
//
//   ./read_run RUN [TASK]      (SLUICE_HOME selects the store, as for `sluice`)
#include <cstdio>
#include <sluice/sdk.hpp>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s RUN [TASK]\n", argv[0]);
    return 2;
  }
  try {
    auto run = sluice::WorkflowRun::by_id(argv[1]);
    auto results = run.get_results(/*wait=*/true);
    std::printf("run %s of %s: %s\n", run.id().c_str(), run.workflow_id().c_str(),
                std::string(sluice::to_string(run.get_status())).c_str());
    for (const auto& t : run.tasks())
      std::printf("task %s %s attempts=%u\n", t.name.c_str(),
                  std::string(sluice::to_string(t.state)).c_str(), t.attempts);
    for (const auto& [task, value] : results)
      std::printf("result %s %s\n", task.c_str(), sluice::describe(value).c_str());
    if (argc > 2) std::printf("stdout of %s:\n%s", argv[2], run.logs(argv[2]).c_str());
    return run.get_status() == sluice::RunState::kSucceeded ? 0 : 1;
  } catch (const sluice::Error& e) {  // e.code: kNotFound for an unknown run, ...
    std::fprintf(stderr, "read_run: %s\n", e.what());
    return 2;
  }
}
