#include "progress.hpp"

#include <unistd.h>

namespace sluice::cli {

void EtaEstimator::sample(double t_s, std::size_t done, std::size_t total) {
  total_ = total;
  // Callers may report every few milliseconds: keep at most ~4 samples a second.
  if (samples_.size() >= 2 && t_s - samples_[samples_.size() - 2].first < 0.25)
    samples_.back() = {t_s, done};
  else
    samples_.emplace_back(t_s, done);
  // Keep the newest sample older than the window too: it anchors the rate's start.
  while (samples_.size() > 2 && samples_[1].first <= t_s - window_s_) samples_.pop_front();
}

std::optional<double> EtaEstimator::rate() const {
  if (samples_.size() < 2) return std::nullopt;
  const auto& [t0, d0] = samples_.front();
  const auto& [t1, d1] = samples_.back();
  if (t1 - t0 < 1.0 || d1 <= d0) return std::nullopt;
  return static_cast<double>(d1 - d0) / (t1 - t0);
}

std::optional<double> EtaEstimator::eta_s() const {
  auto r = rate();
  if (!r || samples_.empty()) return std::nullopt;
  const std::size_t done = samples_.back().second;
  if (done >= total_) return std::nullopt;
  return static_cast<double>(total_ - done) / *r;
}

std::size_t done_count(const StateCounts& c) {
  auto n = [&](TaskState st) { return c[static_cast<int>(st)]; };
  return n(TaskState::kSucceeded) + n(TaskState::kFailed) + n(TaskState::kCancelled) +
         n(TaskState::kSkipped);
}

std::size_t total_count(const StateCounts& c) {
  std::size_t total = 0;  // grows as attempts add dynamic children
  for (std::size_t k : c) total += k;
  return total;
}

std::string format_progress(const StateCounts& c, double elapsed_s, std::optional<double> eta_s) {
  auto n = [&](TaskState st) { return c[static_cast<int>(st)]; };
  char buf[320];
  std::snprintf(buf, sizeof(buf),
                "[%7.1fs] %zu/%zu done: %zu succeeded, %zu failed, %zu skipped, %zu cancelled"
                " | %zu running, %zu ready, %zu waiting",
                elapsed_s, done_count(c), total_count(c), n(TaskState::kSucceeded),
                n(TaskState::kFailed), n(TaskState::kSkipped), n(TaskState::kCancelled),
                n(TaskState::kRunning) + n(TaskState::kQueued), n(TaskState::kReady),
                n(TaskState::kWaiting));
  std::string line = buf;
  if (eta_s) {
    std::snprintf(buf, sizeof(buf), " | eta %.0fs", *eta_s);
    line += buf;
  }
  return line;
}

ProgressPrinter::ProgressPrinter(std::FILE* out, bool quiet, double every_s)
    : out_(out), quiet_(quiet), tty_(::isatty(::fileno(out)) == 1), every_s_(every_s) {}

void ProgressPrinter::update(const StateCounts& counts, double t_s, bool final) {
  eta_.sample(t_s, done_count(counts), total_count(counts));
  if (final) {
    if (tty_ && !quiet_) std::fprintf(out_, "\r\033[K");
    std::fprintf(out_, "%s\n", format_progress(counts, t_s, std::nullopt).c_str());
    std::fflush(out_);
    return;
  }
  if (quiet_) return;
  const std::string line = format_progress(counts, t_s, eta_.eta_s());
  if (tty_) {
    std::fprintf(out_, "\r\033[K%s", line.c_str());
    std::fflush(out_);
  } else if (t_s - last_line_s_ >= every_s_) {
    last_line_s_ = t_s;
    std::fprintf(out_, "%s\n", line.c_str());
    std::fflush(out_);
  }
}

}  // namespace sluice::cli
