// The `pilot` backend keeps the Backend contract with a fake Slurm driver and one worker
// played by the test over real localhost sockets: it answers each launch as the task's
// name says (ok*: exit 0, fail*: exit 3, hang*: until killed).
#include <catch2/catch.hpp>

#include <poll.h>

#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "conformance/backend_conformance.hpp"
#include "pilot_backend.hpp"
#include "pilot_handshake.hpp"
#include "pilot_net.hpp"
#include "pilot_wire.hpp"
#include "slurm_driver.hpp"

using namespace sluice;
using namespace sluice::pilot;

namespace {

// Allocations start at once and never end by themselves.
class RunningAllocations final : public slurm::SlurmDriver {
 public:
  std::string name() const override { return "fake"; }
  Expected<std::string> submit(const slurm::SubmitRequest&) override {
    return std::to_string(++next_);
  }
  Expected<std::map<std::string, slurm::JobStatus>> query(
      const std::vector<std::string>& ids) override {
    std::map<std::string, slurm::JobStatus> out;
    for (const auto& id : ids) out[id].state = "RUNNING";
    return out;
  }
  void cancel(const std::vector<std::string>&) override {}
  int max_array_size() override { return 1001; }

 private:
  int next_ = 100;
};

std::string read_word(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  in >> s;
  return s;
}

// The worker: connects once the backend published its address, proves the key a step per
// pump (the backend's loop turns between pumps), then answers.
struct PlayedWorker {
  void pump(const std::string& run_dir) {
    const std::string address = read_word(run_dir + "/pilot/address");
    if (address.empty()) return;
    if (!conn || address != connected_to) {
      auto fd = connect_tcp(address, 2000);
      if (!fd) return;
      conn.emplace(std::move(*fd));
      connected_to = address;
      handshake =
          std::make_unique<ClientHandshake>(*Key::from_hex(read_word(run_dir + "/pilot/secret")));
      conn->send_raw(handshake->start());
      conn->flush_blocking(1000);
    }
    pollfd p{conn->fd(), POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return;
    if (!conn->read_some()) {
      conn.reset();
      return;
    }
    MsgType type;
    std::string_view payload;
    bool bad = false;
    std::vector<Completion> done;
    while (conn->next(type, payload, bad)) {
      if (!conn->sealed()) {
        std::string reply, why;
        bool impostor = false;
        const AuthStep step = handshake->on_frame(type, payload, reply, why, impostor);
        REQUIRE(step != AuthStep::kRefused);
        conn->send_raw(reply);
        if (step == AuthStep::kAccepted) {
          conn->seal(handshake->sender(), handshake->receiver());
          Hello h;
          h.job_id = "101";
          h.host = "node1";
          h.cpus = 4;
          conn->send(MsgType::kHello, encode_hello(h));
        }
        conn->flush_blocking(1000);
        continue;
      }
      if (type == MsgType::kLaunch || type == MsgType::kLaunches) {
        std::vector<Launch> ls;
        if (!decode_any_launch(type, payload, ls)) continue;
        for (const Launch& l : ls) {
          if (l.name.rfind("hang", 0) == 0) {
            running.insert({l.task, l.attempt});
            continue;
          }
          Completion c;
          c.task = l.task;
          c.attempt = l.attempt;
          c.code = l.name.rfind("fail", 0) == 0 ? 3 : 0;
          done.push_back(c);
        }
      } else if (type == MsgType::kKill) {
        auto k = decode_kill(payload);
        if (!k || !running.erase(*k)) continue;
        Completion c;
        c.task = k->first;
        c.attempt = k->second;
        c.kind = ExitKind::kSignaled;
        c.code = 15;
        done.push_back(c);
      }
    }
    if (!done.empty()) {
      conn->send(MsgType::kCompletions, encode_completions(done));
      conn->flush_blocking(1000);
    }
  }

  std::optional<Connection> conn;
  std::unique_ptr<ClientHandshake> handshake;
  std::string connected_to;
  std::set<std::pair<TaskId, std::uint32_t>> running;
};

}  // namespace

TEST_CASE("the pilot backend keeps the Backend contract with a played worker", "[conformance]") {
  auto worker = std::make_shared<PlayedWorker>();
  conformance::Target t;
  t.name = "pilot (fake driver, played worker)";
  t.make = []() -> std::unique_ptr<Backend> {
    BackendOptions o;
    o.cpus = 4;
    o.extra = {{"max_allocations", "1"}, {"time_limit", "10m"}, {"poll_interval", "20ms"}};
    auto b = make_pilot_backend(o, std::make_unique<RunningAllocations>());
    REQUIRE(b);
    return std::move(*b);
  };
  t.pump = [worker](const std::string& run_dir) { worker->pump(run_dir); };
  conformance::check_backend_contract(t);
}
