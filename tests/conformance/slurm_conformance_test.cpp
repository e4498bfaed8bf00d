// The `slurm` backend keeps the Backend contract against a fake cluster: jobs go
// PENDING, RUNNING, then end as their task's name says (ok*: COMPLETED, fail*: FAILED
// with exit code 3, hang*: RUNNING until scancel). The cluster outlives the backends
// over it, as a real one outlives a coordinator, so re-attach is checked too.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>

#include "conformance/backend_conformance.hpp"
#include "slurm_backend.hpp"
#include "slurm_driver.hpp"
#include "support/scratch_dir.hpp"

using namespace sluice;

namespace {

struct FakeCluster {
  struct Job {
    std::string task;    // the task's name, from its attempt directory
    std::string name;    // the job's name
    std::string script;  // what sbatch was given
    std::string comment;
    std::string state = "PENDING";
    int exit_code = 0;
    int queries = 0;
  };
  std::map<std::string, Job> jobs;  // "123" or "123_4"
  std::vector<slurm::SubmitRequest> submitted;
  int next_id = 100;

  // ".../tasks/NAME/ATTEMPT[/stdout]" -> NAME
  static std::string task_of(std::string dir) {
    if (dir.size() > 7 && dir.compare(dir.size() - 7, 7, "/stdout") == 0)
      dir.resize(dir.size() - 7);
    dir = dir.substr(0, dir.rfind('/'));
    return dir.substr(dir.rfind('/') + 1);
  }

  std::string submit(const slurm::SubmitRequest& r) {
    submitted.push_back(r);
    const std::string id = std::to_string(++next_id);
    if (r.array.empty()) {
      jobs[id].task = task_of(r.output);
      jobs[id].name = r.name;
      jobs[id].script = r.script_path;
      jobs[id].comment = r.comment;
      return id;
    }
    // Elements from the array script's "N) d='DIR' ;;" lines.
    static const std::regex element(R"((\d+)\) d='([^']*)' ;;)");
    for (std::sregex_iterator it(r.script.begin(), r.script.end(), element), end; it != end; ++it) {
      Job& j = jobs[id + "_" + (*it)[1].str()];
      j.task = task_of((*it)[2].str() + "/stdout");
      j.name = r.name;
      j.script = r.script_path;
      j.comment = r.comment;
    }
    return id;
  }

  void advance(Job& j) {
    if (j.state == "CANCELLED" || j.state == "COMPLETED" || j.state == "FAILED") return;
    ++j.queries;
    if (j.queries == 1) return;  // pending once
    j.state = "RUNNING";
    if (j.queries < 3 || j.task.rfind("hang", 0) == 0) return;
    if (j.task.rfind("fail", 0) == 0) {
      j.state = "FAILED";
      j.exit_code = 3;
    } else {
      j.state = "COMPLETED";
    }
  }
};

class FakeClusterDriver final : public slurm::SlurmDriver {
 public:
  explicit FakeClusterDriver(std::shared_ptr<FakeCluster> c) : c_(std::move(c)) {}
  std::string name() const override { return "fake"; }
  Expected<std::string> submit(const slurm::SubmitRequest& r) override { return c_->submit(r); }
  Expected<std::map<std::string, slurm::JobStatus>> query(
      const std::vector<std::string>& base_ids) override {
    std::map<std::string, slurm::JobStatus> out;
    for (auto& [key, job] : c_->jobs) {
      const std::string base = key.substr(0, key.find('_'));
      if (std::find(base_ids.begin(), base_ids.end(), base) == base_ids.end()) continue;
      c_->advance(job);
      slurm::JobStatus& s = out[key];
      s.state = job.state;
      s.reason = job.state == "PENDING" ? "Priority" : "None";
      s.exit_code = job.exit_code;
    }
    return out;
  }
  void cancel(const std::vector<std::string>& keys) override {
    for (const auto& k : keys)
      for (auto& [key, job] : c_->jobs)
        if ((key == k || key.substr(0, key.find('_')) == k) && job.state != "COMPLETED" &&
            job.state != "FAILED")
          job.state = "CANCELLED";
  }
  int max_array_size() override { return 1001; }
  Expected<std::map<std::string, std::string>> jobs_named(const std::string& name) override {
    std::map<std::string, std::string> out;
    for (const auto& [key, job] : c_->jobs)
      if (job.name == name) out[key] = job.script;
    return out;
  }
  Expected<std::map<std::string, std::string>> job_comments(const std::string& name) override {
    std::map<std::string, std::string> out;
    for (const auto& [key, job] : c_->jobs)
      if (job.name == name) out[key] = job.comment;
    return out;
  }

 private:
  std::shared_ptr<FakeCluster> c_;
};

}  // namespace

TEST_CASE("the slurm backend keeps the Backend contract on a fake cluster", "[conformance]") {
  auto cluster = std::make_shared<FakeCluster>();
  const auto arrays = GENERATE(std::string("on"), std::string("off"));
  conformance::Target t;
  t.name = "slurm (fake cluster, arrays=" + arrays + ")";
  t.make = [cluster, arrays]() -> std::unique_ptr<Backend> {
    BackendOptions o;
    o.extra = {{"poll_interval", "5ms"}, {"arrays", arrays}};
    auto b = make_slurm_backend_with(o, std::make_unique<FakeClusterDriver>(cluster));
    REQUIRE(b);
    return std::move(*b);
  };
  conformance::check_backend_contract(t);
}

TEST_CASE("the slurm backend makes one array of a batch with identical resources", "[slurm-fake]") {
  auto cluster = std::make_shared<FakeCluster>();
  BackendOptions o;
  o.extra = {{"poll_interval", "5ms"}, {"max_queued", "3"}};
  auto made = make_slurm_backend_with(o, std::make_unique<FakeClusterDriver>(cluster));
  REQUIRE(made);
  Backend& b = **made;
  const testing::ScratchDir scratch;
  const auto& root = scratch.path();
  std::deque<TaskSpec> specs;
  std::vector<LaunchRequest> batch;
  for (TaskId t = 0; t < 5; ++t) {
    TaskSpec& s = specs.emplace_back();
    s.name = s.group = "ok" + std::to_string(t);
    s.command = {"true"};
    s.workdir = "/tmp";
    LaunchRequest r;
    r.task = t;
    r.spec = &s;
    r.attempt_dir = (root / "runs" / "r1" / "tasks" / s.name / "1").string();
    std::filesystem::create_directories(r.attempt_dir);
    batch.push_back(r);
  }
  auto handles = b.launch_batch(batch);
  REQUIRE(handles.size() == 5);
  // max_queued = 3: one array of three, two held in the backend.
  REQUIRE(cluster->submitted.size() == 1);
  CHECK(cluster->submitted[0].array == "0-2");
  for (int i = 0; i < 3; ++i)
    CHECK(*handles[i] == "slurm:101_" + std::to_string(i) + ":" + batch[i].attempt_dir);
  for (int i = 3; i < 5; ++i) CHECK(handles[i]->rfind("slurm:held:", 0) == 0);
  CHECK(b.in_flight() == 5);
  std::vector<Completion> out;
  for (int i = 0; i < 2000 && out.size() < 5; ++i) b.poll(out, std::chrono::milliseconds(5));
  REQUIRE(out.size() == 5);
  for (const auto& c : out) CHECK(c.ok());
  CHECK(cluster->submitted.size() == 2);  // the held two, once the first three ended
  CHECK(b.in_flight() == 0);
}

// The coordinator died after sbatch and before it recorded the job id: resume finds the
// attempt (from its intent) before anything is submitted again, plain job and array
// element alike; an intent whose job never arrived runs again.
TEST_CASE("a submission never recorded is found by its name, not submitted twice", "[slurm-fake]") {
  auto cluster = std::make_shared<FakeCluster>();
  const auto arrays = GENERATE(std::string("on"), std::string("off"));
  BackendOptions o;
  o.extra = {{"poll_interval", "5ms"}, {"arrays", arrays}};
  const testing::ScratchDir scratch;
  std::deque<TaskSpec> specs;
  std::vector<LaunchRequest> batch;
  for (TaskId t = 0; t < 3; ++t) {
    TaskSpec& s = specs.emplace_back();
    s.name = "ok" + std::to_string(t);
    s.group = "ok";
    s.command = {"true"};
    s.workdir = "/tmp";
    LaunchRequest r;
    r.task = t;
    r.spec = &s;
    r.env = {{"SLUICE_RUN_ID", "r1"}};
    r.attempt_dir = (scratch.path() / "runs" / "r1" / "tasks" / s.name / "1").string();
    std::filesystem::create_directories(r.attempt_dir);
    batch.push_back(r);
  }
  {
    auto first = make_slurm_backend_with(o, std::make_unique<FakeClusterDriver>(cluster));
    REQUIRE(first);
    auto handles = (*first)->launch_batch(batch);
    for (const auto& h : handles) REQUIRE(h);
    // ... and dies before the handles reach the store, and before its own record of
    // the ids: only the intent is left in the run's submission log.
    const auto log = scratch.path() / "runs" / "r1" / "slurm" / "submissions";
    std::string kept, line;
    {
      std::ifstream in(log, std::ios::binary);
      REQUIRE(in);
      while (std::getline(in, line))
        if (line.rfind("K\t", 0) != 0) kept += line + "\n";
    }
    std::ofstream(log, std::ios::binary | std::ios::trunc) << kept;
  }
  const std::size_t submissions = cluster->submitted.size();
  // ok2's sbatch never arrived.
  for (auto it = cluster->jobs.begin(); it != cluster->jobs.end();)
    it = it->second.task == "ok2" ? cluster->jobs.erase(it) : std::next(it);

  auto second = make_slurm_backend_with(o, std::make_unique<FakeClusterDriver>(cluster));
  REQUIRE(second);
  Backend& b = **second;
  CHECK(b.unrecorded_handle((scratch.path() / "nowhere").string()).empty());  // no intent
  for (TaskId t = 0; t < 2; ++t) {
    const std::string h = b.unrecorded_handle(batch[t].attempt_dir);
    REQUIRE_FALSE(h.empty());
    CHECK(b.reattach(h, t, 1));
  }
  CHECK_FALSE(b.reattach(b.unrecorded_handle(batch[2].attempt_dir), 2, 1));
  std::vector<Completion> out;
  for (int i = 0; i < 2000 && out.size() < 2; ++i) b.poll(out, std::chrono::milliseconds(5));
  REQUIRE(out.size() == 2);
  for (const auto& c : out) CHECK(c.ok());
  CHECK(cluster->submitted.size() == submissions);  // nothing submitted again
}

namespace {

std::vector<Completion> poll_until(Backend& b, std::size_t n) {
  std::vector<Completion> out;
  for (int i = 0; i < 2000 && out.size() < n; ++i) b.poll(out, std::chrono::milliseconds(5));
  return out;
}

}  // namespace

// No exit_status file: the job's script ends its stderr with the status, and that is
// what tells how a job ended once slurmctld has forgotten it (MinJobAge).
TEST_CASE("a job slurmctld forgot ends with the status its stderr ends with", "[slurm-fake]") {
  auto cluster = std::make_shared<FakeCluster>();
  BackendOptions o;
  o.extra = {{"poll_interval", "5ms"}};
  auto made = make_slurm_backend_with(o, std::make_unique<FakeClusterDriver>(cluster));
  REQUIRE(made);
  const testing::ScratchDir scratch;
  TaskSpec s;
  s.name = "hang0";
  s.command = {"true"};
  s.workdir = "/tmp";
  LaunchRequest r;
  r.spec = &s;
  r.env = {{"SLUICE_RUN_ID", "r1"}};
  r.attempt_dir = (scratch.path() / "runs" / "r1" / "tasks" / "hang0" / "1").string();
  std::filesystem::create_directories(r.attempt_dir);
  auto h = (*made)->launch(r);
  REQUIRE(h);
  // The script went to Slurm as text; nothing of the backend's own is in the directory.
  REQUIRE(cluster->submitted.size() == 1);
  CHECK(cluster->submitted[0].script_path.empty());
  CHECK(cluster->submitted[0].script.find("sluice-exit-status") != std::string::npos);
  CHECK(std::filesystem::is_empty(r.attempt_dir));
  cluster->jobs.clear();  // ended and purged while nobody looked
  std::ofstream(r.attempt_dir + "/stderr", std::ios::binary) << "oops\x1fsluice-exit-status 4\n";
  auto out = poll_until(**made, 1);
  REQUIRE(out.size() == 1);
  CHECK(out[0].kind == ExitKind::kExited);
  CHECK(out[0].code == 4);
}

// Homes written before the run's submission log kept each attempt's intent, job id and
// exit status in its directory: their runs still resume.
TEST_CASE("an older home's per-attempt Slurm files still resume", "[slurm-fake]") {
  auto cluster = std::make_shared<FakeCluster>();
  BackendOptions o;
  o.extra = {{"poll_interval", "5ms"}};
  auto made = make_slurm_backend_with(o, std::make_unique<FakeClusterDriver>(cluster));
  REQUIRE(made);
  Backend& b = **made;
  const testing::ScratchDir scratch;
  const auto tasks = scratch.path() / "runs" / "old" / "tasks";
  // ok0: submitted, id never recorded, still known to slurmctld by name and job.sh.
  const std::string ok0 = (tasks / "ok0" / "1").string();
  std::filesystem::create_directories(ok0);
  slurm::SubmitRequest old;
  old.name = "sluice:old:ok0";
  old.script_path = ok0 + "/job.sh";
  old.output = ok0 + "/stdout";
  const std::string key = cluster->submit(old);
  std::ofstream(ok0 + "/slurm_intent") << old.name << "\n" << old.script_path << "\n-\n";
  // ok1: ended long ago; only its exit_status file knows how.
  const std::string ok1 = (tasks / "ok1" / "1").string();
  std::filesystem::create_directories(ok1);
  std::ofstream(ok1 + "/slurm_intent") << "sluice:old:ok1\n" << ok1 << "/job.sh\n-\n";
  std::ofstream(ok1 + "/slurm_job_id") << "99\n";
  std::ofstream(ok1 + "/exit_status") << "6\n";
  const std::string h0 = b.unrecorded_handle(ok0);
  REQUIRE_FALSE(h0.empty());
  REQUIRE(b.reattach(h0, 0, 1));
  REQUIRE(b.reattach("slurm:held:" + ok1, 1, 1));
  auto out = poll_until(b, 2);
  REQUIRE(out.size() == 2);
  std::sort(out.begin(), out.end(), [](auto& x, auto& y) { return x.task < y.task; });
  CHECK(out[0].ok());
  CHECK(out[1].code == 6);
  CHECK(cluster->submitted.size() == 1);  // nothing submitted again
  CHECK(cluster->jobs.count(key) == 1);
}
