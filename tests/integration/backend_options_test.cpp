// Backend options tables through the real binary: an unknown key or a malformed value is
// refused with exit 2 and the backend's valid keys on `run -O`, `submit -O`, `config
// save` and a saved configuration, for every backend this `sluice` has (as `sluice
// doctor --json` lists them), and nothing is run, saved or written to the store.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "support/cli_runner.hpp"

using namespace sluice::testing;
namespace fs = std::filesystem;

namespace {

// Backend name -> its documented keys, from `sluice doctor --json`.
const nlohmann::json& backend_tables() {
  static const nlohmann::json tables = [] {
    ScratchDir dir;
    auto r = run_sluice({"doctor", "--json", "--timeout", "1"}, dir.path());
    REQUIRE(r.exit_code == 0);
    return nlohmann::json::parse(r.out).at("backends");
  }();
  return tables;
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// `-O` arguments that pick a backend: pilot mode is the slurm backend with mode=pilot.
struct Target {
  std::string label;
  std::string backend;
  std::vector<std::string> args;  // --backend B [-O mode=pilot]
};

std::vector<Target> targets() {
  std::vector<Target> out;
  for (const auto& [name, keys] : backend_tables().items())
    out.push_back({name, name, {"--backend", name}});
  if (backend_tables().contains("slurm"))
    out.push_back({"slurm pilot mode", "slurm", {"--backend", "slurm", "-O", "mode=pilot"}});
  return out;
}

void check_lists_valid_keys(const std::string& err, const std::string& backend) {
  CHECK(has(err, "unknown option 'bogus' for backend " + backend));
  CHECK(has(err, "valid keys"));
  for (const auto& spec : backend_tables().at(backend)) {
    INFO(spec.dump());
    CHECK(has(err, spec.at("key").get<std::string>()));
    CHECK(has(err, spec.at("doc").get<std::string>()));
  }
}

void write_workflow(const ScratchDir& dir) {
  write_file(dir / "wf.toml",
             "[workflow]\nname = \"w\"\n[tasks.t]\nshell = \"echo ran > ran.txt\"\n");
}

// Nothing ran and no run was recorded: no store, no task output.
void check_nothing_written(const ScratchDir& dir) {
  CHECK_FALSE(fs::exists(dir / ".sluice/store.db"));
  CHECK_FALSE(fs::exists(dir / ".sluice/runs"));
  CHECK_FALSE(fs::exists(dir / "ran.txt"));
}

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

TEST_CASE("every backend has a documented options table with the common keys",
          "[integration][options]") {
  const auto& tables = backend_tables();
  REQUIRE(tables.contains("local"));
  REQUIRE(tables.contains("inproc"));
  for (const auto& [name, keys] : tables.items()) {
    INFO(name);
    REQUIRE(keys.size() >= 3);
    CHECK(keys[0]["key"] == "cpus");
    CHECK(keys[1]["key"] == "gpus");
    CHECK(keys[2]["key"] == "executors");
    for (const auto& k : keys) CHECK_FALSE(k["doc"].get<std::string>().empty());
  }
  ScratchDir dir;
  auto doctor = run_sluice({"doctor", "--timeout", "1"}, dir.path());
  CHECK(has(doctor.out, "backend options"));
  CHECK(has(doctor.out, "kill_grace_ms"));
  CHECK(has(doctor.out, "queue_per_thread"));
}

TEST_CASE("run -O with an unknown key exits 2 with the valid keys and runs nothing",
          "[integration][options]") {
  for (const Target& t : targets()) {
    DYNAMIC_SECTION(t.label) {
      ScratchDir dir;
      write_workflow(dir);
      auto r = run_sluice(concat({"run", "-q", "wf.toml"}, concat(t.args, {"-O", "bogus=1"})),
                          dir.path());
      INFO(r.out << r.err);
      CHECK(r.exit_code == 2);
      check_lists_valid_keys(r.err, t.backend);
      check_nothing_written(dir);
    }
  }
}

TEST_CASE("submit -O with an unknown key exits 2 with the valid keys and starts nothing",
          "[integration][options]") {
  for (const Target& t : targets()) {
    DYNAMIC_SECTION(t.label) {
      ScratchDir dir;
      write_workflow(dir);
      auto r =
          run_sluice(concat({"submit", "wf.toml"}, concat(t.args, {"-O", "bogus=1"})), dir.path());
      INFO(r.out << r.err);
      CHECK(r.exit_code == 2);
      CHECK(r.out.empty());  // no run id
      check_lists_valid_keys(r.err, t.backend);
      check_nothing_written(dir);
    }
  }
}

TEST_CASE("config save with an unknown key exits 2 with the valid keys and saves nothing",
          "[integration][options]") {
  for (const Target& t : targets()) {
    DYNAMIC_SECTION(t.label) {
      ScratchDir dir;
      std::vector<std::string> args = {"config", "save", "bad", "--backend", t.backend};
      if (t.label == "slurm pilot mode") args.push_back("mode=pilot");
      args.push_back("bogus=1");
      auto r = run_sluice(args, dir.path());
      INFO(r.out << r.err);
      CHECK(r.exit_code == 2);
      check_lists_valid_keys(r.err, t.backend);
      CHECK_FALSE(fs::exists(dir / ".sluice/configs/bad.toml"));
      CHECK(run_sluice({"config", "list"}, dir.path()).out.find("bad") == std::string::npos);
      check_nothing_written(dir);
    }
  }
}

TEST_CASE("a malformed value exits 2 naming the key and value", "[integration][options]") {
  ScratchDir dir;
  write_workflow(dir);
  const std::vector<std::vector<std::string>> cases = {
      {"run", "-q", "wf.toml", "-O", "cpus=abc"},
      {"run", "-q", "wf.toml", "-O", "gpus=2x"},
      {"run", "-q", "wf.toml", "-O", "kill_grace_ms=soon"},
      {"run", "-q", "wf.toml", "-O", "spawn=fork"},
      {"submit", "wf.toml", "-O", "cpus=abc"},
      {"run", "-q", "wf.toml", "--backend", "inproc", "-O", "queue_per_thread=many"},
      {"config", "save", "bad", "--backend", "local", "cpus=abc"},
      {"config", "save", "bad", "--backend", "inproc", "queue_per_thread=0"},
      {"run", "-q", "wf.toml", "-O", "=1"},
      {"config", "save", "bad", "--backend", "local", "cpus"},
  };
  for (const auto& args : cases) {
    auto r = run_sluice(args, dir.path());
    INFO(args[0] << " " << args.back() << ": " << r.out << r.err);
    CHECK(r.exit_code == 2);
    const std::string& opt = args.back();
    CHECK(has(r.err, opt));
  }
  CHECK(has(run_sluice({"run", "-q", "wf.toml", "-O", "cpus=abc"}, dir.path()).err,
            "cpus=abc for backend local: cpus must be a number, not 'abc'"));
  CHECK(has(run_sluice({"config", "save", "bad", "--backend", "local", "cpus"}, dir.path()).err,
            "kill_grace_ms"));
  if (backend_tables().contains("slurm")) {
    auto r = run_sluice({"run", "-q", "wf.toml", "--backend", "slurm", "-O", "poll_interval=fast"},
                        dir.path());
    CHECK(r.exit_code == 2);
    CHECK(has(r.err, "poll_interval=fast"));
  }
  CHECK_FALSE(fs::exists(dir / ".sluice/configs/bad.toml"));
  check_nothing_written(dir);
}

TEST_CASE("a saved configuration file with an unknown key is refused when used",
          "[integration][options]") {
  ScratchDir dir;
  write_workflow(dir);
  fs::create_directories(dir / ".sluice/configs");
  write_file(dir / ".sluice/configs/hand.toml",
             "backend = \"local\"\ncpus = \"1\"\n[options]\nkill_grace = \"100\"\n");
  for (const std::string verb : {"run", "submit", "validate"}) {
    auto r = run_sluice({verb, "wf.toml", "--config", "hand"}, dir.path());
    INFO(verb << ": " << r.out << r.err);
    CHECK(r.exit_code == 2);
    CHECK(has(r.err, "configuration 'hand': unknown option 'kill_grace' for backend local"));
    CHECK(has(r.err, "kill_grace_ms"));
  }
  check_nothing_written(dir);
  // `config show` still shows it, with the keys its backend documents and why it is refused.
  auto show = run_sluice({"config", "show", "hand"}, dir.path());
  CHECK(show.exit_code == 0);
  CHECK(has(show.out, "kill_grace = "));
  CHECK(has(show.out, "# options of backend local:"));
  CHECK(has(show.out, "#   kill_grace_ms"));
  CHECK(has(show.out, "not usable as it stands"));
}

TEST_CASE("config show prints the documented keys of the configuration's backend",
          "[integration][options]") {
  ScratchDir dir;
  auto saved =
      run_sluice({"config", "save", "good", "--backend", "local", "kill_grace_ms=100"}, dir.path());
  INFO(saved.out << saved.err);
  REQUIRE(saved.exit_code == 0);
  auto show = run_sluice({"config", "show", "good"}, dir.path());
  CHECK(has(show.out, "kill_grace_ms = "));
  CHECK(has(show.out, "100"));
  CHECK(has(show.out, "#   cpus"));
  CHECK(has(show.out, "#   spawn"));
  CHECK_FALSE(has(show.out, "not usable"));
  CHECK(has(run_sluice({"config", "show", "inproc"}, dir.path()).out, "queue_per_thread"));
}

// Issue 28 changed the second half: `sluice run --config inproc` used to be refused
// ("the inproc backend runs the C++ function tasks…"); it now runs the file's commands
// as local processes and says so.
TEST_CASE("inproc configurations are saved by sluice for SDK programs, and run as processes",
          "[integration][options]") {
  ScratchDir dir;
  write_workflow(dir);
  auto saved = run_sluice({"config", "save", "fast", "--backend", "inproc", "queue_per_thread=64"},
                          dir.path());
  INFO(saved.out << saved.err);
  CHECK(saved.exit_code == 0);
  CHECK(fs::exists(dir / ".sluice/configs/fast.toml"));
  for (const std::string config : {"inproc", "fast"}) {
    auto r = run_sluice({"run", "-q", "wf.toml", "--config", config}, dir.path());
    INFO(r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(has(r.err, "inproc runs the C++ function tasks of SDK programs"));
    CHECK(has(r.err, "backend local"));
  }
}
