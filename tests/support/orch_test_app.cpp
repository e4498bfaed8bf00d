// An orchestration for the orchestration tests, its behaviour picked by environment
// variables (so that a resumed run can behave differently, as a non-deterministic
// orchestration would):
//   ORCH_X=N          the argument of the first call (vary it between runs: the replay
//                     must stop at call 1)
//   ORCH_FAIL=1       an uncaught failing call ends the run after the first calls
//   ORCH_CALL_LOG=F   every square() appends its argument to F
// It awaits a failing call and catches it, uses ctx.random(), a nested orchestration
// and command tasks, and returns what it saw.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <sluice/sdk.hpp>
#include <stdexcept>
#include <string>

namespace {

long square(long x) {
  if (const char* log = std::getenv("ORCH_CALL_LOG")) {
    const int fd = ::open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    const std::string line = std::to_string(x) + "\n";
    if (fd >= 0) {
      (void)!::write(fd, line.data(), line.size());
      ::close(fd);
    }
  }
  return x * x;
}
long boom(long x) {
  throw std::runtime_error("boom " + std::to_string(x));
}

const auto square_t = sluice::task("square", "1", &square);
const auto boom_t = sluice::task("boom", "1", &boom);

long env_long(const char* name, long fallback) {
  const char* v = std::getenv(name);
  return v ? std::atol(v) : fallback;
}

sluice::Orchestration<long> sum_of_squares(sluice::Context& ctx, long n) {
  long sum = 0;
  for (long i = 1; i <= n; ++i) sum += co_await ctx.call(square_t, i);
  co_return sum;
}

sluice::Orchestration<std::map<std::string, long>> body(sluice::Context& ctx) {
  std::map<std::string, long> out;
  out["first"] = co_await ctx.call(square_t, env_long("ORCH_X", 3));
  const long r = static_cast<long>(ctx.random() % 1000);
  out["random_squared"] = co_await ctx.call(square_t, r);
  try {
    co_await ctx.call(boom_t, 7L);
    out["caught"] = 0;
  } catch (const sluice::Error& e) {
    // The task's reason: "boom@1: boom 7" in-process, "exit code 1" from a worker process.
    out["caught"] = std::string(e.what()).find("orch.call-4-boom") != std::string::npos ? 1 : 2;
  }
  if (env_long("ORCH_FAIL", 0) != 0) co_await ctx.call(boom_t, 8L);  // not caught
  out["nested"] = co_await sum_of_squares(ctx, 3);                   // 1 + 4 + 9
  // (Argument lists built outside the co_await: g++ 12 rejects a braced list of string
  // literals whose lifetime spans a suspension.)
  std::vector<std::string> exit0, exit3;
  for (const char* a : {"sh", "-c"}) {
    exit0.emplace_back(a);
    exit3.emplace_back(a);
  }
  exit0.emplace_back("exit 0");
  exit3.emplace_back("exit 3");
  // (The calls are made outside the co_await: g++ 12 miscompiles the destruction of a
  // suspended frame whose awaited full-expression holds a temporary with a destructor.)
  const sluice::CallOptions none;
  auto ok_call = ctx.command(none, exit0);
  auto bad_call = ctx.command(none, exit3);
  auto ok = co_await ok_call;
  auto bad = co_await bad_call;
  out["command_ok"] = ok.exit_status;
  out["command_bad"] = bad.exit_status;
  std::vector<sluice::Call<long>> race;
  race.push_back(ctx.call(square_t, 20L));
  race.push_back(ctx.call(square_t, 21L));
  const std::size_t first = co_await ctx.any(race);
  out["any"] = co_await race[first];
  co_return out;
}

}  // namespace

int main(int argc, char** argv) {
  auto o = sluice::orchestration("orch", "tests", body);
  return sluice::main(argc, argv, o);
}
