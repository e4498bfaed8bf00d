#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

#include "sluice/engine/loader.hpp"
#include "support/scratch_dir.hpp"

namespace fs = std::filesystem;
using sluice::Diagnostic;
using sluice::Diagnostics;
using sluice::LoadOptions;
using sluice::Millis;
using sluice::Workflow;

namespace {

// A scratch directory, with workflow files written into it.
struct TempDir {
  sluice::testing::ScratchDir scratch;
  fs::path path = scratch.path();

  std::string str() const { return path.string(); }

  fs::path write(const std::string& name, const std::string& content, bool executable = false) {
    fs::path p = path / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << content;
    ::chmod(p.c_str(), executable ? 0755 : 0644);
    return p;
  }
};

LoadOptions no_exec_check() {
  LoadOptions o;
  o.check_executables = false;
  return o;
}

std::string dump(const Diagnostics& ds) {
  std::ostringstream os;
  for (const auto& d : ds) os << "  " << d.format() << "\n";
  return os.str();
}

Workflow load_ok(std::string_view text, const TempDir& dir, LoadOptions opts = no_exec_check()) {
  auto wf = sluice::load_workflow_text(text, "wf.toml", dir.str(), opts);
  INFO("diagnostics:\n" << (wf ? std::string() : dump(wf.error())));
  REQUIRE(wf.has_value());
  return std::move(*wf);
}

Diagnostics load_bad(std::string_view text, const TempDir& dir,
                     LoadOptions opts = no_exec_check()) {
  auto wf = sluice::load_workflow_text(text, "wf.toml", dir.str(), opts);
  REQUIRE_FALSE(wf.has_value());
  REQUIRE_FALSE(wf.error().empty());
  return wf.error();
}

// The one diagnostic whose message contains `needle` (fails when none or several do).
Diagnostic the(const Diagnostics& ds, const std::string& needle) {
  INFO("looking for '" << needle << "' in:\n" << dump(ds));
  const Diagnostic* found = nullptr;
  int count = 0;
  for (const auto& d : ds) {
    if (d.message.find(needle) != std::string::npos) {
      found = &d;
      ++count;
    }
  }
  REQUIRE(count == 1);
  return *found;
}

#define CHECK_AT(diag, l, c)         \
  do {                               \
    INFO((diag).format());           \
    CHECK((diag).pos.line == (l));   \
    CHECK((diag).pos.column == (c)); \
    CHECK((diag).file == "wf.toml"); \
  } while (0)

std::vector<std::string> names(const Workflow& wf) {
  std::vector<std::string> out;
  for (const auto& t : wf.tasks) out.push_back(t.name);
  return out;
}

std::vector<std::string> after_names(const Workflow& wf, const std::string& task) {
  std::vector<std::string> out;
  const auto* t = wf.find(task);
  REQUIRE(t != nullptr);
  for (auto p : t->after) out.push_back(wf.tasks[p].name);
  return out;
}

using P = std::vector<std::pair<std::string, std::string>>;

const char* kExample = R"([workflow]
name = "train_and_pick_model"
project = "demo"          # optional, default "default"

[defaults]
retries = 1
max_exec_time = "10m"

[tasks.prepare]
command = ["./prepare.sh", "--out", "data"]

[tasks.train]
after = ["prepare"]
matrix = { lr = [0.01, 0.001], layers = [2, 4] }
command = ["./train", "--lr", "{lr}", "--layers", "{layers}"]
executor = "gpu"
gpus = 1

[tasks.pick]
after = ["train"]
shell = "echo picking from $SLUICE_INPUTS"
)";

}  // namespace

// ---- good workflows ---------------------------------------------------------------------

TEST_CASE("the example workflow loads with defaults applied and the matrix expanded", "[loader]") {
  TempDir dir;
  Workflow wf = load_ok(kExample, dir);
  CHECK(wf.name == "train_and_pick_model");
  CHECK(wf.project == "demo");
  CHECK(wf.key() == "demo:train_and_pick_model");
  CHECK(wf.base_dir == dir.str());
  CHECK(wf.source_path == "wf.toml");
  CHECK(wf.text == kExample);
  CHECK(names(wf) ==
        std::vector<std::string>{"prepare", "train.0", "train.1", "train.2", "train.3", "pick"});
  for (std::size_t i = 0; i < wf.tasks.size(); ++i) CHECK(wf.index.at(wf.tasks[i].name) == i);

  const auto& prepare = *wf.find("prepare");
  CHECK(prepare.group == "prepare");
  CHECK(prepare.version == "1");
  CHECK(prepare.command == std::vector<std::string>{"./prepare.sh", "--out", "data"});
  CHECK(prepare.shell.empty());
  CHECK(prepare.retries == 1);
  CHECK(prepare.max_exec_time == Millis(600'000));
  CHECK(prepare.max_wait_time == Millis(0));
  CHECK(prepare.cpus == 1);
  CHECK(prepare.gpus == 0);
  CHECK(prepare.memory_mib == 0);
  CHECK(prepare.workdir == dir.str());
  CHECK(prepare.pos.line == 9);
  CHECK(prepare.pos.column == 1);

  // Keys in alphabetical order (layers, lr), the last one varying fastest.
  const auto& t1 = *wf.find("train.1");
  CHECK(t1.group == "train");
  CHECK(t1.params == P{{"layers", "2"}, {"lr", "0.001"}});
  CHECK(t1.command == std::vector<std::string>{"./train", "--lr", "0.001", "--layers", "2"});
  CHECK(t1.executor == "gpu");
  CHECK(t1.gpus == 1);
  CHECK(t1.retries == 1);
  CHECK(wf.find("train.0")->params == P{{"layers", "2"}, {"lr", "0.01"}});
  CHECK(wf.find("train.2")->params == P{{"layers", "4"}, {"lr", "0.01"}});
  CHECK(wf.find("train.3")->params == P{{"layers", "4"}, {"lr", "0.001"}});
  CHECK(wf.find("train.3")->pos.line == 12);

  // Dependencies: a group stands for every instance; a matrix task's `after` applies to each.
  CHECK(after_names(wf, "train.2") == std::vector<std::string>{"prepare"});
  CHECK(after_names(wf, "pick") ==
        std::vector<std::string>{"train.0", "train.1", "train.2", "train.3"});
  CHECK(wf.find("pick")->shell == "echo picking from $SLUICE_INPUTS");
  CHECK(wf.find("pick")->command.empty());
  CHECK(wf.find("train") == nullptr);
  CHECK(wf.find("nope") == nullptr);
  CHECK(wf.content_hash.size() == 16);
  CHECK(wf.content_hash.find_first_not_of("0123456789abcdef") == std::string::npos);
}

TEST_CASE("task values override defaults and positions say where each value came from",
          "[loader]") {
  TempDir dir;
  Workflow wf = load_ok(R"([workflow]
name = "w"
[defaults]
cpus = 4
retries = 2
memory = "4G"
max_wait_time = 30
version = 3
[tasks.a]
shell = "true"
[tasks.b]
shell = "true"
cpus = 8
retries = 0
memory = 512
gpus = 2
executor = "gpu"
version = "2.1"
max_exec_time = "1h30m"
)",
                        dir);
  const auto& a = *wf.find("a");
  CHECK(a.cpus == 4);
  CHECK(a.retries == 2);
  CHECK(a.memory_mib == 4096);
  CHECK(a.max_wait_time == Millis(30'000));
  CHECK(a.version == "3");
  CHECK(a.cpus_pos.line == 4);  // inherited: the [defaults] key
  CHECK(a.cpus_pos.column == 1);
  CHECK(a.gpus_pos.line == 9);  // never written: the task's header
  CHECK(a.executor_pos.line == 9);

  const auto& b = *wf.find("b");
  CHECK(b.cpus == 8);
  CHECK(b.retries == 0);
  CHECK(b.memory_mib == 512);
  CHECK(b.gpus == 2);
  CHECK(b.executor == "gpu");
  CHECK(b.version == "2.1");
  CHECK(b.max_exec_time == Millis(5'400'000));
  CHECK(b.max_wait_time == Millis(30'000));
  CHECK(b.cpus_pos.line == 13);
  CHECK(b.gpus_pos.line == 16);
  CHECK(b.executor_pos.line == 17);
  CHECK(wf.project == "default");
}

TEST_CASE("tasks keep the order of the file, not the alphabetical order", "[loader]") {
  TempDir dir;
  Workflow wf = load_ok(R"([workflow]
name = "w"
[tasks.zeta]
shell = "true"
[tasks.alpha]
shell = "true"
after = ["zeta"]
[tasks.mid]
shell = "true"
)",
                        dir);
  CHECK(names(wf) == std::vector<std::string>{"zeta", "alpha", "mid"});
  CHECK(wf.find("alpha")->after == std::vector<sluice::TaskId>{0});
}

TEST_CASE("placeholders are substituted in command, shell, env and workdir", "[loader]") {
  TempDir dir;
  fs::create_directories(dir.path / "runs" / "small");
  fs::create_directories(dir.path / "runs" / "large");
  Workflow wf = load_ok(R"([workflow]
name = "w"
[defaults]
env = { COMMON = "yes", SIZE_HINT = "default" }
[tasks.sweep]
matrix = { size = ["small", "large"], flag = [true], ratio = [0.5] }
shell = "run --size {size} --flag {flag} --ratio {ratio} {inputs.prep.out} {unknown} ${HOME}"
workdir = "runs/{size}"
env = { SIZE_HINT = "{size}", THREADS = 4, DEBUG = false, SCALE = 1.5 }
)",
                        dir);
  REQUIRE(names(wf) == std::vector<std::string>{"sweep.0", "sweep.1"});
  const auto& s0 = *wf.find("sweep.0");
  CHECK(s0.params == P{{"flag", "true"}, {"ratio", "0.5"}, {"size", "small"}});
  CHECK(s0.shell == "run --size small --flag true --ratio 0.5 {inputs.prep.out} {unknown} ${HOME}");
  CHECK(s0.workdir == (dir.path / "runs" / "small").string());
  CHECK(wf.find("sweep.1")->workdir == (dir.path / "runs" / "large").string());
  // Defaults' env is merged with the task's, which wins by name; sorted by name.
  CHECK(s0.env == P{{"COMMON", "yes"},
                    {"DEBUG", "false"},
                    {"SCALE", "1.5"},
                    {"SIZE_HINT", "small"},
                    {"THREADS", "4"}});
}

TEST_CASE("dependencies may name single instances and are deduplicated in written order",
          "[loader]") {
  TempDir dir;
  Workflow wf = load_ok(R"([workflow]
name = "w"
[tasks.prep]
shell = "true"
[tasks.train]
matrix = { i = [1, 2, 3] }
shell = "train {i}"
after = ["prep"]
[tasks.best]
shell = "true"
after = ["train.2", "prep", "train", "train.2"]
)",
                        dir);
  CHECK(after_names(wf, "best") ==
        std::vector<std::string>{"train.2", "prep", "train.0", "train.1"});
  CHECK(after_names(wf, "train.1") == std::vector<std::string>{"prep"});
  CHECK(wf.find("train.2")->shell == "train 3");
}

TEST_CASE("the content hash ignores layout and changes with the definition", "[loader]") {
  TempDir dir;
  const char* original = R"([workflow]
name = "w"
[tasks.a]
command = ["echo", "a"]
retries = 1
[tasks.b]
after = ["a"]
shell = "echo b"
)";
  const char* relaid = R"(# a comment
[tasks.b]
shell   = "echo b"      # trailing comment
after = [ "a" ]

[workflow]
name = "w"

[tasks.a]
retries = 1
command = [
  "echo",
  "a",
]
)";
  const char* changed = R"([workflow]
name = "w"
[tasks.a]
command = ["echo", "a"]
retries = 2
[tasks.b]
after = ["a"]
shell = "echo b"
)";
  const char* renamed = R"([workflow]
name = "w2"
[tasks.a]
command = ["echo", "a"]
retries = 1
[tasks.b]
after = ["a"]
shell = "echo b"
)";
  std::string h = load_ok(original, dir).content_hash;
  CHECK(load_ok(relaid, dir).content_hash == h);
  CHECK(load_ok(changed, dir).content_hash != h);
  CHECK(load_ok(renamed, dir).content_hash != h);
  TempDir other;  // the same definition elsewhere: workdirs are hashed relative to it
  CHECK(load_ok(original, other).content_hash == h);
}

// ---- bad workflows: every case reports file, line and column -----------------------------

TEST_CASE("a TOML syntax error is reported at its position", "[loader]") {
  TempDir dir;
  auto ds = load_bad(R"([workflow]
name = "w"
[tasks.a]
command = ["echo",
)",
                     dir);
  REQUIRE(ds.size() == 1);
  CHECK(ds[0].message == "syntax: error while parsing array: encountered end-of-file");
  CHECK_AT(ds[0], 4, 20);
  CHECK(ds[0].file == "wf.toml");
}

TEST_CASE("a task table defined twice is a syntax error at the second definition", "[loader]") {
  TempDir dir;
  auto ds = load_bad(R"([workflow]
name = "w"
[tasks.a]
shell = "true"
[tasks.a]
shell = "false"
)",
                     dir);
  REQUIRE(ds.size() == 1);
  CHECK_AT(ds[0], 5, 1);
  CHECK(ds[0].message.find("syntax: ") == 0);
  CHECK(ds[0].message.find("'tasks.a'") != std::string::npos);
}

TEST_CASE("unknown keys are reported with a suggestion at every level", "[loader]") {
  TempDir dir;
  auto ds = load_bad(R"([workflow]
name = "w"
nmae = "x"
[defaults]
retires = 1
[tasks.train]
shell = "true"
retires = 2
depends_on = []
colour = "red"
[task.x]
)",
                     dir);
  CHECK(ds.size() == 6);
  auto wf_key = the(ds, "'nmae'");
  CHECK(wf_key.message == "unknown key 'nmae' in [workflow] (did you mean 'name'?)");
  CHECK_AT(wf_key, 3, 1);
  auto def_key = the(ds, "in [defaults]");
  CHECK(def_key.message == "unknown key 'retires' in [defaults] (did you mean 'retries'?)");
  CHECK_AT(def_key, 5, 1);
  auto task_key = the(ds, "'retires' in task");
  CHECK(task_key.message == "unknown key 'retires' in task 'train' (did you mean 'retries'?)");
  CHECK_AT(task_key, 8, 1);
  CHECK(the(ds, "'depends_on'").message ==
        "unknown key 'depends_on' in task 'train' (did you mean 'after'?)");
  CHECK(the(ds, "'colour'").message == "unknown key 'colour' in task 'train'");
  auto top = the(ds, "top-level");
  CHECK(top.message == "unknown top-level key 'task' (did you mean 'tasks'?)");
  CHECK_AT(top, 11, 2);
}

TEST_CASE("keys that only make sense per task are rejected in defaults", "[loader]") {
  TempDir dir;
  auto ds = load_bad(R"([workflow]
name = "w"
[defaults]
after = ["x"]
[tasks.a]
shell = "true"
)",
                     dir);
  REQUIRE(ds.size() == 1);
  CHECK(ds[0].message == "'after' cannot be set in [defaults], only in a task");
  CHECK_AT(ds[0], 4, 1);
}

TEST_CASE("values of the wrong type are reported at the value", "[loader]") {
  TempDir dir;
  auto ds = load_bad(R"([workflow]
name = "w"
[tasks.a]
shell = "true"
cpus = "4"
gpus = 1.5
retries = true
executor = 3
env = "X=1"
after = "b"
[tasks.b]
command = "echo hi"
max_exec_time = 1.5
memory = [1]
env = { A = [1] }
)",
                     dir);
  CHECK(ds.size() == 10);
  CHECK_AT(the(ds, "'cpus' must be an integer"), 5, 8);
  CHECK_AT(the(ds, "'gpus' must be an integer"), 6, 8);
  CHECK_AT(the(ds, "'retries' must be an integer"), 7, 11);
  CHECK_AT(the(ds, "'executor' must be a string"), 8, 12);
  CHECK_AT(the(ds, "'env' must be a table"), 9, 7);
  CHECK_AT(the(ds, "'after' must be an array of task names"), 10, 9);
  CHECK_AT(the(ds, "'command' must be an array of strings (use 'shell'"), 12, 11);
  CHECK_AT(the(ds, "'max_exec_time' must be a duration string or an integer"), 13, 17);
  CHECK_AT(the(ds, "'memory' must be a string like \"4G\" or an integer number of MiB"), 14, 10);
  CHECK_AT(the(ds, "env 'A' must be a string, number or boolean"), 15, 13);
}

TEST_CASE("a workflow without a name is rejected", "[loader]") {
  TempDir dir;
  auto ds = load_bad(R"([workflow]
project = "p"
[tasks.a]
shell = "true"
)",
                     dir);
  REQUIRE(ds.size() == 1);
  CHECK(ds[0].message == "missing workflow name");
  CHECK_AT(ds[0], 1, 1);

  auto none = load_bad("[tasks.a]\nshell = \"true\"\n", dir);
  REQUIRE(none.size() == 1);
  CHECK(none[0].message == "missing workflow name");
}

TEST_CASE("a dependency on an unknown task is reported at the array element", "[loader]") {
  TempDir dir;
  auto ds = load_bad(R"([workflow]
name = "w"
[tasks.train]
shell = "true"
[tasks.pick]
shell = "true"
after = ["train", "trian", "zzz", "train.7"]
)",
                     dir);
  REQUIRE(ds.size() == 3);
  auto typo = the(ds, "'trian'");
  CHECK(typo.message == "task 'pick' depends on unknown task 'trian' (did you mean 'train'?)");
  CHECK_AT(typo, 7, 19);
  auto far = the(ds, "'zzz'");
  CHECK(far.message == "task 'pick' depends on unknown task 'zzz'");
  CHECK_AT(far, 7, 28);
  CHECK_AT(the(ds, "unknown task 'train.7'"), 7, 35);
}

TEST_CASE("a dependency cycle is reported once, in data-flow order, at the first task",
          "[loader]") {
  TempDir dir;
  auto ds = load_bad(R"([workflow]
name = "w"
[tasks.a]
shell = "true"
after = ["c"]
[tasks.b]
shell = "true"
after = ["a"]
[tasks.c]
shell = "true"
after = ["b"]
[tasks.ok]
shell = "true"
)",
                     dir);
  REQUIRE(ds.size() == 1);
  CHECK(ds[0].message == "dependency cycle: a -> b -> c -> a");
  CHECK_AT(ds[0], 3, 1);

  auto self = load_bad(R"([workflow]
name = "w"
[tasks.ok]
shell = "true"
[tasks.me]
shell = "true"
after = ["ok", "me"]
)",
                       dir);
  REQUIRE(self.size() == 1);
  CHECK(self[0].message == "dependency cycle: me -> me");
  CHECK_AT(self[0], 5, 1);
}

TEST_CASE("a cycle through a matrix group names the instances", "[loader]") {
  TempDir dir;
  auto ds = load_bad(R"([workflow]
name = "w"
[tasks.prep]
shell = "true"
after = ["train"]
[tasks.train]
matrix = { x = [1, 2] }
shell = "true"
after = ["prep"]
)",
                     dir);
  REQUIRE(ds.size() == 1);
  CHECK(ds[0].message == "dependency cycle: prep -> train.0 -> prep");
  CHECK_AT(ds[0], 3, 1);
}

TEST_CASE("task names that are not safe identifiers are rejected", "[loader]") {
  TempDir dir;
  auto ds = load_bad(R"([workflow]
name = "w"
[tasks."a b"]
shell = "true"
[tasks."../x"]
shell = "true"
[tasks."x;rm"]
shell = "true"
[tasks.9lives]
shell = "true"
[tasks.fine-name_2]
shell = "true"
[tasks.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]
shell = "true"
)",
                     dir);
  REQUIRE(ds.size() == 5);
  auto space = the(ds, "'a b'");
  CHECK(space.message ==
        "task name 'a b' is not a safe identifier (use letters, digits, '_' and '-')");
  CHECK_AT(space, 3, 8);
  CHECK_AT(the(ds, "task name '../x' is not a safe identifier"), 5, 8);
  CHECK_AT(the(ds, "task name 'x;rm' is not a safe identifier"), 7, 8);
  CHECK_AT(the(ds, "task name '9lives' is not a safe identifier"), 9, 8);
  CHECK_AT(the(ds, "is too long (at most 64 characters)"), 13, 8);
}

TEST_CASE("is_safe_name accepts identifiers of at most 64 characters", "[loader]") {
  CHECK(sluice::is_safe_name("train"));
  CHECK(sluice::is_safe_name("_x-1"));
  CHECK(sluice::is_safe_name(std::string(64, 'a')));
  CHECK_FALSE(sluice::is_safe_name(std::string(65, 'a')));
  CHECK_FALSE(sluice::is_safe_name(""));
  CHECK_FALSE(sluice::is_safe_name("-x"));
  CHECK_FALSE(sluice::is_safe_name("1x"));
  CHECK_FALSE(sluice::is_safe_name("train.0"));
  CHECK_FALSE(sluice::is_safe_name("a/b"));
  CHECK_FALSE(sluice::is_safe_name("a b"));
}

TEST_CASE("the workflow and project names must be safe identifiers too", "[loader]") {
  TempDir dir;
  auto ds = load_bad(R"([workflow]
name = "my flow"
project = "../p"
[tasks.a]
shell = "true"
)",
                     dir);
  REQUIRE(ds.size() == 2);
  CHECK_AT(the(ds, "workflow name 'my flow' is not a safe identifier"), 2, 8);
  CHECK_AT(the(ds, "project name '../p' is not a safe identifier"), 3, 11);
}

TEST_CASE("resources out of range are reported with the value given", "[loader]") {
  TempDir dir;
  auto ds = load_bad(R"([workflow]
name = "w"
[defaults]
retries = 101
[tasks.a]
shell = "true"
cpus = -2
gpus = 300
memory = "0G"
max_exec_time = "10 minutes"
max_wait_time = "400d"
[tasks.b]
shell = "true"
cpus = 5000
gpus = -1
memory = "lots"
max_exec_time = 0
max_wait_time = "0s"
[tasks.c]
shell = "true"
memory = "65T"
)",
                     dir);
  CHECK(ds.size() == 12);
  CHECK_AT(the(ds, "'retries' must be between 0 and 100, got 101"), 4, 11);
  CHECK_AT(the(ds, "'cpus' must be between 1 and 4096, got -2"), 7, 8);
  CHECK_AT(the(ds, "'gpus' must be between 0 and 256, got 300"), 8, 8);
  CHECK_AT(the(ds, "'memory' must be between 1M and 64T, got \"0G\""), 9, 10);
  CHECK_AT(the(ds, "'max_exec_time' is not a duration: \"10 minutes\" (use 90s, 10m, 2h)"), 10, 17);
  CHECK_AT(the(ds, "'max_wait_time' must be between 1ms and 365d, got \"400d\""), 11, 17);
  CHECK_AT(the(ds, "'cpus' must be between 1 and 4096, got 5000"), 14, 8);
  CHECK_AT(the(ds, "'gpus' must be between 0 and 256, got -1"), 15, 8);
  CHECK_AT(the(ds, "'memory' is not a memory size: \"lots\" (use 512M, 4G, 1T)"), 16, 10);
  CHECK_AT(the(ds, "'max_exec_time' must be between 1ms and 365d, got 0"), 17, 17);
  CHECK_AT(the(ds, "'max_wait_time' must be between 1ms and 365d, got \"0s\""), 18, 17);
  CHECK_AT(the(ds, "got \"65T\""), 21, 10);
}

TEST_CASE("a matrix that expands to nothing is rejected", "[loader]") {
  TempDir dir;
  auto ds = load_bad(R"([workflow]
name = "w"
[tasks.a]
shell = "echo {lr}"
matrix = { lr = [], layers = [1] }
[tasks.b]
shell = "true"
matrix = {}
[tasks.c]
shell = "true"
matrix = { x = [[1]] }
[tasks.d]
shell = "true"
after = ["a"]
)",
                     dir);
  REQUIRE(ds.size() == 3);
  auto empty = the(ds, "matrix 'lr'");
  CHECK(empty.message == "matrix 'lr' is empty: the task would expand to no instances");
  CHECK_AT(empty, 5, 17);
  CHECK_AT(the(ds, "'matrix' is empty: the task would expand to no instances"), 8, 10);
  CHECK_AT(the(ds, "matrix 'x' values must be strings, numbers or booleans"), 11, 17);
}

TEST_CASE("a task needs exactly one non-empty command or shell", "[loader]") {
  TempDir dir;
  auto ds = load_bad(R"([workflow]
name = "w"
[tasks.none]
cpus = 1
[tasks.both]
command = ["true"]
shell = "true"
[tasks.empty]
command = []
[tasks.blank]
command = ["", "x"]
[tasks.noshell]
shell = ""
)",
                     dir);
  REQUIRE(ds.size() == 5);
  CHECK_AT(the(ds, "task 'none' needs a 'command' (argv), a 'shell' string or a 'workflow' file"),
           3, 1);
  CHECK_AT(the(ds, "task 'both' sets more than one of 'command', 'shell' and 'workflow'"), 5, 1);
  CHECK_AT(the(ds, "'shell' must not be empty"), 13, 9);
  std::vector<std::pair<std::uint32_t, std::uint32_t>> at;
  for (const auto& d : ds) {
    if (d.message == "'command' must not be empty") at.emplace_back(d.pos.line, d.pos.column);
  }
  CHECK(at == std::vector<std::pair<std::uint32_t, std::uint32_t>>{{9, 11}, {11, 12}});
}

TEST_CASE("an empty command array and an empty program name point at themselves", "[loader]") {
  TempDir dir;
  auto arr = load_bad("[workflow]\nname = \"w\"\n[tasks.a]\ncommand = []\n", dir);
  REQUIRE(arr.size() == 1);
  CHECK(arr[0].message == "'command' must not be empty");
  CHECK_AT(arr[0], 4, 11);
  auto blank = load_bad("[workflow]\nname = \"w\"\n[tasks.a]\ncommand = [\"\", \"x\"]\n", dir);
  REQUIRE(blank.size() == 1);
  CHECK(blank[0].message == "'command' must not be empty");
  CHECK_AT(blank[0], 4, 12);
}

TEST_CASE("a workflow with no tasks is rejected", "[loader]") {
  TempDir dir;
  auto ds = load_bad("[workflow]\nname = \"w\"\n", dir);
  REQUIRE(ds.size() == 1);
  CHECK(ds[0].message == "workflow has no tasks");
  auto empty = load_bad("[workflow]\nname = \"w\"\n[tasks]\n", dir);
  REQUIRE(empty.size() == 1);
  CHECK(empty[0].message == "workflow has no tasks");
  CHECK_AT(empty[0], 3, 1);
}

TEST_CASE("a task that is not a table is rejected", "[loader]") {
  TempDir dir;
  auto ds = load_bad("[workflow]\nname = \"w\"\n[tasks]\na = \"echo\"\n", dir);
  REQUIRE(ds.size() == 1);
  CHECK(ds[0].message == "task 'a' must be a table, e.g. [tasks.a]");
  CHECK_AT(ds[0], 4, 5);
}

TEST_CASE("a workdir that does not exist is rejected", "[loader]") {
  TempDir dir;
  fs::create_directories(dir.path / "there");
  dir.write("file", "");
  auto ds = load_bad(R"([workflow]
name = "w"
[tasks.a]
shell = "true"
workdir = "/definitely/not/here"
[tasks.b]
shell = "true"
workdir = "missing"
[tasks.c]
shell = "true"
workdir = "there"
[tasks.d]
shell = "true"
workdir = "file"
)",
                     dir);
  REQUIRE(ds.size() == 3);
  CHECK_AT(the(ds, "workdir '/definitely/not/here' does not exist"), 5, 11);
  CHECK_AT(the(ds, "workdir '" + (dir.path / "missing").string() + "' does not exist"), 8, 11);
  CHECK_AT(the(ds, "workdir '" + (dir.path / "file").string() + "' is not a directory"), 14, 11);
}

TEST_CASE("executables are looked up on PATH or relative to the workdir", "[loader]") {
  TempDir dir;
  dir.write("prepare.sh", "#!/bin/sh\n", /*executable=*/true);
  dir.write("notes.txt", "", /*executable=*/false);
  fs::create_directories(dir.path / "bin");
  dir.write("bin/tool", "#!/bin/sh\n", /*executable=*/true);
  LoadOptions check;  // check_executables defaults to on
  REQUIRE(check.check_executables);

  Workflow wf = load_ok(R"([workflow]
name = "w"
[tasks.a]
command = ["true"]
[tasks.b]
command = ["./prepare.sh", "--out", "data"]
[tasks.c]
command = ["tool"]
env = { PATH = "bin" }
[tasks.d]
command = ["{prog}"]
[tasks.e]
command = ["{tool}"]
matrix = { tool = ["./prepare.sh", "true"] }
[tasks.f]
command = ["sluice", "put", "x"]
)",
                        dir, check);
  CHECK(wf.tasks.size() == 7);

  auto ds = load_bad(R"([workflow]
name = "w"
[tasks.a]
command = ["definitely-not-a-program-xyz", "--flag"]
[tasks.b]
command = ["./missing.sh"]
[tasks.c]
command = ["./notes.txt"]
[tasks.d]
command = ["true"]
env = { PATH = "/nonexistent-dir" }
[tasks.e]
command = ["/no/such/program"]
)",
                     dir, check);
  REQUIRE(ds.size() == 5);
  auto path = the(ds, "'definitely-not-a-program-xyz'");
  CHECK(path.message == "executable 'definitely-not-a-program-xyz' not found on PATH");
  CHECK_AT(path, 4, 12);
  CHECK_AT(the(ds, "executable './missing.sh' not found in " + dir.str()), 6, 12);
  CHECK_AT(the(ds, "executable './notes.txt' is not executable"), 8, 12);
  CHECK_AT(the(ds, "executable 'true' not found on PATH"), 10, 12);
  CHECK_AT(the(ds, "executable '/no/such/program' not found"), 13, 12);

  // The same file loads when the check is off.
  auto unchecked = sluice::load_workflow_text(
      "[workflow]\nname = \"w\"\n[tasks.a]\ncommand = [\"definitely-not-a-program-xyz\"]\n",
      "wf.toml", dir.str(), no_exec_check());
  CHECK(unchecked.has_value());
}

TEST_CASE("every problem in a file is reported, sorted by position", "[loader]") {
  TempDir dir;
  auto ds = load_bad(R"([workflow]
name = "w"
[tasks.b]
shell = "true"
after = ["nope"]
cpus = 0
[tasks.a]
shell = "true"
retires = 1
)",
                     dir);
  REQUIRE(ds.size() == 3);
  CHECK(ds[0].pos.line == 5);
  CHECK(ds[1].pos.line == 6);
  CHECK(ds[2].pos.line == 9);
}

TEST_CASE("a workflow file is read from disk and diagnostics name that file", "[loader]") {
  TempDir dir;
  dir.write("run.sh", "#!/bin/sh\n", /*executable=*/true);
  fs::path good = dir.write("good.toml", R"([workflow]
name = "w"
[tasks.a]
command = ["./run.sh"]
)");
  auto wf = sluice::load_workflow_file(good.string());
  INFO((wf ? std::string() : dump(wf.error())));
  REQUIRE(wf.has_value());
  CHECK(wf->source_path == good.string());
  CHECK(wf->base_dir == dir.str());
  CHECK(wf->tasks[0].workdir == dir.str());
  CHECK(wf->text.find("./run.sh") != std::string::npos);

  fs::path bad = dir.write("bad.toml", R"([workflow]
name = "w"
[tasks.a]
command = ["./run.sh"]
cpus = "two"
)");
  auto err = sluice::load_workflow_file(bad.string());
  REQUIRE_FALSE(err.has_value());
  REQUIRE(err.error().size() == 1);
  CHECK(err.error()[0].file == bad.string());
  CHECK(err.error()[0].format() == bad.string() + ":5:8: error: 'cpus' must be an integer");

  auto missing = sluice::load_workflow_file((dir.path / "absent.toml").string());
  REQUIRE_FALSE(missing.has_value());
  REQUIRE(missing.error().size() == 1);
  CHECK(missing.error()[0].format() ==
        (dir.path / "absent.toml").string() +
            ": error: cannot read workflow file: No such file or directory");
}

TEST_CASE("a diagnostic formats as file:line:col: error: message", "[loader]") {
  Diagnostic d{"flows/a.toml", {3, 7}, "workflow has no tasks"};
  CHECK(d.format() == "flows/a.toml:3:7: error: workflow has no tasks");
}

TEST_CASE("a task's slurm table sets placement and extra sbatch options", "[loader]") {
  TempDir dir;
  Workflow wf = load_ok(R"([workflow]
name = "w"
[defaults]
slurm = { account = "proj" }
[tasks.a]
shell = "true"
[tasks.b]
shell = "true"
[tasks.b.slurm]
partition = "long"
extra = ["--exclusive"]
)",
                        dir);
  CHECK(wf.tasks[0].slurm == std::vector<std::pair<std::string, std::string>>{{"account", "proj"}});
  CHECK(wf.tasks[1].slurm ==
        std::vector<std::pair<std::string, std::string>>{{"partition", "long"}});
  CHECK(wf.tasks[1].slurm_extra == std::vector<std::string>{"--exclusive"});
}

TEST_CASE("unknown keys in a task's slurm table are reported where they are written", "[loader]") {
  TempDir dir;
  auto ds = load_bad(R"([workflow]
name = "w"
[tasks.a]
shell = "true"
[tasks.a.slurm]
partiton = "long"
)",
                     dir);
  REQUIRE(ds.size() == 1);
  CHECK(ds[0].message ==
        "unknown key 'partiton' in 'slurm' in task 'a' (did you mean 'partition'?)");
  CHECK_AT(ds[0], 6, 1);
}

TEST_CASE("a sub-workflow with backend = mpi becomes one task of one Slurm job of its ranks",
          "[loader][subworkflow]") {
  TempDir dir;
  dir.write("inner.toml", "[workflow]\nname = \"inner\"\n[tasks.a]\nshell = \"true\"\n");
  const char* outer = R"([workflow]
name = "w"
[tasks.group]
workflow = "inner.toml"
backend = "mpi"
ranks = 5
)";
  Workflow wf = load_ok(outer, dir);
  REQUIRE(wf.tasks.size() == 1);
  const sluice::TaskSpec& t = wf.tasks[0];
  CHECK(t.command.empty());
  CHECK(t.shell.find("mpirun") != std::string::npos);
  CHECK(t.shell.find(" -n 5 sluice run --backend mpi") != std::string::npos);
  CHECK(t.shell.find((dir.path / "inner.toml").string()) != std::string::npos);
  CHECK(t.cpus == 1);
  CHECK(t.slurm_extra == std::vector<std::string>{"--ntasks=5"});
  // Editing the sub-workflow changes the outer definition's hash (revision, cache key).
  dir.write("inner.toml", "[workflow]\nname = \"inner\"\n[tasks.a]\nshell = \"false\"\n");
  CHECK(load_ok(outer, dir).content_hash != wf.content_hash);
}

TEST_CASE("a sub-workflow's nodes spread its MPI job's ranks over that many Slurm nodes",
          "[loader][subworkflow]") {
  TempDir dir;
  dir.write("inner.toml", "[workflow]\nname = \"inner\"\n[tasks.a]\nshell = \"true\"\n");
  // nodes alone: one worker rank per node plus rank 0.
  Workflow wf = load_ok(
      "[workflow]\nname = \"w\"\n[tasks.group]\nworkflow = \"inner.toml\"\n"
      "backend = \"mpi\"\nnodes = 3\n",
      dir);
  REQUIRE(wf.tasks.size() == 1);
  CHECK(wf.tasks[0].shell.find(" -n 4 sluice run --backend mpi") != std::string::npos);
  CHECK(wf.tasks[0].slurm_extra == std::vector<std::string>{"--ntasks=4", "--nodes=3"});
  // Both: ranks as given.
  wf = load_ok(
      "[workflow]\nname = \"w\"\n[tasks.group]\nworkflow = \"inner.toml\"\n"
      "backend = \"mpi\"\nnodes = 2\nranks = 9\n",
      dir);
  CHECK(wf.tasks[0].slurm_extra == std::vector<std::string>{"--ntasks=9", "--nodes=2"});
  // Too few ranks for the nodes, and nodes on a task that is no MPI sub-workflow.
  auto ds = load_bad(R"([workflow]
name = "w"
[tasks.group]
workflow = "inner.toml"
backend = "mpi"
nodes = 4
ranks = 3
[tasks.other]
shell = "true"
nodes = 2
)",
                     dir);
  CHECK_AT(the(ds, "'ranks' = 3 leaves a node without a worker: 4 nodes need at least 5 ranks"), 7,
           9);
  CHECK_AT(the(ds, "'nodes' applies to a sub-workflow"), 10, 1);
}

TEST_CASE("a broken sub-workflow is reported at its own file:line:col", "[loader][subworkflow]") {
  TempDir dir;
  dir.write("inner.toml",
            "[workflow]\nname = \"inner\"\n[tasks.a]\nshell = \"true\"\nafter = [\"x\"]\n");
  auto ds = load_bad(R"([workflow]
name = "w"
[tasks.group]
workflow = "inner.toml"
backend = "mpi"
[tasks.other]
shell = "true"
ranks = 3
backend = "slurm"
)",
                     dir);
  CHECK_AT(the(ds, "sub-workflow 'inner.toml' is invalid"), 4, 12);
  const Diagnostic inner = the(ds, "unknown task 'x'");
  CHECK(inner.file.find("inner.toml") != std::string::npos);
  CHECK(inner.pos.line == 5);
  CHECK_AT(the(ds, "'ranks' applies to a sub-workflow"), 8, 1);
  the(ds, "a sub-workflow's 'backend' is");
}

TEST_CASE("a workflow that expands to more tasks than max_tasks is refused before expanding",
          "[loader][limits]") {
  TempDir dir;
  const std::string tasks =
      "[tasks.a]\nshell = \"true\"\nmatrix = { p = [1, 2, 3], q = [1, 2] }\n"
      "[tasks.b]\nshell = \"true\"\nafter = [\"a\"]\nmatrix = { p = [1, 2, 3], q = [1, 2] }\n";
  auto ds = load_bad("[workflow]\nname = \"x\"\nmax_tasks = 10\n" + tasks, dir);
  const Diagnostic& d = the(ds, "more than 10 tasks");
  CHECK(d.pos.line == 10);  // b's matrix: the task that crosses the limit
  CHECK(d.pos.column == 10);
  CHECK(d.message.find("task 'b' (6 instances)") != std::string::npos);
  CHECK(d.message.find("`max_tasks = N` in [workflow]") != std::string::npos);
  CHECK(load_ok("[workflow]\nname = \"x\"\nmax_tasks = 12\n" + tasks, dir).tasks.size() == 12);
  the(load_bad("[workflow]\nname = \"x\"\nmax_tasks = 0\n" + tasks, dir),
      "'max_tasks' must be an integer between 1 and");
}

TEST_CASE("ten million-instance matrices hit the default task limit", "[loader][limits]") {
  TempDir dir;
  std::string text = "[workflow]\nname = \"x\"\n";
  const std::string axis = "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]";
  for (int i = 0; i < 10; ++i)
    text += "[tasks.m" + std::to_string(i) + "]\nshell = \"true\"\nmatrix = { a = " + axis +
            ", b = " + axis + ", c = " + axis + ", d = " + axis + ", e = " + axis +
            ", f = " + axis + " }\n";
  auto ds = load_bad(text, dir);
  CHECK(ds.size() == 1);
  const Diagnostic& d = the(ds, "more than " + std::to_string(sluice::kDefaultMaxTasks));
  CHECK(d.message.find("task 'm2' (1000000 instances)") != std::string::npos);
}

TEST_CASE("the instances of a matrix after a group share one parent list", "[loader][limits]") {
  TempDir dir;
  std::string values;
  for (int i = 0; i < 300; ++i) values += (i ? ", " : "") + std::to_string(i);
  auto wf = load_ok("[workflow]\nname = \"x\"\n[tasks.a]\nshell = \"true\"\nmatrix = { i = [" +
                        values + "] }\n[tasks.b]\nshell = \"true\"\nafter = [\"a\"]\n" +
                        "matrix = { j = [" + values + "] }\n",
                    dir);
  REQUIRE(wf.tasks.size() == 600);
  const auto& first = wf.tasks[300].after;
  REQUIRE(first.size() == 300);
  for (std::size_t i = 0; i < 300; ++i) CHECK(first[i] == i);  // inputs keep the group's order
  for (std::size_t t = 301; t < 600; ++t) CHECK(wf.tasks[t].after.shares_with(first));
}
