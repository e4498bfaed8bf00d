// The Backend contract (sluice/engine/backend.hpp), written once and checked for every
// backend. A backend's test describes how to make it and how its world moves, then calls
// check_backend_contract() inside a TEST_CASE; each check is a SECTION, so Catch runs
// every one against a fresh backend:
//
//   TEST_CASE("local backend keeps the Backend contract", "[conformance]") {
//     sluice::conformance::Target t;
//     t.name = "local";
//     t.make = [] { return sluice::make_local_backend({}); };
//     sluice::conformance::check_backend_contract(t);
//   }
//
// Checked: launch() starts the attempt or errors leaving nothing running (in_flight()
// unchanged, no Completion); exactly one Completion per launched attempt, successes ok()
// and failures not; in_flight() counts attempts launched and not yet reported; kill() of
// a finished or unknown attempt is a no-op, of a running one ends it with one Completion;
// poll() returns within its timeout (plus scheduling slack) whether or not anything runs;
// launch_batch() gives one result per request, in order; after a "restart" (a second
// backend over the same world), reattach() either takes the attempt back and reports it
// exactly once, or refuses and abandon() leaves the new backend with nothing in flight.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "sluice/engine/backend.hpp"

namespace sluice::conformance {

// What the suite asks of an attempt.
enum class Behaviour {
  kSucceeds,         // ends by itself, ok()
  kFails,            // ends by itself, not ok()
  kRunsUntilKilled,  // runs until kill() (or Target::release)
};

struct Target {
  std::string name;
  // A fresh backend over the same world (the same fake cluster, the same machine). Called
  // once per check, and a second time to play a restarted coordinator.
  std::function<std::unique_ptr<Backend>()> make;
  // The task an attempt of `behaviour` runs, named `name` (fake worlds decide by the
  // name's start: "ok", "fail", "hang"). Default: command tasks `true`, `exit 3`,
  // `sleep 60`.
  std::function<TaskSpec(Behaviour behaviour, const std::string& name)> spec;
  // One step of the world outside the backend (a fake worker answering, a fake cluster
  // moving on), between two polls; `run_dir` holds the attempt directories
  // (RUN_DIR/tasks/NAME/ATTEMPT). Optional.
  std::function<void(const std::string& run_dir)> pump;
  // Ends attempts the backend cannot kill once running (inproc's functions). Optional.
  std::function<void()> release;
  bool kills_running = true;
  // False when make() cannot give a second, independent backend (mpi: one per MPI job,
  // shared by every check): the restart check is then left out.
  bool restarts = true;
  // How long an attempt may take from launch to its Completion.
  std::chrono::milliseconds patience{30'000};
  // Slack allowed past poll()'s timeout (a loaded machine, a slow fake world).
  std::chrono::milliseconds poll_slack{1'000};
};

// Runs every check as a SECTION of the calling TEST_CASE.
void check_backend_contract(const Target& target);

}  // namespace sluice::conformance
