// The C++ SDK end to end: the example programs run on the inproc and local
// configurations with the same results, other processes read their runs by id, and a
// crashing function task fails only its own attempt.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support/cli_runner.hpp"

namespace {

using sluice::testing::CliResult;
using sluice::testing::ScratchDir;

// Runs PROGRAM ARGS… in `cwd` (whose .sluice is the store) and waits for it.
CliResult run_program(const std::string& program, const std::vector<std::string>& args,
                      const std::filesystem::path& cwd,
                      const std::vector<std::string>& extra_env = {}) {
  std::vector<std::string> argv{program};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e)
    if (std::string(*e).rfind("SLUICE_HOME=", 0) != 0) env_s.push_back(*e);
  env_s.insert(env_s.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> envp;
  for (auto& s : env_s) envp.push_back(s.data());
  envp.push_back(nullptr);
  return sluice::testing::run_process(argv, cwd, envp.data());
}

std::string example(const std::string& name) {
  return std::string(SDK_EXAMPLES_DIR) + "/" + name;
}

// "run ID …" on the first line of `app run`.
std::string run_id_of(const std::string& out) {
  std::istringstream in(out);
  std::string word, id;
  in >> word >> id;
  return id;
}

// The "  task = value" lines `app run` prints for the final tasks.
std::vector<std::string> result_lines(const std::string& out) {
  std::vector<std::string> lines;
  std::istringstream in(out);
  for (std::string l; std::getline(in, l);)
    if (l.rfind("  ", 0) == 0) lines.push_back(l);
  return lines;
}

}  // namespace

TEST_CASE("every SDK example gives the same results on inproc and local", "[integration][sdk]") {
  for (const std::string name : {"train_and_pick_model", "two_workers", "nested"}) {
    INFO(name);
    ScratchDir dir;
    auto inproc = run_program(example(name), {"run", "--config", "inproc"}, dir.path());
    INFO(inproc.out << inproc.err);
    REQUIRE(inproc.exit_code == 0);
    auto local = run_program(example(name), {"run", "--config", "local"}, dir.path());
    INFO(local.out << local.err);
    REQUIRE(local.exit_code == 0);
    CHECK_FALSE(result_lines(inproc.out).empty());
    CHECK(result_lines(inproc.out) == result_lines(local.out));
    // Same definition, same revision, whichever backend ran it.
    auto wfs = run_program(SLUICE_BINARY, {"workflows", "--json"}, dir.path());
    auto doc = nlohmann::json::parse(wfs.out);
    REQUIRE(doc.size() == 1);
    CHECK(doc[0]["runs"] == 2);
    CHECK(doc[0]["kind"] == "c++");
  }
}

TEST_CASE("nested workflows show up as prefixed tasks", "[integration][sdk]") {
  ScratchDir dir;
  auto r = run_program(example("nested"), {"run"}, dir.path());
  REQUIRE(r.exit_code == 0);
  CHECK(r.out.find("means = 109") != std::string::npos);         // 4.5 + 104.5
  CHECK(r.out.find("tree_sum.add = 120") != std::string::npos);  // 0 + … + 15
  auto get = run_program(SLUICE_BINARY, {"get", run_id_of(r.out)}, dir.path());
  CHECK(get.out.find("statistics.1.mean") != std::string::npos);
  CHECK(get.out.find("tree_sum.tree_sum.1.tree_sum.sum") != std::string::npos);
}

TEST_CASE("another process reads a finished run's status, results and logs by id",
          "[integration][sdk]") {
  ScratchDir dir;
  auto r = run_program(example("train_and_pick_model"), {"run", "--config", "local"}, dir.path());
  REQUIRE(r.exit_code == 0);
  const std::string id = run_id_of(r.out);
  auto read = run_program(example("read_run"), {id, "pick_best"}, dir.path(),
                          {"SLUICE_HOME=" + (dir.path() / ".sluice").string()});
  INFO(read.out << read.err);
  CHECK(read.exit_code == 0);
  CHECK(read.out.find(": succeeded") != std::string::npos);
  CHECK(read.out.find("task train_model.3 succeeded attempts=1") != std::string::npos);
  CHECK(read.out.find("result pick_best map{3}") != std::string::npos);
  CHECK(read.out.find("best of 4: learning_rate=") != std::string::npos);
  // The plain CLI reads the same run.
  auto results = run_program(SLUICE_BINARY, {"results", id, "--json"}, dir.path());
  REQUIRE(results.exit_code == 0);
  auto doc = nlohmann::json::parse(results.out);
  CHECK(doc["results"]["pick_best"]["result"]["layers"].is_number());
  auto logs = run_program(SLUICE_BINARY, {"logs", id, "pick_best"}, dir.path());
  CHECK(logs.out.find("best of 4") != std::string::npos);
}

TEST_CASE("a prepared run is executed later by another process", "[integration][sdk]") {
  ScratchDir dir;
  auto prep = run_program(example("nested"), {"prepare"}, dir.path());
  REQUIRE(prep.exit_code == 0);
  std::string id = prep.out.substr(0, prep.out.find('\n'));
  auto get = run_program(SLUICE_BINARY, {"get", id}, dir.path());
  CHECK(get.out.find("submitted") != std::string::npos);
  auto start = run_program(example("nested"), {"start", id}, dir.path());
  INFO(start.out << start.err);
  CHECK(start.exit_code == 0);
  CHECK(start.out.find("means = 109") != std::string::npos);
}

TEST_CASE("a prepared run starts later with the backend and options it was prepared with",
          "[integration][sdk]") {
  ScratchDir dir;
  auto prep =
      run_program(example("nested"), {"prepare", "--backend", "local", "--cpus", "1"}, dir.path());
  REQUIRE(prep.exit_code == 0);
  const std::string id = prep.out.substr(0, prep.out.find('\n'));
  const auto saved = dir.path() / (".sluice/runs/" + id + "/backend.json");
  auto json = nlohmann::json::parse(sluice::testing::read_file(saved));
  CHECK(json["backend"] == "local");
  CHECK(json["options"]["cpus"] == "1");

  auto save_cpus = [&](const std::string& cpus) {
    json["options"]["cpus"] = cpus;
    std::ofstream(saved) << json.dump();
  };
  // start reads what was saved: a bad value there is reported and nothing runs...
  save_cpus("x");
  auto bad = run_program(example("nested"), {"start", id}, dir.path());
  INFO(bad.out << bad.err);
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("cpus must be a number, not 'x'") != std::string::npos);
  auto get = run_program(SLUICE_BINARY, {"get", id}, dir.path());
  CHECK(get.out.find("submitted") != std::string::npos);

  // ...and a good one is used.
  save_cpus("1");
  auto start = run_program(example("nested"), {"start", id}, dir.path());
  INFO(start.out << start.err);
  CHECK(start.exit_code == 0);
  CHECK(start.out.find("means = 109") != std::string::npos);
}

TEST_CASE("a segfaulting function fails only its attempt under local", "[integration][sdk]") {
  ScratchDir dir;
  auto r = run_program(SDK_CRASH_APP, {"run", "--config", "local"}, dir.path());
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);  // the run failed; the coordinator did not crash
  const std::string id = run_id_of(r.out);
  auto get = run_program(SLUICE_BINARY, {"get", id, "--json"}, dir.path());
  auto doc = nlohmann::json::parse(get.out);
  std::map<std::string, nlohmann::json> tasks;
  for (const auto& t : doc["task_list"]) tasks[t["name"]] = t;
  CHECK(tasks["fine"]["state"] == "succeeded");
  CHECK(tasks["after_fine"]["state"] == "succeeded");
  CHECK(tasks["segv"]["state"] == "failed");
#if defined(__SANITIZE_ADDRESS__)
  // Under AddressSanitizer the SIGSEGV becomes ASan's report and exit status 1.
  CHECK(!tasks["segv"]["reason"].get<std::string>().empty());
#else
  CHECK(tasks["segv"]["reason"].get<std::string>().find("signal 11") != std::string::npos);
#endif
  CHECK(tasks["abort"]["state"] == "failed");
  CHECK(tasks["throws"]["state"] == "failed");
  CHECK(tasks["throws"]["attempts"] == 2);
  auto logs = run_program(SLUICE_BINARY, {"logs", id, "throws"}, dir.path());
  CHECK(logs.err.find("this task always fails") != std::string::npos);
  auto results = run_program(SLUICE_BINARY, {"results", id, "after_fine"}, dir.path());
  CHECK(results.out.find("41") != std::string::npos);
}

TEST_CASE("what a function writes to sluice::log() is its task's log on inproc and local",
          "[integration][sdk][logs]") {
  for (const std::string config : {"inproc", "local"}) {
    INFO(config);
    ScratchDir dir;
    auto r =
        run_program(SDK_CRASH_APP, {"run", "--config", config}, dir.path(), {"CRASH_APP_SAFE=1"});
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 1);  // `throws` fails
    const std::string id = run_id_of(r.out);
    auto logs = run_program(SLUICE_BINARY, {"logs", id, "fine"}, dir.path());
    INFO(logs.err);
    CHECK(logs.exit_code == 0);
    CHECK(logs.out == "fine got 20\n");
    CHECK(r.out.find("fine got") == std::string::npos);  // not on the coordinator's stdout
    auto failed = run_program(SLUICE_BINARY, {"logs", id, "throws"}, dir.path());
    CHECK(failed.err.find("this task always fails") != std::string::npos);
  }
}

TEST_CASE("an unchanged SDK run on inproc comes from the cache", "[integration][sdk][cache]") {
  ScratchDir dir;
  auto first =
      run_program(SDK_CRASH_APP, {"run", "--config", "inproc"}, dir.path(), {"CRASH_APP_SAFE=1"});
  REQUIRE(first.exit_code == 1);
  auto second =
      run_program(SDK_CRASH_APP, {"run", "--config", "inproc"}, dir.path(), {"CRASH_APP_SAFE=1"});
  INFO(second.out << second.err);
  REQUIRE(second.exit_code == 1);
  CHECK(second.err.find("warning") == std::string::npos);
  const std::string id = run_id_of(second.out);
  auto get = run_program(SLUICE_BINARY, {"get", id, "--json"}, dir.path());
  auto doc = nlohmann::json::parse(get.out);
  std::map<std::string, nlohmann::json> tasks;
  for (const auto& t : doc["task_list"]) tasks[t["name"]] = t;
  CHECK(tasks["fine"]["cached_from"].is_string());
  CHECK(tasks["after_fine"]["cached_from"].is_string());
  CHECK(tasks["throws"]["cached_from"].is_null());  // failures are never cached
  auto results = run_program(SLUICE_BINARY, {"results", id, "after_fine"}, dir.path());
  CHECK(results.out.find("41") != std::string::npos);
  // A cached task did not run again: its log is the earlier attempt's, not a new one.
  // (Issue 28: `logs` now prints that earlier output, labelled with where it came from,
  // so "no new log" is checked on the run's own attempt directory.)
  CHECK_FALSE(
      std::filesystem::exists(dir.path() / (".sluice/runs/" + id + "/tasks/fine/1/stdout")));
  auto logs = run_program(SLUICE_BINARY, {"logs", id, "fine"}, dir.path());
  CHECK(logs.err.find("cached from run " + run_id_of(first.out)) != std::string::npos);
}

TEST_CASE("a function result changed on disk after its run is not reused from the cache",
          "[integration][sdk][cache]") {
  ScratchDir dir;
  auto first =
      run_program(SDK_CRASH_APP, {"run", "--config", "inproc"}, dir.path(), {"CRASH_APP_SAFE=1"});
  REQUIRE(first.exit_code == 1);
  // The result hash was filed from the value the function returned; the store now holds
  // another value (a valid one, so only the content hash can tell). Returned values are
  // packed in the store, not a file of their own (docs/artifacts.md).
  REQUIRE_FALSE(std::filesystem::exists(
      dir.path() / (".sluice/runs/" + run_id_of(first.out) + "/tasks/fine/1/output.h5")));
  const std::string sql =
      "UPDATE task_values SET bytes = X'026300000000000000' WHERE key = 'result' AND task = "
      "(SELECT idx FROM tasks WHERE name = 'fine')";
  const std::string cmd =
      "sqlite3 '" + (dir.path() / ".sluice/store.db").string() + "' \"" + sql + "\"";
  REQUIRE(std::system(cmd.c_str()) == 0);
  auto second =
      run_program(SDK_CRASH_APP, {"run", "--config", "inproc"}, dir.path(), {"CRASH_APP_SAFE=1"});
  INFO(second.out << second.err);
  REQUIRE(second.exit_code == 1);
  CHECK(second.err.find("cache entry for task 'fine'") != std::string::npos);
  auto get = run_program(SLUICE_BINARY, {"get", run_id_of(second.out), "--json"}, dir.path());
  INFO(get.out);
  const auto doc = nlohmann::json::parse(get.out);
  std::map<std::string, nlohmann::json> tasks;
  for (const auto& t : doc["task_list"]) tasks[t["name"]] = t;
  CHECK(tasks["fine"]["cached_from"].is_null());          // ran again
  CHECK(tasks["after_fine"]["cached_from"].is_string());  // same value as before: cached
}

TEST_CASE("an SDK program submits its workflow and another process waits for it",
          "[integration][sdk][submit]") {
  ScratchDir dir;
  auto fg = run_program(example("nested"), {"run", "--config", "inproc"}, dir.path());
  REQUIRE(fg.exit_code == 0);
  auto sub = run_program(example("nested"), {"submit", "nested", "--config", "local"}, dir.path());
  INFO(sub.out << sub.err);
  REQUIRE(sub.exit_code == 0);
  const std::string id = sub.out.substr(0, sub.out.find('\n'));
  auto wait = run_program(SLUICE_BINARY, {"wait", id, "--timeout", "120"}, dir.path());
  INFO(wait.out << wait.err);
  CHECK(wait.exit_code == 0);
  auto a = run_program(SLUICE_BINARY, {"results", run_id_of(fg.out), "--json"}, dir.path());
  auto b = run_program(SLUICE_BINARY, {"results", id, "--json"}, dir.path());
  CHECK(nlohmann::json::parse(a.out)["results"] == nlohmann::json::parse(b.out)["results"]);

  auto wrong = run_program(example("nested"), {"submit", "other_flow"}, dir.path());
  CHECK(wrong.exit_code == 2);
  auto unknown = run_program(example("nested"), {"submit", "--config", "no-such"}, dir.path());
  CHECK(unknown.exit_code == 2);
}

TEST_CASE("an SDK program refuses a configuration with an unknown or malformed option",
          "[integration][sdk][options]") {
  ScratchDir dir;
  std::filesystem::create_directories(dir / ".sluice/configs");
  sluice::testing::write_file(dir / ".sluice/configs/typo.toml",
                              "backend = \"local\"\nbogus = \"1\"\n");
  sluice::testing::write_file(dir / ".sluice/configs/slow.toml",
                              "backend = \"inproc\"\nqueue_per_thread = \"lots\"\n");
  for (const std::string verb : {"run", "prepare", "submit"}) {
    auto typo = run_program(example("nested"), {verb, "--config", "typo"}, dir.path());
    INFO(verb << ": " << typo.out << typo.err);
    CHECK(typo.exit_code == 2);
    CHECK(typo.err.find("configuration 'typo': unknown option 'bogus' for backend local") !=
          std::string::npos);
    CHECK(typo.err.find("kill_grace_ms") != std::string::npos);
    auto slow = run_program(example("nested"), {verb, "--config", "slow"}, dir.path());
    INFO(slow.out << slow.err);
    CHECK(slow.exit_code == 2);
    CHECK(slow.err.find("queue_per_thread=lots for backend inproc") != std::string::npos);
  }
  CHECK_FALSE(std::filesystem::exists(dir / ".sluice/store.db"));
}

TEST_CASE("sluice::main turns an SDK error's code into its exit status", "[integration][sdk]") {
  ScratchDir dir;
  REQUIRE(run_program(example("nested"), {"prepare"}, dir.path()).exit_code == 0);
  // kNotFound (the caller can fix it): 2.
  auto start = run_program(example("nested"), {"start", "zzzznotarun"}, dir.path());
  INFO(start.out << start.err);
  CHECK(start.exit_code == 2);
  CHECK(start.err.find("no run matches 'zzzznotarun'") != std::string::npos);
  // A program of its own catches the same sluice::Error.
  auto read = run_program(example("read_run"), {"zzzznotarun"}, dir.path(),
                          {"SLUICE_HOME=" + (dir.path() / ".sluice").string()});
  INFO(read.out << read.err);
  CHECK(read.exit_code == 2);
  CHECK(read.err.find("read_run: ") != std::string::npos);
  // kIo (a home that cannot be made): 3.
  std::ofstream(dir.path() / "a-file") << "not a directory";
  auto prep =
      run_program(example("nested"),
                  {"prepare", "--home", (dir.path() / "a-file" / "home").string()}, dir.path());
  INFO(prep.out << prep.err);
  CHECK(prep.exit_code == 3);
}

TEST_CASE("a prepared run shows as prepared, not orphaned", "[integration][sdk]") {
  ScratchDir dir;
  auto prep = run_program(example("nested"), {"prepare"}, dir.path());
  REQUIRE(prep.exit_code == 0);
  const std::string id = prep.out.substr(0, prep.out.find('\n'));
  auto get = run_program(SLUICE_BINARY, {"get", id}, dir.path());
  INFO(get.out << get.err);
  CHECK(get.out.find("prepared") != std::string::npos);
  CHECK(get.out.find("orphaned") == std::string::npos);  // was "submitted (orphaned)"
  auto psw = run_program(SLUICE_BINARY, {"psw"}, dir.path());
  CHECK(psw.out.find("orphaned") == std::string::npos);
}

TEST_CASE("start --backend local records local in get, ps and backend.json", "[integration][sdk]") {
  ScratchDir dir;
  auto prep = run_program(example("nested"), {"prepare", "--config", "inproc"}, dir.path());
  REQUIRE(prep.exit_code == 0);
  const std::string id = prep.out.substr(0, prep.out.find('\n'));
  auto start = run_program(example("nested"), {"start", id, "--backend", "local"}, dir.path());
  INFO(start.out << start.err);
  REQUIRE(start.exit_code == 0);
  auto get = run_program(SLUICE_BINARY, {"get", id, "--json"}, dir.path());
  CHECK(nlohmann::json::parse(get.out)["backend"] == "local");  // was "inproc"
  auto ps = run_program(SLUICE_BINARY, {"ps", "--all", "--json"}, dir.path());
  CHECK(nlohmann::json::parse(ps.out)[0]["backend"] == "local");
  auto saved = nlohmann::json::parse(
      sluice::testing::read_file(dir.path() / (".sluice/runs/" + id + "/backend.json")));
  CHECK(saved["backend"] == "local");
}
