#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "local_backend.hpp"
#include "sluice/engine/backend_registry.hpp"
#include "support/scratch_dir.hpp"

using namespace sluice;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// A scratch directory, with attempt directories made in it on demand.
struct TempDir {
  sluice::testing::ScratchDir scratch;
  std::string path = scratch.str();
  std::string sub(const std::string& name) const {
    std::string p = path + "/" + name;
    fs::create_directories(p);
    return p;
  }
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TaskSpec shell_task(const std::string& script, const std::string& workdir) {
  TaskSpec t;
  t.name = "t";
  t.shell = script;
  t.workdir = workdir;
  return t;
}

TaskSpec command_task(std::vector<std::string> argv, const std::string& workdir) {
  TaskSpec t;
  t.name = "t";
  t.command = std::move(argv);
  t.workdir = workdir;
  return t;
}

LaunchRequest request_for(const TaskSpec& spec, const std::string& dir, TaskId task = 0,
                          std::uint32_t attempt = 1) {
  LaunchRequest r;
  r.task = task;
  r.attempt = attempt;
  r.spec = &spec;
  r.attempt_dir = dir;
  return r;
}

// Polls until `n` completions arrived (or 10 s passed).
std::vector<Completion> wait_for(Backend& b, std::size_t n, double limit_s = 10) {
  std::vector<Completion> out;
  auto start = Clock::now();
  while (out.size() < n && seconds_since(start) < limit_s) b.poll(out, 100ms);
  return out;
}

Completion run_to_end(Backend& b, const LaunchRequest& r) {
  auto handle = b.launch(r);
  REQUIRE(handle.has_value());
  auto out = wait_for(b, 1);
  REQUIRE(out.size() == 1);
  CHECK(out[0].task == r.task);
  CHECK(out[0].attempt == r.attempt);
  return out[0];
}

pid_t pid_of(const std::string& handle) {
  return static_cast<pid_t>(std::stol(handle));
}

// True if a live (non-zombie) process is in process group `pgid`.
bool group_alive(pid_t pgid) {
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::string name = entry.path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat = slurp(entry.path().string() + "/stat");
    auto paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    std::istringstream fields(stat.substr(paren + 2));
    std::string state;
    long ppid = 0, pgrp = 0;
    fields >> state >> ppid >> pgrp;
    if (pgrp == pgid && state != "Z" && state != "X") return true;
  }
  return false;
}

bool process_alive(pid_t pid) {
  std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  auto paren = stat.rfind(')');
  if (paren == std::string::npos) return false;
  char state = stat.size() > paren + 2 ? stat[paren + 2] : 'X';
  return state != 'Z' && state != 'X';
}

double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

std::string exe_dir() {
  return fs::read_symlink("/proc/self/exe").parent_path().string();
}

BackendOptions opts(int cpus = 2, int gpus = 0) {
  BackendOptions o;
  o.cpus = cpus;
  o.gpus = gpus;
  return o;
}

// The backend's two ways of starting a process: its own clone + execve ("fast", the
// default) and posix_spawn. Tests of what an attempt inherits run under both.
BackendOptions opts_spawning(const std::string& how) {
  BackendOptions o = opts();
  o.extra["spawn"] = how;
  return o;
}

}  // namespace

TEST_CASE("local: capacity from options", "[local]") {
  BackendOptions o = opts(3, 2);
  o.executors = {"cpu", "gpu"};
  auto b = make_local_backend(o);
  CHECK(b->name() == "local");
  CHECK(b->capacity().cpus == 3);
  CHECK(b->capacity().gpus == 2);
  CHECK(b->capacity().executors == std::vector<std::string>{"cpu", "gpu"});
  CHECK(b->in_flight() == 0);

  auto all = make_local_backend(opts(0, 0));
  cpu_set_t set;  // the CPUs this process may use (a Slurm step restricts them)
  CPU_ZERO(&set);
  REQUIRE(::sched_getaffinity(0, sizeof set, &set) == 0);
  CHECK(all->capacity().cpus == CPU_COUNT(&set));
}

TEST_CASE("local: exit codes are reported", "[local]") {
  TempDir tmp;
  const std::string how = GENERATE("fast", "posix");
  auto b = make_local_backend(opts_spawning(how));
  TaskSpec sh = shell_task("exit 3", tmp.path);
  Completion c = run_to_end(*b, request_for(sh, tmp.sub("a1"), 7, 2));
  CHECK(c.kind == ExitKind::kExited);
  CHECK(c.code == 3);
  CHECK_FALSE(c.ok());
  CHECK(c.started_us > 0);
  CHECK(c.ended_us >= c.started_us);
  CHECK_FALSE(c.host.empty());

  TaskSpec cmd = command_task({"sh", "-c", "exit 5"}, tmp.path);
  c = run_to_end(*b, request_for(cmd, tmp.sub("a2")));
  CHECK(c.kind == ExitKind::kExited);
  CHECK(c.code == 5);

  TaskSpec ok = command_task({"true"}, tmp.path);
  c = run_to_end(*b, request_for(ok, tmp.sub("a3")));
  CHECK(c.ok());
  CHECK(b->in_flight() == 0);
}

TEST_CASE("local: stdout and stderr go to the attempt directory", "[local]") {
  TempDir tmp;
  const std::string how = GENERATE("fast", "posix");
  auto b = make_local_backend(opts_spawning(how));
  std::string dir = tmp.sub("attempt");
  // The coordinator's stdin is some file (and an fd without O_CLOEXEC is open): the
  // attempt must read /dev/null instead and inherit neither.
  std::string fake_stdin = tmp.path + "/coordinator-stdin";
  {
    std::ofstream s(fake_stdin);
    s << "leaked-stdin\n";
  }
  int saved_stdin = ::dup(0);
  int file = ::open(fake_stdin.c_str(), O_RDONLY);
  REQUIRE(file >= 0);
  ::dup2(file, 0);
  int stray = ::open(fake_stdin.c_str(), O_RDONLY);  // no O_CLOEXEC
  TaskSpec t = shell_task(
      "echo to-out; echo to-err >&2; cat; readlink /proc/self/fd/0; ls /proc/self/fd", tmp.path);
  auto handle = b->launch(request_for(t, dir));
  ::dup2(saved_stdin, 0);
  ::close(saved_stdin);
  ::close(file);
  ::close(stray);
  REQUIRE(handle.has_value());
  auto done = wait_for(*b, 1);
  REQUIRE(done.size() == 1);
  Completion c = done[0];
  CHECK(c.ok());
  // Only 0, 1, 2 (and the fd `ls` opens on the directory): nothing of the coordinator.
  CHECK(slurp(dir + "/stdout") == "to-out\n/dev/null\n0\n1\n2\n3\n");
  CHECK(slurp(dir + "/stderr") == "to-err\n");

  // A retry in the same directory truncates.
  TaskSpec t2 = shell_task("echo second", tmp.path);
  c = run_to_end(*b, request_for(t2, dir));
  CHECK(slurp(dir + "/stdout") == "second\n");
  CHECK(slurp(dir + "/stderr").empty());
}

TEST_CASE("local: environment layering and PATH", "[local]") {
  TempDir tmp;
  ::setenv("SLUICE_TEST_INHERITED", "from-coordinator", 1);
  ::setenv("SLUICE_TEST_OVERRIDDEN", "coordinator", 1);
  auto b = make_local_backend(opts());
  ::unsetenv("SLUICE_TEST_INHERITED");
  ::unsetenv("SLUICE_TEST_OVERRIDDEN");

  std::string dir = tmp.sub("env");
  TaskSpec t = shell_task(
      "printf '%s\\n' \"$SLUICE_TEST_INHERITED\" \"$SLUICE_TEST_OVERRIDDEN\" \"$A\" \"$B\" "
      "\"$SLUICE_RUN_ID\" \"$PATH\" \"${CUDA_VISIBLE_DEVICES-unset}\"",
      tmp.path);
  t.env = {{"A", "task-a"}, {"B", "task-b"}, {"SLUICE_TEST_OVERRIDDEN", "task"}};
  LaunchRequest r = request_for(t, dir);
  r.env = {{"B", "request-b"}, {"SLUICE_RUN_ID", "run-42"}, {"B", "request-b2"}};
  Completion c = run_to_end(*b, r);
  REQUIRE(c.ok());
  std::istringstream lines(slurp(dir + "/stdout"));
  std::vector<std::string> v;
  for (std::string line; std::getline(lines, line);) v.push_back(line);
  REQUIRE(v.size() == 7);
  CHECK(v[0] == "from-coordinator");
  CHECK(v[1] == "task");
  CHECK(v[2] == "task-a");
  CHECK(v[3] == "request-b2");
  CHECK(v[4] == "run-42");
  CHECK(v[5].rfind(exe_dir() + ":", 0) == 0);
  if (std::getenv("CUDA_VISIBLE_DEVICES") == nullptr) CHECK(v[6] == "unset");

  // A task that sets PATH itself still finds the executable's directory first, and
  // commands are looked up on that PATH.
  TempDir bin;
  {
    std::ofstream s(bin.path + "/sluice-test-tool");
    s << "#!/bin/sh\necho tool-ran \"$PATH\"\n";
  }
  ::chmod((bin.path + "/sluice-test-tool").c_str(), 0755);
  std::string dir2 = tmp.sub("env2");
  TaskSpec t2 = command_task({"sluice-test-tool"}, tmp.path);
  t2.env = {{"PATH", bin.path + ":/usr/bin:/bin"}};
  c = run_to_end(*b, request_for(t2, dir2));
  REQUIRE(c.ok());
  CHECK(slurp(dir2 + "/stdout") == "tool-ran " + exe_dir() + ":" + bin.path + ":/usr/bin:/bin\n");

  // Not on the coordinator's PATH: the attempt's PATH is the one searched.
  TaskSpec t3 = command_task({"sluice-test-tool"}, tmp.path);
  auto h = b->launch(request_for(t3, tmp.sub("env3")));
  CHECK_FALSE(h.has_value());
}

TEST_CASE("local: working directory and relative programs", "[local]") {
  TempDir tmp;
  const std::string how = GENERATE("fast", "posix");
  auto b = make_local_backend(opts_spawning(how));
  std::string work = tmp.sub("work dir");  // a space on purpose
  std::string dir = tmp.sub("attempt");
  TaskSpec t = shell_task("pwd -P", work);
  Completion c = run_to_end(*b, request_for(t, dir));
  REQUIRE(c.ok());
  CHECK(slurp(dir + "/stdout") == fs::canonical(work).string() + "\n");

  {
    std::ofstream s(work + "/hello.sh");
    s << "#!/bin/sh\necho hello \"$1\"\n";
    std::ofstream n(work + "/nobang.sh");
    n << "echo no-shebang \"$1\"\n";
  }
  ::chmod((work + "/hello.sh").c_str(), 0755);
  ::chmod((work + "/nobang.sh").c_str(), 0755);
  TaskSpec rel = command_task({"./hello.sh", "world"}, work);
  std::string dir2 = tmp.sub("a2");
  c = run_to_end(*b, request_for(rel, dir2));
  REQUIRE(c.ok());
  CHECK(slurp(dir2 + "/stdout") == "hello world\n");

  // execvp semantics: an executable without #! runs under /bin/sh.
  TaskSpec nobang = command_task({"./nobang.sh", "x"}, work);
  std::string dir3 = tmp.sub("a3");
  c = run_to_end(*b, request_for(nobang, dir3));
  REQUIRE(c.ok());
  CHECK(slurp(dir3 + "/stdout") == "no-shebang x\n");

  // A missing working directory is a launch error that names it.
  TaskSpec gone = command_task({"true"}, tmp.path + "/missing");
  auto h = b->launch(request_for(gone, tmp.sub("a4")));
  REQUIRE_FALSE(h.has_value());
  CHECK(h.error().code == ErrorCode::kBackend);
  CHECK(h.error().message.find("missing") != std::string::npos);
  CHECK(b->in_flight() == 0);
}

TEST_CASE("local: death by signal is reported", "[local]") {
  TempDir tmp;
  const std::string how = GENERATE("fast", "posix");
  auto b = make_local_backend(opts_spawning(how));
  TaskSpec t = shell_task("kill -9 $$", tmp.path);
  Completion c = run_to_end(*b, request_for(t, tmp.sub("a")));
  CHECK(c.kind == ExitKind::kSignaled);
  CHECK(c.code == SIGKILL);
  CHECK(c.reason == "killed by signal 9 (SIGKILL)");

  TaskSpec segv = shell_task("kill -SEGV $$", tmp.path);
  c = run_to_end(*b, request_for(segv, tmp.sub("b")));
  CHECK(c.kind == ExitKind::kSignaled);
  CHECK(c.code == SIGSEGV);
  CHECK(c.reason.find("SIGSEGV") != std::string::npos);
}

TEST_CASE("local: launch errors leave nothing running", "[local]") {
  TempDir tmp;
  const std::string how = GENERATE("fast", "posix");
  auto b = make_local_backend(opts_spawning(how));
  TaskSpec missing = command_task({"/nonexistent/prog", "x"}, tmp.path);
  auto h = b->launch(request_for(missing, tmp.sub("a")));
  REQUIRE_FALSE(h.has_value());
  CHECK(h.error().code == ErrorCode::kBackend);
  CHECK(h.error().message == "cannot start '/nonexistent/prog': No such file or directory");

  TaskSpec unknown = command_task({"sluice-no-such-program-xyz"}, tmp.path);
  h = b->launch(request_for(unknown, tmp.sub("b")));
  REQUIRE_FALSE(h.has_value());
  CHECK(h.error().message ==
        "cannot start 'sluice-no-such-program-xyz': No such file or directory");

  {
    std::ofstream s(tmp.path + "/not-executable");
    s << "#!/bin/sh\n";
  }
  TaskSpec noexec = command_task({"./not-executable"}, tmp.path);
  h = b->launch(request_for(noexec, tmp.sub("c")));
  REQUIRE_FALSE(h.has_value());
  CHECK(h.error().message.find("Permission denied") != std::string::npos);

  TaskSpec empty;
  h = b->launch(request_for(empty, tmp.sub("d")));
  CHECK_FALSE(h.has_value());

  CHECK(b->in_flight() == 0);
  std::vector<Completion> out;
  b->poll(out, 50ms);
  CHECK(out.empty());
}

TEST_CASE("local: handle is pid:starttime", "[local]") {
  TempDir tmp;
  auto b = make_local_backend(opts());
  TaskSpec t = command_task({"sleep", "30"}, tmp.path);
  auto h = b->launch(request_for(t, tmp.sub("a")));
  REQUIRE(h.has_value());
  auto colon = h->find(':');
  REQUIRE(colon != std::string::npos);
  pid_t pid = pid_of(*h);
  std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string field;
  for (int i = 3; i <= 22; ++i) fields >> field;
  // The handle's time is read just before the spawn: at most the process's start tick.
  const long long noted = std::stoll(h->substr(colon + 1));
  const long long actual = std::stoll(field);
  CHECK(actual != 0);
  CHECK(noted <= actual);
  CHECK(actual <= noted + 500);
  CHECK(::getpgid(pid) == pid);  // its own process group
  b->kill(0, 1);
  CHECK(wait_for(*b, 1).size() == 1);
}

TEST_CASE("local: kill stops the whole process tree", "[local]") {
  TempDir tmp;
  BackendOptions o = opts();
  o.extra["kill_grace_ms"] = "300";
  auto b = make_local_backend(o);

  SECTION("a plain sleep") {
    TaskSpec t = command_task({"sleep", "30"}, tmp.path);
    auto h = b->launch(request_for(t, tmp.sub("a"), 3, 1));
    REQUIRE(h.has_value());
    auto start = Clock::now();
    b->kill(3, 1);
    auto out = wait_for(*b, 1);
    REQUIRE(out.size() == 1);
    CHECK(seconds_since(start) < 1.0);
    CHECK(out[0].kind == ExitKind::kSignaled);
    CHECK(out[0].code == SIGTERM);
    CHECK(out[0].task == 3);
    b->kill(3, 1);  // already finished: no-op
    std::vector<Completion> more;
    b->poll(more, 50ms);
    CHECK(more.empty());
  }

  SECTION("a shell with background children") {
    TaskSpec t = shell_task("sleep 30 & sleep 30 & echo started; wait", tmp.path);
    std::string dir = tmp.sub("b");
    auto h = b->launch(request_for(t, dir));
    REQUIRE(h.has_value());
    pid_t pgid = pid_of(*h);
    auto start = Clock::now();
    while (slurp(dir + "/stdout").empty() && seconds_since(start) < 5)
      std::this_thread::sleep_for(10ms);
    std::this_thread::sleep_for(50ms);
    REQUIRE(group_alive(pgid));
    start = Clock::now();
    b->kill(0, 1);
    auto out = wait_for(*b, 1);
    REQUIRE(out.size() == 1);
    CHECK(seconds_since(start) < 1.0);
    CHECK(out[0].kind == ExitKind::kSignaled);
    std::this_thread::sleep_for(50ms);
    CHECK_FALSE(group_alive(pgid));
  }

  SECTION("SIGKILL after the grace period when SIGTERM is ignored") {
    TaskSpec t = shell_task("trap '' TERM; echo started; sleep 30 & wait", tmp.path);
    std::string dir = tmp.sub("c");
    auto h = b->launch(request_for(t, dir));
    REQUIRE(h.has_value());
    pid_t pgid = pid_of(*h);
    auto start = Clock::now();
    while (slurp(dir + "/stdout").empty() && seconds_since(start) < 5)
      std::this_thread::sleep_for(10ms);
    start = Clock::now();
    b->kill(0, 1);
    auto out = wait_for(*b, 1);
    double took = seconds_since(start);
    REQUIRE(out.size() == 1);
    CHECK(took >= 0.25);
    CHECK(took < 1.5);
    CHECK(out[0].kind == ExitKind::kSignaled);
    CHECK(out[0].code == SIGKILL);
    std::this_thread::sleep_for(50ms);
    CHECK_FALSE(group_alive(pgid));
  }

  SECTION("leftovers of a finished attempt are killed") {
    TaskSpec t = shell_task("sleep 30 & echo $!", tmp.path);
    std::string dir = tmp.sub("d");
    auto h = b->launch(request_for(t, dir));
    REQUIRE(h.has_value());
    auto out = wait_for(*b, 1);
    REQUIRE(out.size() == 1);
    CHECK(out[0].ok());
    std::this_thread::sleep_for(50ms);
    CHECK_FALSE(group_alive(pid_of(*h)));
  }
}

TEST_CASE("local: the coordinator's blocked and ignored signals are not inherited", "[local]") {
  TempDir tmp;
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGCHLD);
  REQUIRE(::pthread_sigmask(SIG_BLOCK, &block, &old) == 0);
  struct sigaction ign {
  }, old_term{};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGTERM, &ign, &old_term);

  const std::string how = GENERATE("fast", "posix");
  auto b = make_local_backend(opts_spawning(how));
  TaskSpec t = command_task({"sleep", "30"}, tmp.path);
  auto h = b->launch(request_for(t, tmp.sub("a")));
  REQUIRE(h.has_value());
  auto start = Clock::now();
  b->kill(0, 1);
  auto out = wait_for(*b, 1);

  ::sigaction(SIGTERM, &old_term, nullptr);
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  REQUIRE(out.size() == 1);
  CHECK(out[0].code == SIGTERM);
  CHECK(seconds_since(start) < 1.0);
}

TEST_CASE("local: log descriptors, ignored and caught signals, under both spawn paths", "[local]") {
  TempDir tmp;
  const std::string how = GENERATE("fast", "posix");
  auto b = make_local_backend(opts_spawning(how));

  // The coordinator hands open log files (close-on-exec, as it opens them).
  std::string dir = tmp.sub("fds");
  int out = ::open((dir + "/stdout").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err = ::open((dir + "/stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  REQUIRE(out >= 0);
  REQUIRE(err >= 0);
  TaskSpec t = shell_task("echo o; echo e >&2; ls /proc/self/fd", tmp.path);
  LaunchRequest r = request_for(t, dir);
  r.stdout_fd = out;
  r.stderr_fd = err;
  auto h = b->launch(r);
  ::close(out);
  ::close(err);
  REQUIRE(h.has_value());
  auto done = wait_for(*b, 1);
  REQUIRE(done.size() == 1);
  CHECK(done[0].ok());
  CHECK(slurp(dir + "/stdout") == "o\n0\n1\n2\n3\n");
  CHECK(slurp(dir + "/stderr") == "e\n");

  // Ignored by the coordinator: SIGHUP stays ignored in the attempt (nohup), SIGPIPE
  // does not (a pipeline in a task must end on EPIPE). A caught SIGUSR1 is default there.
  struct sigaction ign {
  }, caught{}, old_hup{}, old_pipe{}, old_usr1{};
  ign.sa_handler = SIG_IGN;
  caught.sa_handler = [](int) {};
  ::sigaction(SIGHUP, &ign, &old_hup);
  ::sigaction(SIGPIPE, &ign, &old_pipe);
  ::sigaction(SIGUSR1, &caught, &old_usr1);
  TaskSpec hup = shell_task("kill -HUP $$; echo survived", tmp.path);
  TaskSpec pipe = shell_task("kill -PIPE $$; echo survived", tmp.path);
  TaskSpec usr1 = shell_task("kill -USR1 $$; echo survived", tmp.path);
  std::string dh = tmp.sub("hup");
  Completion ch = run_to_end(*b, request_for(hup, dh, 1));
  Completion cp = run_to_end(*b, request_for(pipe, tmp.sub("pipe"), 2));
  Completion cu = run_to_end(*b, request_for(usr1, tmp.sub("usr1"), 3));
  ::sigaction(SIGHUP, &old_hup, nullptr);
  ::sigaction(SIGPIPE, &old_pipe, nullptr);
  ::sigaction(SIGUSR1, &old_usr1, nullptr);
  CHECK(ch.ok());
  CHECK(slurp(dh + "/stdout") == "survived\n");
  CHECK(cp.kind == ExitKind::kSignaled);
  CHECK(cp.code == SIGPIPE);
  CHECK(cu.kind == ExitKind::kSignaled);
  CHECK(cu.code == SIGUSR1);

  // Each attempt is the leader of its own process group.
  std::string dg = tmp.sub("pgid");
  TaskSpec pg = shell_task("cut -d' ' -f5 /proc/$$/stat; echo $$", tmp.path);
  REQUIRE(run_to_end(*b, request_for(pg, dg, 4)).ok());
  std::istringstream lines(slurp(dg + "/stdout"));
  std::string pgid, pid;
  lines >> pgid >> pid;
  CHECK_FALSE(pid.empty());
  CHECK(pgid == pid);
}

TEST_CASE("local: attempts run in parallel", "[local]") {
  TempDir tmp;
  auto b = make_local_backend(opts());
  // One second each: run one after the other they would take two, whatever the load.
  TaskSpec t = command_task({"sleep", "1"}, tmp.path);
  auto start = Clock::now();
  REQUIRE(b->launch(request_for(t, tmp.sub("a"), 1)).has_value());
  REQUIRE(b->launch(request_for(t, tmp.sub("b"), 2)).has_value());
  CHECK(b->in_flight() == 2);
  auto out = wait_for(*b, 2);
  double took = seconds_since(start);
  REQUIRE(out.size() == 2);
  CHECK(took < 1.9);
  CHECK(took >= 0.99);
  CHECK(std::set<TaskId>{out[0].task, out[1].task} == std::set<TaskId>{1, 2});
  CHECK(b->in_flight() == 0);
}

TEST_CASE("local: GPU assignment", "[local]") {
  TempDir tmp;
  auto b = make_local_backend(opts(2, 2));
  REQUIRE(b->capacity().gpus == 2);
  TaskSpec g = shell_task("printf %s \"$CUDA_VISIBLE_DEVICES\"; sleep 0.3", tmp.path);
  g.gpus = 1;
  std::string d1 = tmp.sub("g1"), d2 = tmp.sub("g2"), d3 = tmp.sub("g3"), d4 = tmp.sub("g4");
  REQUIRE(b->launch(request_for(g, d1, 1)).has_value());
  REQUIRE(b->launch(request_for(g, d2, 2)).has_value());

  // Both devices are taken: the backend refuses rather than share one.
  auto h = b->launch(request_for(g, d3, 3));
  REQUIRE_FALSE(h.has_value());
  CHECK(h.error().code == ErrorCode::kBackend);

  TaskSpec none = shell_task("printf %s \"${CUDA_VISIBLE_DEVICES-unset}\"", tmp.path);
  REQUIRE(b->launch(request_for(none, d4, 4)).has_value());
  auto out = wait_for(*b, 3);
  REQUIRE(out.size() == 3);
  std::string v1 = slurp(d1 + "/stdout"), v2 = slurp(d2 + "/stdout");
  CHECK_FALSE(v1.empty());
  CHECK_FALSE(v2.empty());
  CHECK(v1 != v2);
  CHECK(slurp(d4 + "/stdout").empty());  // set, but empty: no device to see

  // Released on completion: two devices for one task now.
  TaskSpec two = shell_task("printf %s \"$CUDA_VISIBLE_DEVICES\"", tmp.path);
  two.gpus = 2;
  std::string d5 = tmp.sub("g5");
  Completion c = run_to_end(*b, request_for(two, d5, 5));
  CHECK(c.ok());
  std::string both = slurp(d5 + "/stdout");
  CHECK((both == v1 + "," + v2 || both == v2 + "," + v1));
}

TEST_CASE("local: GPU detection", "[local]") {
  const char* saved_gpus = std::getenv("SLUICE_GPUS");
  const char* saved_cvd = std::getenv("CUDA_VISIBLE_DEVICES");
  std::string keep_gpus = saved_gpus ? saved_gpus : "";
  std::string keep_cvd = saved_cvd ? saved_cvd : "";

  ::unsetenv("SLUICE_GPUS");
  ::unsetenv("CUDA_VISIBLE_DEVICES");
  // Nothing declared: the hardware answers (CUDA runtime, nvidia-smi), none on a CPU node.
  if (!fs::exists("/dev/nvidia0")) CHECK(detect_local_gpus().empty());
  ::setenv("CUDA_VISIBLE_DEVICES", "4,5", 1);
  CHECK(detect_local_gpus() == std::vector<std::string>{"4", "5"});
  CHECK(make_local_backend(opts(1, -1))->capacity().gpus == 2);
  CHECK(local_gpu_ids(1) == std::vector<std::string>{"4"});
  CHECK(local_gpu_ids(3) == std::vector<std::string>{"0", "1", "2"});
  ::setenv("CUDA_VISIBLE_DEVICES", "NoDevFiles", 1);
  CHECK(detect_local_gpus().empty());
  ::setenv("CUDA_VISIBLE_DEVICES", "", 1);
  CHECK(detect_local_gpus().empty());
  ::setenv("SLUICE_GPUS", "3", 1);
  CHECK(detect_local_gpus() == std::vector<std::string>{"0", "1", "2"});
  CHECK(make_local_backend(opts(1, -1))->capacity().gpus == 3);
  CHECK(make_local_backend(opts(1, 0))->capacity().gpus == 0);

  if (saved_gpus)
    ::setenv("SLUICE_GPUS", keep_gpus.c_str(), 1);
  else
    ::unsetenv("SLUICE_GPUS");
  if (saved_cvd)
    ::setenv("CUDA_VISIBLE_DEVICES", keep_cvd.c_str(), 1);
  else
    ::unsetenv("CUDA_VISIBLE_DEVICES");
}

TEST_CASE("local: abandon kills what a handle names, and only that", "[local]") {
  TempDir tmp;
  auto first = make_local_backend(opts());
  TaskSpec t = shell_task("sleep 30 & wait", tmp.path);
  auto h = first->launch(request_for(t, tmp.sub("a")));
  REQUIRE(h.has_value());
  pid_t pid = pid_of(*h);
  std::this_thread::sleep_for(50ms);

  auto second = make_local_backend(opts());
  // A pid that was reused has another start time: left alone.
  second->abandon(std::to_string(pid) + ":1");
  second->abandon("garbage");
  second->abandon("");
  std::this_thread::sleep_for(50ms);
  CHECK(process_alive(pid));
  CHECK(first->in_flight() == 1);

  auto start = Clock::now();
  second->abandon(*h);
  auto out = wait_for(*first, 1);
  REQUIRE(out.size() == 1);
  CHECK(seconds_since(start) < 1.0);
  CHECK(out[0].kind == ExitKind::kSignaled);
  CHECK(out[0].code == SIGKILL);
  std::this_thread::sleep_for(50ms);
  CHECK_FALSE(group_alive(pid));
  second->abandon(*h);  // gone now: no-op
}

TEST_CASE("local: destroying the backend kills what runs", "[local]") {
  TempDir tmp;
  pid_t pid = 0;
  auto start = Clock::now();
  {
    auto b = make_local_backend(opts());
    TaskSpec t = command_task({"sleep", "30"}, tmp.path);
    auto h = b->launch(request_for(t, tmp.sub("a")));
    REQUIRE(h.has_value());
    pid = pid_of(*h);
    CHECK(process_alive(pid));
    start = Clock::now();
  }
  CHECK(seconds_since(start) < 1.0);
  CHECK_FALSE(process_alive(pid));
}

TEST_CASE("local: poll blocks up to its timeout, no longer", "[local]") {
  TempDir tmp;
  auto b = make_local_backend(opts());
  std::vector<Completion> out;
  auto start = Clock::now();
  double cpu_before = thread_cpu_seconds();
  b->poll(out, 200ms);
  double took = seconds_since(start);
  CHECK(out.empty());
  CHECK(took >= 0.19);
  CHECK(took < 0.4);
  CHECK(thread_cpu_seconds() - cpu_before < 0.02);  // it slept, it did not spin

  // Something still running: still bounded by the timeout.
  TaskSpec slow = command_task({"sleep", "2"}, tmp.path);
  REQUIRE(b->launch(request_for(slow, tmp.sub("s"), 9)).has_value());
  start = Clock::now();
  cpu_before = thread_cpu_seconds();
  b->poll(out, 150ms);
  took = seconds_since(start);
  CHECK(out.empty());
  CHECK(thread_cpu_seconds() - cpu_before < 0.02);
  CHECK(took >= 0.14);
  CHECK(took < 0.35);

  // Something already finished: returns at once.
  TaskSpec quick = command_task({"true"}, tmp.path);
  REQUIRE(b->launch(request_for(quick, tmp.sub("q"), 1)).has_value());
  std::this_thread::sleep_for(100ms);
  start = Clock::now();
  b->poll(out, 5000ms);
  CHECK(seconds_since(start) < 0.05);
  REQUIRE(out.size() == 1);
  CHECK(out[0].task == 1);

  // Zero timeout: just a look.
  out.clear();
  start = Clock::now();
  b->poll(out, 0ms);
  CHECK(seconds_since(start) < 0.05);
  CHECK(out.empty());
  b->kill(9, 1);
}

TEST_CASE("local: exactly one completion per launch", "[local]") {
  TempDir tmp;
  auto b = make_local_backend(opts(2));
  TaskSpec quick = command_task({"true"}, tmp.path);
  TaskSpec fail = shell_task("exit 1", tmp.path);
  TaskSpec slow = command_task({"sleep", "30"}, tmp.path);
  std::map<std::pair<TaskId, std::uint32_t>, int> seen;
  std::size_t launched = 0;
  std::vector<Completion> out;
  for (TaskId i = 0; i < 60; ++i) {
    const TaskSpec& spec = i % 3 == 0 ? slow : i % 3 == 1 ? quick : fail;
    std::uint32_t attempt = 1 + i % 2;
    REQUIRE(b->launch(request_for(spec, tmp.sub("c" + std::to_string(i)), i, attempt)).has_value());
    ++launched;
    if (i % 3 == 0) b->kill(i, attempt);
    if (i % 5 == 0) b->kill(i, attempt);  // twice, or a quick one that may have ended
    b->kill(i + 1000, 1);                 // never launched
    if (i % 4 == 0) b->poll(out, 0ms);
  }
  auto start = Clock::now();
  while (out.size() < launched && seconds_since(start) < 10) b->poll(out, 100ms);
  for (const auto& c : out) ++seen[{c.task, c.attempt}];
  CHECK(out.size() == launched);
  CHECK(seen.size() == launched);
  for (const auto& [key, n] : seen) CHECK(n == 1);
  CHECK(b->in_flight() == 0);
  std::vector<Completion> more;
  b->poll(more, 100ms);
  CHECK(more.empty());
}

TEST_CASE("local: without pidfds (kernels before 5.3)", "[local]") {
  TempDir tmp;
  BackendOptions o = opts();
  o.extra["pidfd"] = "off";
  o.extra["kill_grace_ms"] = "200";
  auto b = make_local_backend(o);

  TaskSpec sh = shell_task("exit 4", tmp.path);
  Completion c = run_to_end(*b, request_for(sh, tmp.sub("a")));
  CHECK(c.kind == ExitKind::kExited);
  CHECK(c.code == 4);

  TaskSpec t = command_task({"sleep", "0.3"}, tmp.path);
  auto start = Clock::now();
  REQUIRE(b->launch(request_for(t, tmp.sub("b"), 1)).has_value());
  REQUIRE(b->launch(request_for(t, tmp.sub("c"), 2)).has_value());
  double cpu_before = thread_cpu_seconds();
  auto out = wait_for(*b, 2);
  CHECK(seconds_since(start) < 0.55);
  CHECK(thread_cpu_seconds() - cpu_before < 0.1);
  REQUIRE(out.size() == 2);

  TaskSpec stubborn = shell_task("trap '' TERM; echo started; sleep 30 & wait", tmp.path);
  std::string dir = tmp.sub("d");
  auto h = b->launch(request_for(stubborn, dir, 5));
  REQUIRE(h.has_value());
  start = Clock::now();
  while (slurp(dir + "/stdout").empty() && seconds_since(start) < 5) {
    std::this_thread::sleep_for(10ms);
  }
  b->kill(5, 1);
  out = wait_for(*b, 1);
  REQUIRE(out.size() == 1);
  CHECK(out[0].code == SIGKILL);
  std::this_thread::sleep_for(50ms);
  CHECK_FALSE(group_alive(pid_of(*h)));

  std::vector<Completion> none;
  start = Clock::now();
  b->poll(none, 100ms);
  CHECK(none.empty());
  CHECK(seconds_since(start) >= 0.09);
}

TEST_CASE("local: registered as \"local\"", "[local]") {
  register_local_backend();
  auto names = backend_names();
  CHECK(std::find(names.begin(), names.end(), "local") != names.end());
  auto b = create_backend("local", opts(1, 0));
  REQUIRE(b.has_value());
  CHECK((*b)->name() == "local");
  CHECK((*b)->capacity().cpus == 1);
}

// The throughput of the same loop at 2,000 tasks is bench/local_launch (scripts/bench.sh
// --only local_launch); here only its correctness, at a size the unit tier can afford.
TEST_CASE("local: 50 short tasks with 2 in flight all succeed, each once", "[local]") {
  TempDir tmp;
  auto b = make_local_backend(opts(2));
  TaskSpec t = command_task({"true"}, tmp.path);
  const int kTasks = 50;
  std::vector<std::string> dirs;
  for (int i = 0; i < 4; ++i) dirs.push_back(tmp.sub("d" + std::to_string(i)));
  std::vector<Completion> out;
  out.reserve(kTasks);
  int launched = 0;
  auto start = Clock::now();
  while (out.size() < static_cast<std::size_t>(kTasks) && seconds_since(start) < 60) {
    while (b->in_flight() < 2 && launched < kTasks) {
      auto h = b->launch(request_for(t, dirs[launched % 4], static_cast<TaskId>(launched)));
      REQUIRE(h.has_value());
      ++launched;
    }
    b->poll(out, 1000ms);
  }
  for (const auto& c : out) REQUIRE(c.ok());
  CHECK(out.size() == static_cast<std::size_t>(kTasks));
  std::set<TaskId> tasks;
  for (const auto& c : out) tasks.insert(c.task);
  CHECK(tasks.size() == static_cast<std::size_t>(kTasks));
  CHECK(b->in_flight() == 0);
}
