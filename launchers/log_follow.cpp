#include "log_follow.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <thread>

#include "cli.hpp"
#include "sluice/engine/attempt_logs.hpp"
#include "sluice/engine/log_spool.hpp"

namespace sluice::cli {
namespace {

namespace fs = std::filesystem;

constexpr std::chrono::milliseconds kFollowPoll{200};

// One stream being followed: what was gathered and how much of it was printed.
struct Followed {
  std::string text;
  std::size_t printed = 0;
  void print(std::FILE* to) {
    if (text.size() > printed) {
      std::fwrite(text.data() + printed, 1, text.size() - printed, to);
      std::fflush(to);
      printed = text.size();
    }
  }
};

// The frames of one spool read so far, per stream.
struct SpoolCursor {
  std::uint64_t out_offset = 0, err_offset = 0;
  bool seen = false, other = false;
};

bool attempt_running(RunStore& store, const std::string& run_id, TaskId task,
                     std::uint32_t attempt) {
  auto attempts = store.list_attempts(run_id, task);
  if (!attempts) return false;
  for (const AttemptRecord& a : *attempts)
    if (a.attempt == attempt) return !is_terminal(a.state);
  return true;  // launched, not yet recorded (group commit)
}

}  // namespace

void follow_attempt_log(RunStore& store, const std::string& run_id, TaskId task,
                        const std::string& name, std::uint32_t attempt, bool want_stdout,
                        bool want_stderr) {
  Followed out, err;
  std::map<std::string, SpoolCursor> cursors;
  const std::string spools = store.run_dir(run_id) + "/spools";
  const std::string dir = store.attempt_dir(run_id, name, attempt);
  for (;;) {
    // Ended: the store's record is the truth; print what the frames did not show yet.
    if (!attempt_running(store, run_id, task, attempt)) {
      std::string final_out, final_err;
      if (want_stdout)
        (void)read_attempt_log(store, run_id, task, name, attempt, LogStream::kStdout, final_out);
      if (want_stderr)
        (void)read_attempt_log(store, run_id, task, name, attempt, LogStream::kStderr, final_err);
      if (final_out.size() >= out.printed) out.text = std::move(final_out);
      if (final_err.size() >= err.printed) err.text = std::move(final_err);
      out.print(stdout);
      err.print(stderr);
      return;
    }
    // Running: its frames, in whichever spool its lane writes (a file per attempt where
    // the backend does not spool).
    std::error_code ec;
    bool framed = false;
    for (const auto& entry : fs::directory_iterator(spools, ec)) {
      SpoolCursor& c = cursors[entry.path().string()];
      if (c.other) continue;
      std::string o, e;
      bool seen_o = c.seen, other_o = false, seen_e = c.seen, other_e = false;
      (void)scan_spool(entry.path().string(), &c.out_offset, task, attempt, LogStream::kStdout, o,
                       &seen_o, &other_o);
      (void)scan_spool(entry.path().string(), &c.err_offset, task, attempt, LogStream::kStderr, e,
                       &seen_e, &other_e);
      c.seen = seen_o || seen_e;
      c.other = other_o && other_e;
      framed |= c.seen;
      out.text += o;
      err.text += e;
    }
    if (!framed) {
      std::string o, e;
      if (want_stdout)
        (void)read_attempt_log(store, run_id, task, name, attempt, LogStream::kStdout, o);
      if (want_stderr)
        (void)read_attempt_log(store, run_id, task, name, attempt, LogStream::kStderr, e);
      if (o.size() > out.text.size()) out.text = std::move(o);
      if (e.size() > err.text.size()) err.text = std::move(e);
    }
    if (want_stdout) out.print(stdout);
    if (want_stderr) err.print(stderr);
    std::this_thread::sleep_for(kFollowPoll);
  }
}

}  // namespace sluice::cli
