// Strangers that flood the coordinator's port: clients that stream bytes and clients that
// declare and send the largest frame, each a process of its own on loopback, while a
// worker with the key keeps completing tasks. The coordinator (this process) must stay
// within 50 MB of its resident size before the flood, keep completing tasks on time and
// keep writing workers.json. Before the fix, one client declaring a 64 MiB frame and
// streaming took it from 5 MB to 542 MB in 3 s, its loop stuck reading (5 tasks launched
// instead of 60); these eleven clients, to 309 MB with a task waiting 1.6 s.
#include <catch2/catch.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "pilot_backend.hpp"
#include "pilot_fakes.hpp"
#include "pilot_handshake.hpp"
#include "pilot_net.hpp"
#include "pilot_wire.hpp"

using namespace sluice;
using namespace sluice::pilot;
using namespace sluice::pilot::testing;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// The largest resident size this process has had: a loop stalled in a read is measured too.
std::int64_t peak_resident_bytes() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<std::int64_t>(ru.ru_maxrss) * 1024;
}

// A client that sends for `seconds`, reconnecting whenever the coordinator drops it:
// `declare` first sends the header of a frame of the largest allowed size.
[[noreturn]] void flood(const std::string& address, bool declare, int seconds) {
  const auto until = Clock::now() + std::chrono::seconds(seconds);
  const std::string chunk(4 << 20, 'A');
  int sndbuf = 8 << 20;
  while (Clock::now() < until) {
    auto fd = connect_tcp(address, 1000);
    if (!fd) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    ::setsockopt(fd->get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    timeval tv{0, 200'000};
    ::setsockopt(fd->get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (declare) {
      const std::uint32_t len = kMaxFrame;
      ::send(fd->get(), &len, sizeof len, MSG_NOSIGNAL);
      ::send(fd->get(), "\1", 1, MSG_NOSIGNAL);
    }
    while (Clock::now() < until) {
      const ssize_t n = ::send(fd->get(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) break;
    }
  }
  ::_exit(0);
}

// A worker with the run's key that completes every launch at once, until killed.
[[noreturn]] void serve_completing(const std::string& address, const std::string& key_hex) {
  auto fd = connect_tcp(address, 2000);
  if (!fd) ::_exit(1);
  Connection conn(std::move(*fd));
  auto key = Key::from_hex(key_hex);
  std::string why;
  if (!key || authenticate(conn, *key, 5000, why) != AuthResult::kAccepted) ::_exit(2);
  Hello h;
  h.job_id = "101";
  h.host = "node1";
  h.cpus = 4;
  conn.send(MsgType::kHello, encode_hello(h));
  if (!conn.flush_blocking(1000)) ::_exit(3);
  for (;;) {
    pollfd p{conn.fd(), POLLIN, 0};
    ::poll(&p, 1, 100);
    if (!conn.read_some()) ::_exit(0);
    MsgType type;
    std::string_view payload;
    bool bad = false;
    std::vector<Completion> done;
    while (conn.next(type, payload, bad)) {
      if (type != MsgType::kLaunch && type != MsgType::kLaunches) continue;
      std::vector<Launch> ls;
      if (!decode_any_launch(type, payload, ls)) ::_exit(4);
      for (const Launch& l : ls) {
        Completion c;
        c.task = l.task;
        c.attempt = l.attempt;
        done.push_back(c);
      }
    }
    if (bad) ::_exit(5);
    if (!done.empty()) conn.send(MsgType::kCompletions, encode_completions(done));
    if (conn.wants_write() && !conn.flush_blocking(1000)) ::_exit(6);
  }
}

pid_t start(auto child) {
  const pid_t pid = ::fork();
  if (pid == 0) child();
  return pid;
}

}  // namespace

TEST_CASE("clients that flood the pilot port leave the coordinator's memory and progress alone",
          "[pilot][security]") {
  Scratch s;
  FakePilot fake(4);
  REQUIRE(fake.made);
  Backend& b = fake.backend();
  TaskSpec spec;
  spec.name = "t";
  spec.command = {"true"};
  auto request = [&](TaskId task) {
    return first_attempt(spec, s.run_dir, task, "t" + std::to_string(task));
  };
  TaskId next_task = 0;
  REQUIRE(b.launch(request(next_task++)));
  std::vector<Completion> out;
  b.poll(out, std::chrono::milliseconds(10));
  const fs::path pilot = s.run_dir / "pilot";
  const std::string address = read_word(pilot / "address");
  const std::string key = read_word(pilot / "secret");
  REQUIRE(!address.empty());

  std::vector<pid_t> children;
  children.push_back(start([&] { serve_completing(address, key); }));
  const auto first = Clock::now();
  while (out.empty() && Clock::now() - first < std::chrono::seconds(5))
    b.poll(out, std::chrono::milliseconds(10));
  REQUIRE(out.size() == 1);  // the worker is connected and serving
  out.clear();
  const std::int64_t baseline = peak_resident_bytes();

  constexpr int kSeconds = 3;
  for (int i = 0; i < 3; ++i) children.push_back(start([&] { flood(address, false, kSeconds); }));
  for (int i = 0; i < 8; ++i) children.push_back(start([&] { flood(address, true, kSeconds); }));

  // One task every 50 ms; each must come back within a second.
  std::map<TaskId, Clock::time_point> launched;
  std::int64_t peak = baseline;
  double worst_s = 0;
  const auto until = Clock::now() + std::chrono::seconds(kSeconds);
  auto next_launch = Clock::now();
  while (Clock::now() < until) {
    if (Clock::now() >= next_launch) {
      launched[next_task] = Clock::now();
      REQUIRE(b.launch(request(next_task++)));
      next_launch += std::chrono::milliseconds(50);
    }
    b.poll(out, std::chrono::milliseconds(10));
    for (const Completion& c : out) {
      worst_s =
          std::max(worst_s, std::chrono::duration<double>(Clock::now() - launched[c.task]).count());
      launched.erase(c.task);
    }
    out.clear();
  }
  peak = peak_resident_bytes();
  struct stat st {};
  const bool state_written = ::stat((pilot / "workers.json").c_str(), &st) == 0;
  const auto state_age_s =
      std::chrono::duration<double>(std::chrono::system_clock::now() -
                                    std::chrono::system_clock::from_time_t(st.st_mtim.tv_sec))
          .count();
  for (pid_t pid : children) ::kill(pid, SIGKILL);
  for (pid_t pid : children) ::waitpid(pid, nullptr, 0);

  WARN("coordinator resident size: " << baseline / 1'000'000 << " MB before the flood, peak "
                                     << peak / 1'000'000 << " MB; slowest task " << worst_s
                                     << " s; " << next_task << " tasks launched");
  CHECK(peak - baseline < 50'000'000);
  CHECK(worst_s < 1.0);
  CHECK(next_task >= kSeconds * 20 / 2);  // the loop was not stalled in a read
  // Launched in the last few turns may still be on their way; none older than a second.
  for (const auto& [task, when] : launched)
    CHECK(std::chrono::duration<double>(Clock::now() - when).count() < 1.0);
  CHECK(state_written);
  CHECK(state_age_s < 2.5);  // rewritten every second while tasks complete
}
