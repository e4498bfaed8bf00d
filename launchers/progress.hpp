// Progress of a run as one line of text, shared by `sluice run` (fed by the scheduler)
// and `sluice watch` (fed by polling the store from another terminal).
//
// The ETA comes from the completion rate over a recent window, not since the start:
// startup, a slow first wave or a pause would otherwise skew it for the rest of the
// run. Until the window holds a rate (some tasks finished over a second or more) no
// ETA is shown. Not thread-safe: one per display.
#pragma once

#include <array>
#include <cstddef>
#include <cstdio>
#include <deque>
#include <optional>
#include <string>
#include <utility>

#include "sluice/state.hpp"

namespace sluice::cli {

using StateCounts = std::array<std::size_t, kTaskStateCount>;

// Estimates time left from (time, tasks done) samples within the last `window_s`.
class EtaEstimator {
 public:
  explicit EtaEstimator(double window_s = 30.0) : window_s_(window_s) {}

  // Records that `done` tasks of `total` had ended at `t_s` (seconds, any fixed origin,
  // non-decreasing).
  void sample(double t_s, std::size_t done, std::size_t total);
  // Tasks per second over the window, or nullopt while there is no rate yet (fewer
  // than two samples a second apart, or nothing finished within the window).
  std::optional<double> rate() const;
  // Seconds left at the current rate, or nullopt when there is no rate (or nothing left).
  std::optional<double> eta_s() const;

 private:
  double window_s_;
  std::deque<std::pair<double, std::size_t>> samples_;
  std::size_t total_ = 0;
};

// "[   12.3s] 40/100 done: 40 succeeded, 0 failed, … | 2 running, 0 ready, 58 waiting | eta 15s"
std::string format_progress(const StateCounts& counts, double elapsed_s,
                            std::optional<double> eta_s);

std::size_t done_count(const StateCounts& counts);
std::size_t total_count(const StateCounts& counts);

// Where progress lines go: on a terminal one line rewritten in place; otherwise a line
// every `every_s` seconds (batch logs stay readable); always a final summary line.
class ProgressPrinter {
 public:
  ProgressPrinter(std::FILE* out, bool quiet, double every_s);

  // `t_s`: seconds since the run started (the elapsed time shown).
  void update(const StateCounts& counts, double t_s, bool final);

 private:
  std::FILE* out_;
  bool quiet_, tty_;
  double every_s_;
  double last_line_s_ = -1e300;
  EtaEstimator eta_;
};

}  // namespace sluice::cli
