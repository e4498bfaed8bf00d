// The data a run report shows, as one JSON document the page's script draws from:
// summary, counts per state, every attempt placed on a host/slot lane, failed tasks with
// the tail of their stderr, and artifacts with their sizes. Arrays are columnar
// (one array per field) so a 10,000-task run stays a few hundred kilobytes.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "run_view.hpp"

namespace sluice::cli {

struct LaneInterval {
  std::int64_t start = 0, end = 0;  // end >= start
  std::uint32_t host = 0;
};

// Places intervals on lanes greedily: in order of start, each goes to the lowest slot of
// its host that is free by then (a new slot when none is). Returns the slot of each
// interval, in input order; `slots_per_host[h]` is set to how many host h needed.
std::vector<std::uint32_t> assign_slots(const std::vector<LaneInterval>& intervals,
                                        std::vector<std::uint32_t>& slots_per_host);

struct ReportLimits {
  std::size_t stderr_tail_bytes = 4096;
  std::size_t failed_with_logs = 200;  // failed tasks beyond this are listed without logs
};

// REQUIRES: view.run is set. Reads stderr tails and artifact sizes from attempt dirs.
nlohmann::json report_json(const RunView& view, RunStore& store, std::int64_t now_us,
                           const ReportLimits& limits = {});

}  // namespace sluice::cli
