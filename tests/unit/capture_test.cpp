// run_command: the one way sluice runs a helper program (nvidia-smi, sbatch, squeue):
// its deadline kills the whole process group, its stdin is fed without deadlock.
#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "sluice/engine/capture.hpp"
#include "support/spawn.hpp"

using namespace sluice;
using sluice::testing::process_gone;
using Clock = std::chrono::steady_clock;

namespace {

bool gone_within(pid_t pid, std::chrono::milliseconds limit) {
  const auto until = Clock::now() + limit;
  while (Clock::now() < until) {
    if (process_gone(pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return process_gone(pid);
}

}  // namespace

TEST_CASE("run_command kills a program that outlives its deadline, process group and all",
          "[unit][capture]") {
  // The shell starts a background sleep (same process group) that also holds stdout,
  // then sleeps itself: neither the shell's exit nor the pipes' closing ends the wait.
  CommandOptions o;
  o.timeout = std::chrono::milliseconds(300);
  const auto start = Clock::now();
  auto r = run_command({"sh", "-c", "sleep 100 & echo $!; exec sleep 100"}, o);
  const auto took = Clock::now() - start;
  REQUIRE(r);
  CHECK(r->timed_out);
  CHECK_FALSE(r->ok());
  CHECK(r->exit_code == 128 + SIGKILL);
  CHECK(took >= std::chrono::milliseconds(300));
  CHECK(took < std::chrono::seconds(3));
  const pid_t background = static_cast<pid_t>(std::stol(r->out));
  REQUIRE(background > 0);
  CHECK(gone_within(background, std::chrono::seconds(2)));
  CHECK(describe_outcome({"sh"}, *r, o.timeout) == "sh timed out after 300ms (killed)");
}

TEST_CASE("run_command's deadline also bounds a program that closed its output",
          "[unit][capture]") {
  CommandOptions o;
  o.timeout = std::chrono::milliseconds(200);
  const auto start = Clock::now();
  auto r = run_command({"sh", "-c", "exec >/dev/null 2>&1; sleep 100"}, o);
  REQUIRE(r);
  CHECK(r->timed_out);
  CHECK(Clock::now() - start < std::chrono::seconds(3));
}

TEST_CASE("run_command feeds stdin and reports how a failed program ended", "[unit][capture]") {
  CommandOptions o;
  o.timeout = std::chrono::seconds(20);
  o.input = "hello\n";
  auto echo = run_command({"cat"}, o);
  REQUIRE(echo);
  CHECK(echo->ok());
  CHECK(echo->out == "hello\n");

  // More than a pipe or socket buffer each way: written and read at once, no deadlock.
  o.input = std::string(3 << 20, 'x');
  o.max_bytes = 4 << 20;
  auto big = run_command({"cat"}, o);
  REQUIRE(big);
  CHECK(big->ok());
  CHECK(big->out.size() == (3u << 20));

  // A program that does not read its stdin at all: no SIGPIPE here, no hang.
  o.input = std::string(3 << 20, 'y');
  auto deaf = run_command({"sh", "-c", "echo not reading >&2; exit 4"}, o);
  REQUIRE(deaf);
  CHECK_FALSE(deaf->timed_out);
  CHECK(deaf->exit_code == 4);
  CHECK(describe_outcome({"tool", "arg"}, *deaf, o.timeout) ==
        "tool exited with status 4: not reading");

  auto killed = run_command({"sh", "-c", "kill -TERM $$"}, CommandOptions{});
  REQUIRE(killed);
  CHECK(describe_outcome({"sh"}, *killed, std::chrono::seconds(1)) == "sh was killed by signal 15");

  auto none = run_command({"no-such-program-sluice"}, CommandOptions{});
  REQUIRE_FALSE(none);
  CHECK(none.error().code == ErrorCode::kNotFound);
}

TEST_CASE("run_command gives up on a program when the caller abandons the wait",
          "[unit][capture]") {
  CommandOptions o;
  o.timeout = std::chrono::seconds(60);
  const auto start = Clock::now();
  o.abandon = [&] { return Clock::now() - start > std::chrono::milliseconds(200); };
  auto r = run_command({"sh", "-c", "sleep 100 & echo $!; exec sleep 100"}, o);
  const auto took = Clock::now() - start;
  REQUIRE(r);
  CHECK(r->abandoned);
  CHECK_FALSE(r->timed_out);
  CHECK_FALSE(r->ok());
  CHECK(took < std::chrono::seconds(2));  // not the 60 s deadline
  const pid_t background = static_cast<pid_t>(std::stol(r->out));
  CHECK(gone_within(background, std::chrono::seconds(2)));
  CHECK(describe_outcome({"squeue"}, *r, o.timeout) == "squeue abandoned (the run is stopping)");

  // Never asked to: it runs to its end.
  o.abandon = [] { return false; };
  auto done = run_command({"sh", "-c", "sleep 0.3; echo ok"}, o);
  REQUIRE(done);
  CHECK(done->ok());
  CHECK(done->out == "ok\n");
}

TEST_CASE("describe_outcome escapes control characters a program printed", "[unit][capture]") {
  auto r = run_command({"sh", "-c", "printf 'bad \\033[2J\\033]0;x\\007 end\\n' >&2; exit 1"},
                       CommandOptions{});
  REQUIRE(r);
  CHECK(describe_outcome({"sbatch"}, *r, std::chrono::seconds(1)) ==
        "sbatch exited with status 1: bad \\x1b[2J\\x1b]0;x\\x07 end");
}
