// The pilot handshake against strangers: a fake coordinator listening on the address in
// pilot/address without the run's key (the port a dead coordinator freed) gets no key
// and cannot make a worker run anything; a worker without the key, or one replaying
// another connection's proof, is refused and given nothing to run.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <iterator>
#include <thread>

#include "pilot_backend.hpp"
#include "pilot_fakes.hpp"
#include "pilot_handshake.hpp"
#include "pilot_net.hpp"
#include "pilot_wire.hpp"
#include "pilot_worker.hpp"

using namespace sluice;
using namespace sluice::pilot;
using namespace sluice::pilot::testing;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream(p) << text;
}

std::string read_file_text(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string bytes_of(const Nonce& n) {
  return {reinterpret_cast<const char*>(n.data()), n.size()};
}

// Reads what `fd` sent within `ms` (or until it closed).
std::string drain(int fd, int ms) {
  std::string got;
  const auto until = Clock::now() + std::chrono::milliseconds(ms);
  char buf[4096];
  while (Clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got;
}

}  // namespace

TEST_CASE("a worker refuses a coordinator that cannot prove the run's key and runs nothing",
          "[pilot][security]") {
  REQUIRE(init_crypto());
  sluice::testing::ScratchDir root;
  const fs::path pilot = root / "pilot", marker = root / "ran";
  fs::create_directories(pilot);
  fs::create_directories(root / "attempt");
  const Key key = Key::random();
  write_text(pilot / "secret", key.hex() + "\n");
  int port = 0;
  auto listener = listen_tcp(0, port);
  REQUIRE(listener);
  write_text(pilot / "address", "127.0.0.1:" + std::to_string(port) + "\n");

  const pid_t pid = ::fork();
  if (pid == 0) {
    const int err = ::open((root / "worker.err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(err, 2);
    WorkerOptions o;
    o.pilot_dir = pilot.string();
    o.cpus = 1;
    o.reconnect_timeout = std::chrono::seconds(2);
    ::_exit(serve_worker(o));
  }

  // What a fake coordinator would send to have `touch MARKER` run.
  TaskSpec spec;
  spec.name = "t";
  spec.command = {"touch", marker.string()};
  LaunchRequest r;
  r.task = 1;
  r.attempt = 1;
  r.spec = &spec;
  r.attempt_dir = (root / "attempt").string();
  const std::string launch = encode_launch(r);
  const std::string welcome = encode_welcome({1, 30'000});

  std::string heard;
  int connections = 0;
  const auto until = Clock::now() + std::chrono::seconds(8);
  int status = -1;
  while (Clock::now() < until) {
    if (::waitpid(pid, &status, WNOHANG) == pid) break;
    pollfd p{listener->get(), POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    Fd c(::accept(listener->get(), nullptr, nullptr));
    if (!c.valid()) continue;
    std::string got = drain(c.get(), 300);
    std::string to_send;
    if (connections % 2 == 0) {
      // Skips the handshake: a welcome and a launch, as the old protocol had them.
      to_send = frame(MsgType::kWelcome, welcome) + frame(MsgType::kLaunch, launch);
    } else {
      // Plays the handshake with a made-up proof, then sends the launch sealed under
      // another key and in the clear.
      const Nonce mine = random_nonce();
      to_send = frame(MsgType::kAuthChallenge, bytes_of(mine) + std::string(32, 'p'));
      to_send += frame(MsgType::kAuthOk, {});
      FrameCipher other(Key::random(), Role::kCoordinator, mine, mine);
      to_send += other.seal(static_cast<std::uint8_t>(MsgType::kWelcome), welcome);
      to_send += other.seal(static_cast<std::uint8_t>(MsgType::kLaunch), launch);
      to_send += frame(MsgType::kLaunch, launch);
    }
    ::send(c.get(), to_send.data(), to_send.size(), MSG_NOSIGNAL);
    got += drain(c.get(), 500);
    heard += got;
    ++connections;
  }
  if (::waitpid(pid, &status, WNOHANG) == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    FAIL("the worker did not give up on the fake coordinator");
  }
  const std::string err = read_file_text(root / "worker.err");
  INFO(err);
  CHECK(connections >= 2);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 3);
  CHECK(err.find("refused the coordinator") != std::string::npos);
  CHECK(!fs::exists(marker));
  // Neither the key nor anything sealed: only handshake frames, each a fresh nonce.
  const std::string raw(reinterpret_cast<const char*>(key.data()), kKeyBytes);
  CHECK(heard.find(key.hex()) == std::string::npos);
  CHECK(heard.find(raw) == std::string::npos);
  FrameBuffer frames(kMaxHandshakeFrame);
  frames.append(heard.data(), heard.size());
  MsgType type;
  std::string_view payload;
  bool bad = false;
  while (frames.next(type, payload, bad))
    CHECK((type == MsgType::kAuthHello || type == MsgType::kAuthFailed));
  CHECK(!bad);
}

TEST_CASE("a worker without the run's key is refused and given nothing to run",
          "[pilot][security]") {
  Scratch s;
  FakePilot fake(2);
  REQUIRE(fake.made);
  Backend& b = fake.backend();
  TaskSpec spec;
  spec.name = "t";
  spec.command = {"true"};
  REQUIRE(b.launch(first_attempt(spec, s.run_dir, 1, "t")));
  std::vector<Completion> out;
  b.poll(out, std::chrono::milliseconds(10));
  const std::string address = read_word(s.run_dir / "pilot" / "address");
  const auto key = Key::from_hex(read_word(s.run_dir / "pilot" / "secret"));
  REQUIRE(key);

  // Runs the coordinator's loop while `client` talks to it; returns all it was sent.
  auto talk = [&](auto client) {
    auto fd = connect_tcp(address, 2000);
    REQUIRE(fd);
    Connection conn(std::move(*fd));
    std::atomic<bool> done{false};
    std::thread loop([&] {
      while (!done) b.poll(out, std::chrono::milliseconds(5));
    });
    client(conn);
    const std::string got = drain(conn.fd(), 500);
    done = true;
    loop.join();
    return got;
  };

  SECTION("with another key, the coordinator's proof fails and the worker leaves") {
    std::string why;
    AuthResult result{};
    talk([&](Connection& conn) { result = authenticate(conn, Key::random(), 2000, why); });
    CHECK(result == AuthResult::kImpostor);
  }

  SECTION("the old protocol, a hello carrying a secret, is not a handshake") {
    const std::string got = talk([&](Connection& conn) {
      conn.send(MsgType::kHello, key->hex());
      conn.flush_blocking(1000);
    });
    CHECK(got.empty());
  }

  SECTION("a proof replayed from another connection is refused") {
    // A real worker's handshake, watched: its nonce and proof.
    const Nonce nonce = random_nonce();
    std::string challenge;
    talk([&](Connection& conn) {
      conn.send_raw(frame(MsgType::kAuthHello, "SLPILOT1" + bytes_of(nonce)));
      conn.flush_blocking(1000);
      challenge = drain(conn.fd(), 300);
    });
    REQUIRE(challenge.size() == 5 + 64);
    Nonce theirs;
    std::copy_n(challenge.begin() + 5, 32, theirs.begin());
    const Proof proof = make_proof(*key, Role::kWorker, nonce, theirs);
    // The replay: same nonce, the proof for the old challenge.
    const std::string got = talk([&](Connection& conn) {
      conn.send_raw(frame(MsgType::kAuthHello, "SLPILOT1" + bytes_of(nonce)));
      conn.flush_blocking(1000);
      drain(conn.fd(), 300);
      conn.send_raw(
          frame(MsgType::kAuthProof, std::string(reinterpret_cast<const char*>(proof.data()), 32)));
      conn.flush_blocking(1000);
    });
    FrameBuffer frames(kMaxHandshakeFrame);
    frames.append(got.data(), got.size());
    MsgType type{};
    std::string_view payload;
    bool bad = false;
    REQUIRE(frames.next(type, payload, bad));
    CHECK(type == MsgType::kRefused);
  }
  CHECK(out.empty());
  CHECK(b.in_flight() == 1);  // the launch still waits for a worker
}
