// The pilot backend without a cluster: its wire format, its allocation policy, and its
// coordinator side driven through real localhost sockets by a hand-played worker, with a
// fake Slurm driver that records submissions.
#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include "pilot_backend.hpp"
#include "pilot_fakes.hpp"
#include "pilot_handshake.hpp"
#include "pilot_net.hpp"
#include "pilot_policy.hpp"
#include "pilot_wire.hpp"

using namespace sluice;
using namespace sluice::pilot;
using namespace sluice::pilot::testing;
namespace fs = std::filesystem;

namespace {

// Proves the key over `conn` while the coordinator's loop turns on another thread (the
// handshake blocks; nothing else touches the backend meanwhile).
AuthResult handshake_with(Backend& b, Connection& conn, const std::string& key_hex) {
  std::atomic<bool> done{false};
  std::thread loop([&] {
    std::vector<Completion> none;
    while (!done) b.poll(none, std::chrono::milliseconds(5));
  });
  std::string why;
  const AuthResult auth = authenticate(conn, *Key::from_hex(key_hex), 2000, why);
  done = true;
  loop.join();
  return auth;
}

// A worker played by hand: connects, proves the key, says hello, collects what the
// coordinator sends.
struct FakeWorker {
  FakeWorker(const std::string& address) : conn(std::move(*connect_tcp(address, 2000))) {}
  // Proves the key, then (when the coordinator accepted) says hello.
  AuthResult hello(Backend& b, const std::string& key_hex, int cpus, std::string job = "101") {
    const AuthResult auth = handshake_with(b, conn, key_hex);
    if (auth != AuthResult::kAccepted) return auth;
    Hello h;
    h.job_id = std::move(job);
    h.host = "node1";
    h.cpus = cpus;
    conn.send(MsgType::kHello, encode_hello(h));
    conn.flush_blocking(1000);
    return auth;
  }
  // Reads what arrived; false once the coordinator closed the connection.
  bool receive() {
    pollfd p{conn.fd(), POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return true;
    const bool open = conn.read_some();
    MsgType type;
    std::string_view payload;
    bool bad = false;
    while (conn.next(type, payload, bad)) {
      types.push_back(type);
      if (type == MsgType::kLaunch || type == MsgType::kLaunches)
        REQUIRE(decode_any_launch(type, payload, launches));
    }
    return open;
  }
  void complete(const Launch& l, int code) {
    Completion c;
    c.task = l.task;
    c.attempt = l.attempt;
    c.code = code;
    conn.send(MsgType::kCompletions, encode_completions({&c, 1}));
    conn.flush_blocking(1000);
  }
  Connection conn;
  std::vector<MsgType> types;
  std::vector<Launch> launches;
};

LaunchRequest request(const TaskSpec& spec, const fs::path& run_dir, TaskId task) {
  return first_attempt(spec, run_dir, task, spec.name);
}

}  // namespace

TEST_CASE("pilot messages survive encoding, split frames and truncation", "[pilot]") {
  Hello h;
  h.job_id = "42";
  h.host = "n1";
  h.cpus = 8;
  h.gpu_ids = {"0", "1"};
  h.executors = {"gpu"};
  h.alloc_end_s = 1234567890;
  std::string bytes = frame(MsgType::kHello, encode_hello(h));
  Completion c;
  c.task = 7;
  c.attempt = 2;
  c.kind = ExitKind::kSignaled;
  c.code = 9;
  c.reason = "timed out after 1s";
  bytes += frame(MsgType::kCompletions, encode_completions({&c, 1}));

  FrameBuffer buf;
  MsgType type;
  std::string_view payload;
  bool bad = false;
  // Byte by byte: a frame comes out only once it is whole.
  std::vector<MsgType> got;
  std::vector<Completion> done;
  for (char ch : bytes) {
    buf.append(&ch, 1);
    while (buf.next(type, payload, bad)) {
      got.push_back(type);
      if (type == MsgType::kHello) {
        auto back = decode_hello(payload);
        REQUIRE(back);
        CHECK(back->job_id == "42");
        CHECK(back->gpu_ids == std::vector<std::string>{"0", "1"});
        CHECK(back->alloc_end_s == 1234567890);
      } else {
        REQUIRE(decode_completions(payload, done));
      }
    }
    REQUIRE(!bad);
  }
  CHECK(got == std::vector<MsgType>{MsgType::kHello, MsgType::kCompletions});
  REQUIRE(done.size() == 1);
  CHECK(done[0].reason == "timed out after 1s");
  CHECK(done[0].kind == ExitKind::kSignaled);

  const std::string payload_bytes = encode_hello(h);
  for (std::size_t n = 0; n < payload_bytes.size(); ++n)
    CHECK(!decode_hello(std::string_view(payload_bytes).substr(0, n)));

  FrameBuffer huge;
  const std::uint32_t len = kMaxFrame + 1;
  huge.append(reinterpret_cast<const char*>(&len), 4);
  huge.append("x", 1);
  CHECK(!huge.next(type, payload, bad));
  CHECK(bad);
}

TEST_CASE("a batch of launches is one kLaunches message, one launch stays a kLaunch", "[pilot]") {
  TaskSpec spec;
  spec.name = "t";
  spec.command = {"true"};
  auto request = [&](TaskId task) {
    LaunchRequest r;
    r.task = task;
    r.attempt = 1;
    r.spec = &spec;
    r.attempt_dir = "/runs/r/tasks/t/" + std::to_string(task);
    return r;
  };
  LaunchBatch one;
  one.add(encode_launch(request(5)));
  CHECK(one.type() == MsgType::kLaunch);
  const std::string single = one.take();
  CHECK(one.empty());
  std::vector<Launch> got;
  REQUIRE(decode_any_launch(MsgType::kLaunch, single, got));
  REQUIRE(got.size() == 1);
  CHECK(got[0].task == 5);

  LaunchBatch batch;
  for (TaskId t = 1; t <= 3; ++t) batch.add(encode_launch(request(t)));
  CHECK(batch.type() == MsgType::kLaunches);
  const std::string payload = batch.take();
  got.clear();
  REQUIRE(decode_any_launch(MsgType::kLaunches, payload, got));
  REQUIRE(got.size() == 3);
  CHECK(got[2].task == 3);
  CHECK(got[2].attempt_dir == "/runs/r/tasks/t/3");
  // Truncated anywhere, or with a count larger than what follows: refused, nothing added.
  for (std::size_t n = 0; n < payload.size(); ++n) {
    std::vector<Launch> part;
    CHECK(!decode_launches(std::string_view(payload).substr(0, n), part));
    CHECK(part.empty());
  }
  std::string lying = payload;
  lying[0] = 4;
  std::vector<Launch> none;
  CHECK(!decode_launches(lying, none));
  CHECK(none.empty());
}

TEST_CASE("pilot allocation policy: one starting allocation at a time, up to the maximum",
          "[pilot]") {
  PolicyInput in;
  in.max_allocations = 2;
  CHECK(!should_allocate(in));  // nothing waits
  in.waiting = 5;
  CHECK(should_allocate(in));
  in.starting = 1;
  in.active = 1;
  CHECK(!should_allocate(in));  // the first one has not shown up yet
  in.starting = 0;
  CHECK(should_allocate(in));
  in.active = 2;
  CHECK(!should_allocate(in));  // at max_allocations
  in.active = 1;
  in.backing_off = true;
  CHECK(!should_allocate(in));

  CHECK(fits_remaining(0, 1000, 999));    // undeclared: anywhere
  CHECK(fits_remaining(60'000, 0, 999));  // allocation without an end
  CHECK(fits_remaining(60'000, 1000 + 60 + kEndMarginS, 1000));
  CHECK(!fits_remaining(60'001, 1000 + 60 + kEndMarginS, 1000));
}

TEST_CASE("pilot backend: allocates, refuses a wrong secret, runs and loses attempts", "[pilot]") {
  Scratch s;
  FakePilot fake(2, 2);
  REQUIRE(fake.made);
  Backend& b = fake.backend();
  auto& submitted = fake.submitted;
  auto& states = fake.states;
  CHECK(b.capacity().enforces_exec_time);

  std::vector<TaskSpec> specs(4);
  for (std::size_t i = 0; i < specs.size(); ++i) {
    specs[i].name = "t" + std::to_string(i);
    specs[i].command = {"true"};
  }
  TaskSpec too_long = specs[0];
  too_long.name = "long";
  too_long.max_exec_time = std::chrono::hours(1);
  CHECK(!b.launch(request(too_long, s.run_dir, 9)));  // can never fit a 10m allocation

  for (TaskId t = 0; t < 3; ++t) REQUIRE(b.launch(request(specs[t], s.run_dir, t)));
  std::vector<Completion> out;
  b.poll(out, std::chrono::milliseconds(20));
  REQUIRE(submitted.size() == 1);  // one allocation while none has started
  CHECK(submitted[0].script.find(" worker --pilot-dir ") != std::string::npos);
  CHECK(submitted[0].time_min == 10);
  const fs::path pilot = s.run_dir / "pilot";
  struct stat st {};
  REQUIRE(::stat((pilot / "secret").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  const std::string secret = read_word(pilot / "secret");
  const std::string address = read_word(pilot / "address");
  REQUIRE(secret.size() == 64);

  auto drive = [&](auto done, int max_polls = 200) {
    for (int i = 0; i < max_polls && !done(); ++i) b.poll(out, std::chrono::milliseconds(5));
    return done();
  };

  SECTION("a wrong secret is refused and the connection closed") {
    // The intruder ignores that the coordinator's proof fails with its key, and answers
    // with a proof made with that key.
    FakeWorker intruder(address);
    const Nonce mine = random_nonce();
    intruder.conn.send_raw(
        frame(MsgType::kAuthHello,
              "SLPILOT1" + std::string(reinterpret_cast<const char*>(mine.data()), mine.size())));
    intruder.conn.flush_blocking(1000);
    std::string challenge;
    REQUIRE(drive([&] {
      pollfd p{intruder.conn.fd(), POLLIN, 0};
      if (::poll(&p, 1, 0) > 0) intruder.conn.read_some();
      MsgType type;
      std::string_view payload;
      bool bad = false;
      if (intruder.conn.next(type, payload, bad) && type == MsgType::kAuthChallenge)
        challenge = payload;
      return !challenge.empty();
    }));
    REQUIRE(challenge.size() == 64);
    Nonce theirs;
    std::copy_n(challenge.begin(), 32, theirs.begin());
    const Key wrong = *Key::from_hex(std::string(64, '0'));
    CHECK(!check_proof(wrong, Role::kCoordinator, mine, theirs, challenge.substr(32)));
    const Proof proof = make_proof(wrong, Role::kWorker, mine, theirs);
    intruder.conn.send_raw(
        frame(MsgType::kAuthProof, std::string(reinterpret_cast<const char*>(proof.data()), 32)));
    intruder.conn.flush_blocking(1000);
    bool closed = false;
    REQUIRE(drive([&] {
      closed = closed || !intruder.receive();
      return closed;
    }));
    CHECK(intruder.types == std::vector<MsgType>{MsgType::kRefused});
    CHECK(intruder.launches.empty());
  }

  SECTION("an allocation that fails before its worker connects is replaced") {
    states["101"] = "FAILED";
    REQUIRE(drive([&] { return submitted.size() == 2; }));
  }

  SECTION("a worker whose allocation ends too soon gets no task that would not fit") {
    TaskSpec timed = specs[3];
    timed.max_exec_time = std::chrono::minutes(5);
    REQUIRE(b.launch(request(timed, s.run_dir, 3)));
    FakeWorker w(address);
    REQUIRE(handshake_with(b, w.conn, secret) == AuthResult::kAccepted);
    Hello h;
    h.job_id = "101";
    h.host = "node1";
    h.cpus = 8;
    h.alloc_end_s = std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count() +
                    120;
    w.conn.send(MsgType::kHello, encode_hello(h));
    w.conn.flush_blocking(1000);
    REQUIRE(drive([&] {
      w.receive();
      return w.launches.size() == 3;
    }));
    // The 5-minute task waits for an allocation with time for it.
    for (int i = 0; i < 20; ++i) {
      b.poll(out, std::chrono::milliseconds(5));
      w.receive();
    }
    CHECK(w.launches.size() == 3);
    for (const auto& l : w.launches) CHECK(l.task != 3);
    CHECK(submitted.size() == 2);
  }

  SECTION("a worker gets launches up to its slots and reports completions") {
    FakeWorker w(address);
    REQUIRE(w.hello(b, secret, 2) == AuthResult::kAccepted);
    REQUIRE(drive([&] {
      w.receive();
      return w.launches.size() == 2;
    }));
    CHECK(w.types.front() == MsgType::kWelcome);
    // Tasks wait while the only worker is full: a second allocation is asked for.
    REQUIRE(drive([&] { return submitted.size() == 2; }));
    w.complete(w.launches[0], 0);
    REQUIRE(drive([&] {
      w.receive();
      return !out.empty() && w.launches.size() == 3;
    }));
    CHECK(out[0].task == w.launches[0].task);
    CHECK(out[0].ok());
    CHECK(out[0].host == "node1");

    SECTION("and a worker that vanishes has its attempts reported lost") {
      out.clear();
      w.conn = Connection(Fd());
      REQUIRE(drive([&] { return out.size() == 2; }));
      for (const auto& c : out) {
        CHECK(c.kind == ExitKind::kLost);
        CHECK(c.reason.find("vanished") != std::string::npos);
      }
      CHECK(b.in_flight() == 0);
    }
  }
}
