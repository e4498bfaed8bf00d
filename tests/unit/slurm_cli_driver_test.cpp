// The CLI driver against fake sbatch / squeue / scancel scripts put first on PATH: every
// command has a deadline, is retried only where that is safe, and says what happened.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "slurm_driver.hpp"

using namespace sluice;
using namespace sluice::slurm;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// A directory of fake Slurm commands, first on PATH while it lives. Each command
// appends a line to CALLS when it runs, so a test counts the tries.
class FakeSlurm {
 public:
  FakeSlurm() {
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("sluice-fake-slurm-" + std::to_string(rd()));
    fs::create_directories(dir_);
    const char* path = std::getenv("PATH");
    old_path_ = path ? path : "/usr/bin:/bin";
    ::setenv("PATH", (dir_.string() + ":" + old_path_).c_str(), 1);
  }
  ~FakeSlurm() {
    ::setenv("PATH", old_path_.c_str(), 1);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // Writes `name` running `body` (sh); $CALLS is the file of calls.
  void command(const std::string& name, const std::string& body) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << "#!/bin/sh\nCALLS='" << (dir_ / "calls").string() << "'\necho " << name
                     << " >> \"$CALLS\"\n"
                     << body << "\n";
    ::chmod(p.c_str(), 0755);
  }
  int calls(const std::string& name) const {
    std::ifstream in(dir_ / "calls");
    int n = 0;
    for (std::string line; std::getline(in, line);) n += line == name;
    return n;
  }
  const fs::path& dir() const { return dir_; }

 private:
  fs::path dir_;
  std::string old_path_;
};

CommandPolicy quick() {
  CommandPolicy p;
  p.timeout = std::chrono::milliseconds(300);
  p.tries = 3;
  p.backoff = std::chrono::milliseconds(50);
  return p;
}

SubmitRequest request(const FakeSlurm& fake) {
  SubmitRequest r;
  r.script_path = (fake.dir() / "job.sh").string();
  return r;
}

}  // namespace

TEST_CASE("a squeue that hangs is killed, tried again, and reported", "[unit][slurm]") {
  FakeSlurm fake;
  fake.command("squeue", "exec sleep 1000");
  auto driver = make_cli_driver(quick());
  const auto start = Clock::now();
  auto r = driver->query({"41", "42"});
  const auto took = Clock::now() - start;
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::kBackend);
  INFO(r.error().message);
  CHECK(r.error().message.find("squeue timed out after 300ms") != std::string::npos);
  CHECK(r.error().message.find("tried 3 times") != std::string::npos);
  CHECK(fake.calls("squeue") == 3);
  // 3 x 300 ms + 50 + 100 ms of backoff; far from forever.
  CHECK(took >= std::chrono::milliseconds(900));
  CHECK(took < std::chrono::seconds(5));
}

TEST_CASE("squeue: a transient error is tried again, an unknown id is an empty answer",
          "[unit][slurm]") {
  FakeSlurm fake;
  // Fails on the first call only.
  fake.command("squeue",
               "if [ \"$(grep -c squeue \"$CALLS\")\" = 1 ]; then\n"
               "  echo 'slurm_load_jobs error: Socket timed out on send/recv operation' >&2\n"
               "  exit 1\nfi\necho '41|RUNNING|None|41'");
  auto driver = make_cli_driver(quick());
  auto r = driver->query({"41"});
  REQUIRE(r);
  CHECK(r->at("41").state == "RUNNING");
  CHECK(fake.calls("squeue") == 2);

  fake.command("squeue", "echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1");
  auto purged = driver->query({"7"});
  REQUIRE(purged);
  CHECK(purged->empty());
  CHECK(fake.calls("squeue") == 3);  // not retried

  fake.command("squeue", "echo 'squeue: error: Invalid user for SlurmUser' >&2; exit 1");
  auto broken = driver->query({"7"});
  REQUIRE_FALSE(broken);
  CHECK(broken.error().message ==
        "squeue exited with status 1: squeue: error: Invalid user for SlurmUser");
  CHECK(fake.calls("squeue") == 4);  // not transient: asked once
}

TEST_CASE("sbatch: a timeout is never submitted twice, a refused connection is", "[unit][slurm]") {
  FakeSlurm fake;
  auto driver = make_cli_driver(quick());

  fake.command("sbatch", "exec sleep 1000");
  auto hung = driver->submit(request(fake));
  REQUIRE_FALSE(hung);
  INFO(hung.error().message);
  CHECK(hung.error().message.find("sbatch timed out after 300ms") != std::string::npos);
  CHECK(hung.error().message.find("may have been submitted") != std::string::npos);
  CHECK(fake.calls("sbatch") == 1);

  fake.command("sbatch",
               "if [ \"$(grep -c sbatch \"$CALLS\")\" = 2 ]; then\n"
               "  echo 'sbatch: error: Batch job submission failed: Unable to contact slurm "
               "controller (connect failure)' >&2\n  exit 1\nfi\necho '77;alpha'");
  auto id = driver->submit(request(fake));
  REQUIRE(id);
  CHECK(*id == "77");
  CHECK(fake.calls("sbatch") == 3);

  fake.command("sbatch",
               "echo 'sbatch: error: Batch job submission failed: Socket timed out on "
               "send/recv operation' >&2; exit 1");
  auto lost_answer = driver->submit(request(fake));
  REQUIRE_FALSE(lost_answer);
  CHECK(fake.calls("sbatch") == 4);  // the request may have arrived: not again

  fake.command("sbatch", "echo 'Job submitted to the fair-share queue'");
  auto odd = driver->submit(request(fake));
  REQUIRE_FALSE(odd);
  CHECK(odd.error().message.find("'Job submitted to the fair-share queue'") != std::string::npos);
}

TEST_CASE("scancel and scontrol that hang do not hang the driver", "[unit][slurm]") {
  FakeSlurm fake;
  fake.command("scancel", "exec sleep 1000");
  fake.command("scontrol", "exec sleep 1000");
  auto driver = make_cli_driver(quick());
  const auto start = Clock::now();
  driver->cancel({"41", "42_3"});
  CHECK(fake.calls("scancel") == 3);        // cancelling again is safe
  CHECK(driver->max_array_size() == 1001);  // Slurm's default when it cannot ask
  CHECK(Clock::now() - start < std::chrono::seconds(8));

  fake.command("scontrol", "printf 'MaxArraySize            = 4001\\n'");
  CHECK(driver->max_array_size() == 4001);
}

TEST_CASE("a hung squeue is abandoned soon after the run starts stopping", "[unit][slurm]") {
  FakeSlurm fake;
  fake.command("squeue", "exec sleep 1000");
  CommandPolicy slow = quick();
  slow.timeout = std::chrono::seconds(60);  // the default deadline would hold a run for minutes
  auto driver = make_cli_driver(slow);
  const auto start = Clock::now();
  driver->set_stopping_check([&] { return Clock::now() - start > std::chrono::milliseconds(300); });
  auto r = driver->query({"41"});
  const auto took = Clock::now() - start;
  REQUIRE_FALSE(r);
  INFO(r.error().message);
  CHECK(r.error().message.find("squeue abandoned (the run is stopping)") != std::string::npos);
  CHECK(fake.calls("squeue") == 1);  // and not tried again
  CHECK(took >= kStoppingGrace);
  CHECK(took < kStoppingGrace + std::chrono::seconds(2));

  // A healthy squeue still answers while stopping: cancelled jobs are seen as CANCELLED.
  fake.command("squeue", "echo '41|CANCELLED|None|41'");
  auto answered = driver->query({"41"});
  REQUIRE(answered);
  CHECK(answered->at("41").state == "CANCELLED");
}

TEST_CASE("scancel is not tried again once the run is stopping", "[unit][slurm]") {
  FakeSlurm fake;
  fake.command("scancel", "exec sleep 1000");
  auto driver = make_cli_driver(quick());
  driver->set_stopping_check([] { return true; });
  driver->cancel({"41"});
  CHECK(fake.calls("scancel") == 1);
}

TEST_CASE("sbatch output that is no job id is an error quoting it, escaped and cut",
          "[unit][slurm]") {
  FakeSlurm fake;
  auto driver = make_cli_driver(quick());
  fake.command("sbatch",
               "printf 'Submitted garbage <html>\\033]0;owned\\007<body>'; head -c 5000 /dev/zero "
               "| tr '\\0' x");
  auto r = driver->submit(request(fake));
  REQUIRE_FALSE(r);
  const std::string& m = r.error().message;
  INFO(m);
  CHECK(m.find("sbatch " + request(fake).script_path + ": sbatch printed no job id") == 0);
  CHECK(m.find("'Submitted garbage <html>\\x1b]0;owned\\x07<body>xxx") != std::string::npos);
  CHECK(m.find('\033') == std::string::npos);
  CHECK(m.find('\007') == std::string::npos);
  CHECK(m.find("bytes)") != std::string::npos);  // cut, with the length said
  CHECK(m.size() < 600);
  CHECK(fake.calls("sbatch") == 1);  // it may have arrived: never again

  fake.command("sbatch", "echo '12ab'");
  auto not_an_id = driver->submit(request(fake));
  REQUIRE_FALSE(not_an_id);
  CHECK(not_an_id.error().message.find("'12ab'") != std::string::npos);
}

TEST_CASE("an squeue that fails now and then: each query gets its answer", "[unit][slurm]") {
  FakeSlurm fake;
  // Every second call fails as a busy slurmctld does.
  fake.command("squeue",
               "if [ $(( $(grep -c squeue \"$CALLS\") % 2 )) = 1 ]; then\n"
               "  echo 'slurm_load_jobs error: Socket timed out on send/recv operation' >&2\n"
               "  exit 1\nfi\necho '41|RUNNING|None|41'");
  auto driver = make_cli_driver(quick());
  for (int i = 0; i < 3; ++i) {
    auto r = driver->query({"41"});
    REQUIRE(r);
    CHECK(r->at("41").state == "RUNNING");
  }
  CHECK(fake.calls("squeue") == 6);
}

TEST_CASE("jobs are found by name, with the script they run", "[unit][slurm]") {
  FakeSlurm fake;
  fake.command("squeue", "echo \"$@\" > '" + (fake.dir() / "args").string() +
                             "'\nprintf '7|/r/tasks/a/1/job.sh\\n9_0|/r/slurm/array.sh\\n"
                             "garbage|x\\n9_1|/r/slurm/array.sh\\n'");
  auto driver = make_cli_driver(quick());
  auto jobs = driver->jobs_named("sluice:R:a");
  REQUIRE(jobs);
  CHECK(jobs->size() == 3);
  CHECK(jobs->at("7") == "/r/tasks/a/1/job.sh");
  CHECK(jobs->at("9_1") == "/r/slurm/array.sh");
  std::ifstream args(fake.dir() / "args");
  std::string line;
  std::getline(args, line);
  CHECK(line == "-h -r -t all -n sluice:R:a -o %i|%o");

  fake.command("squeue", "exec sleep 1000");
  CHECK_FALSE(driver->jobs_named("sluice:R:a"));
}
