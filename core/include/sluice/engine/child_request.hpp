// Dynamic children: tasks that a running attempt adds to its run (map-reduce whose
// width is only known at run time: one task per input file found, per partition, per
// sampled hyper-parameter).
//
// A running attempt asks for children by writing child requests into its own attempt
// directory (ATTEMPT_DIR/children/00000001.toml, …), each written atomically; it
// talks to nothing else, so the same call works in a local process, a Slurm job on a
// compute node or an MPI rank. The coordinator reads the requests when the attempt has
// succeeded and adds them to the graph in one store transaction with the attempt's
// success. A failed attempt's requests are never read: its retry starts clean.
//
//   sluice::ChildRequest c;
//   c.spec.name = "square-3";
//   c.spec.command = {"sh", "-c", "sluice put y $((3*3))"};
//   c.before = "reduce";                 // reduce waits for it and gets its artifact
//   auto file = sluice::add_child(c);    // in the attempt of $SLUICE_ATTEMPT_DIR
//
// A child request document holds one or more [tasks.NAME] tables written like tasks
// in a workflow file (command or shell, cpus, gpus, executor, retries, env, matrix, …)
// plus `before = "DOWNSTREAM"`; `after` is not allowed: a child depends on its parent.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "sluice/engine/loader.hpp"
#include "sluice/error.hpp"
#include "sluice/task_spec.hpp"

namespace sluice {

struct ChildRequest {
  TaskSpec spec;       // `after` is ignored: the engine makes the requesting task its parent
  std::string before;  // the task that must wait for this child; empty: none
};

// The request as a child request document (TOML). Every field is written out, paths
// absolute, so the text alone rebuilds the task (the store keeps it for resume).
std::string child_request_text(const ChildRequest& child);

// Parses a child request document: one ChildRequest per task (matrix instances
// expanded), in the order written. Problems come back as file:line:col diagnostics.
// Relative workdirs resolve against `base_dir`; a task without one runs in base_dir.
tl::expected<std::vector<ChildRequest>, Diagnostics> parse_child_requests(
    std::string_view text, const std::string& display_name, const std::string& base_dir);

// Where an attempt's requests go, appended to its directory.
inline constexpr const char* kChildRequestDir = "/children";

// Stores a request document in ATTEMPT_DIR/children/ under the next sequence number,
// atomically (written to a temporary file, then linked into place), and returns its
// path. Safe to call from several processes of one attempt at once.
Expected<std::string> write_child_request(const std::string& attempt_dir, std::string_view text);

// The request files of an attempt, in the order they were written. Empty when none.
Expected<std::vector<std::string>> list_child_requests(const std::string& attempt_dir);

// For code running inside an attempt (the SDK's ctx.add_child): validates `child` and
// writes it into the attempt named by $SLUICE_ATTEMPT_DIR. Returns the request's path.
Expected<std::string> add_child(const ChildRequest& child);

}  // namespace sluice
