// Runs a program and captures what it prints, for the CLI driver (sbatch, squeue, ...).
#pragma once

#include <string>
#include <vector>

namespace sluice::slurm {

struct ProcessResult {
  int status = -1;  // exit status; -1 when it could not be started or was killed
  std::string out, err;
};

// Runs argv[0] (looked up on PATH) with stdin from /dev/null and waits for it.
ProcessResult run_process(const std::vector<std::string>& argv);

}  // namespace sluice::slurm
