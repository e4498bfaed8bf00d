// The SDK's one error type at its edge: every SDK call that fails throws sluice::Error
// with the code that says why (error.hpp), and catching std::exception still catches it.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "local_backend.hpp"
#include "sluice/config.hpp"
#include "sluice/engine/child_request.hpp"
#include "sluice/flow.hpp"
#include "sluice/workflow_run.hpp"
#include "support/scratch_dir.hpp"

namespace {

using sluice::Error;
using sluice::ErrorCode;

using sluice::testing::ScratchDir;

double twice(double x) {
  return 2 * x;
}
const auto twice_t = sluice::task("twice", "1", &twice);

// The code of the sluice::Error that `f` throws; fails the test if it throws nothing or
// something else.
template <class F>
ErrorCode code_thrown(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    CHECK_FALSE(std::string(e.what()).empty());
    return e.code;
  } catch (const std::exception& e) {
    FAIL("threw a std::exception that is not a sluice::Error: " << e.what());
  }
  FAIL("threw nothing");
  return ErrorCode::kInvalidInput;
}

sluice::RunOptions in(const ScratchDir& home) {
  sluice::RunOptions o;
  o.home = home.path().string();
  return o;
}

}  // namespace

TEST_CASE("an Error is a std::exception whose what() is its message", "[sdk][error]") {
  const Error e(ErrorCode::kNotFound, "no run matches 'x'");
  CHECK(std::string(e.what()) == "no run matches 'x'");
  CHECK_THROWS_WITH(throw Error(ErrorCode::kConflict, "busy"), "busy");
  try {
    throw Error(ErrorCode::kIo, "disk full");
  } catch (const std::exception& x) {
    CHECK(std::string(x.what()) == "disk full");
    CHECK(dynamic_cast<const Error&>(x).code == ErrorCode::kIo);
  }
  // Inside, the same type is the error of an Expected, built from a code and a message.
  sluice::Expected<int> failed = sluice::make_error(ErrorCode::kStore, "locked");
  REQUIRE_FALSE(failed);
  CHECK(failed.error().code == ErrorCode::kStore);
  CHECK(failed.error().message == "locked");
  CHECK(Error{}.code == ErrorCode::kInvalidInput);
}

TEST_CASE("a Flow refuses bad names and arguments with kInvalidInput", "[sdk][error]") {
  CHECK(code_thrown([] { sluice::Flow("bad name"); }) == ErrorCode::kInvalidInput);
  CHECK(code_thrown([] { sluice::Flow("ok", "bad/project"); }) == ErrorCode::kInvalidInput);
  sluice::Flow flow("errors", "tests");
  CHECK(code_thrown([&] { flow.call(sluice::opts{.name = "no spaces"}, twice_t, 1.0); }) ==
        ErrorCode::kInvalidInput);
  CHECK(code_thrown([&] { flow.call(sluice::opts{.cpus = -1}, twice_t, 1.0); }) ==
        ErrorCode::kInvalidInput);
  sluice::Flow other("other", "tests");
  auto theirs = other.call(twice_t, 1.0);
  CHECK(code_thrown([&] { flow.call(twice_t, theirs); }) == ErrorCode::kInvalidInput);
  CHECK(code_thrown([&] { flow.call(sluice::opts{.after = {theirs.task()}}, twice_t, 1.0); }) ==
        ErrorCode::kInvalidInput);
  CHECK(flow.size() == 0);  // nothing half-added
  // The same failure caught as a std::exception.
  CHECK_THROWS_AS(sluice::Flow("bad name"), std::exception);
}

TEST_CASE("Config::load of a missing or malformed configuration throws its code", "[sdk][error]") {
  ScratchDir home;
  const std::string h = home.path().string();
  CHECK(code_thrown([&] { sluice::Config::load("nosuch", h); }) == ErrorCode::kNotFound);
  std::filesystem::create_directories(home.path() / "configs");
  std::ofstream(home.path() / "configs" / "broken.toml") << "backend = [unclosed\n";
  CHECK(code_thrown([&] { sluice::Config::load("broken", h); }) == ErrorCode::kInvalidInput);
  CHECK_THROWS_WITH(sluice::Config::load("nosuch", h), Catch::Contains("no configuration"));
}

TEST_CASE("a codec's type mismatch throws kInvalidInput", "[sdk][error]") {
  using sluice::Value;
  CHECK(code_thrown([] { sluice::from_value<int>(Value("seven")); }) == ErrorCode::kInvalidInput);
  CHECK(code_thrown([] { sluice::from_value<std::string>(Value(7)); }) == ErrorCode::kInvalidInput);
  CHECK(code_thrown([] { sluice::from_value<std::vector<std::string>>(Value(7)); }) ==
        ErrorCode::kInvalidInput);
  CHECK_THROWS_WITH(Value("x").get<std::int64_t>(), "a Value of type string, not int64");
  CHECK_THROWS_WITH(Value().get<sluice::Map>(), "a Value of type null, not map");
  const sluice::NdArray doubles(std::vector<double>{1, 2});
  CHECK_THROWS_WITH(doubles.values<float>(), "an array of float64, not of float32");
  CHECK(doubles.values<double>()[1] == 2.0);
  CHECK(code_thrown([] {
          sluice::NdArray(std::vector<double>{1, 2, 3}, {2, 2});
        }) == ErrorCode::kInvalidInput);
  // A mismatch inside a task fails its attempt with the message (kBackend, the function
  // threw), and the wrong number of arguments is refused by the invoker.
  const sluice::FunctionInfo* f = sluice::find_function(twice_t.key());
  REQUIRE(f);
  sluice::TaskContext ctx;
  std::vector<Value> wrong_type{Value("x")};
  auto r = sluice::invoke_function(*f, ctx, wrong_type);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::kBackend);
  CHECK(r.error().message == "twice@1: a Value of type string, not float64");
  std::vector<Value> two{Value(1.0), Value(2.0)};
  CHECK(code_thrown([&] { f->invoke(ctx, two); }) == ErrorCode::kInvalidInput);
}

TEST_CASE("TaskContext::add_child throws kIo when the request cannot be written", "[sdk][error]") {
  ScratchDir dir;
  const auto blocker = dir.path() / "a-file";
  std::ofstream(blocker) << "not a directory";
  sluice::TaskContext ctx;
  ctx.attempt_dir = (blocker / "attempt").string();
  sluice::ChildRequest child;
  child.spec.name = "c";
  CHECK(code_thrown([&] { ctx.add_child(child); }) == ErrorCode::kIo);
}

TEST_CASE("WorkflowRun throws kNotFound for an unknown run or task, kConflict too early",
          "[sdk][error]") {
  ScratchDir home;
  const std::string h = home.path().string();
  sluice::Flow flow("errors", "tests");
  flow.call(twice_t, 1.0);
  auto run = sluice::WorkflowRun::prepare(flow, sluice::Config{"local", "local", {}}, in(home));
  CHECK(code_thrown([&] { sluice::WorkflowRun::by_id("zzzznotarun", h); }) == ErrorCode::kNotFound);
  CHECK(code_thrown([&] { sluice::WorkflowRun::by_id("", h); }) == ErrorCode::kInvalidInput);
  auto again = sluice::WorkflowRun::by_id(run.id(), h);
  CHECK(code_thrown([&] { again.get_result("nosuchtask"); }) == ErrorCode::kNotFound);
  CHECK(code_thrown([&] { again.logs("nosuchtask"); }) == ErrorCode::kNotFound);
  CHECK(code_thrown([&] { again.artifact("nosuchtask"); }) == ErrorCode::kNotFound);
  // Prepared, not run: the task has no result yet, the run is not over.
  CHECK(code_thrown([&] { again.get_result("twice"); }) == ErrorCode::kConflict);
  CHECK(code_thrown([&] { again.get_results(false); }) == ErrorCode::kConflict);
  CHECK_THROWS_WITH(again.get_result("nosuchtask"),
                    "run " + run.id() + " has no task 'nosuchtask'");
  // Caught by callers that know only std::exception.
  CHECK_THROWS_AS(sluice::WorkflowRun::by_id("zzzznotarun", h), std::exception);
}

TEST_CASE("WorkflowRun::run refuses a task no slot can hold with kInvalidInput", "[sdk][error]") {
  sluice::register_local_backend();
  ScratchDir home;
  sluice::Flow flow("too_big", "tests");
  flow.call(sluice::opts{.cpus = 4}, twice_t, 1.0);
  auto run = sluice::WorkflowRun::prepare(
      flow, sluice::Config{"tiny", "local", {{"cpus", "1"}, {"gpus", "0"}}}, in(home));
  CHECK(code_thrown([&] { run.run(); }) == ErrorCode::kInvalidInput);
  // A configuration with a malformed option.
  auto bad =
      sluice::WorkflowRun::prepare(flow, sluice::Config{"bad", "local", {{"cpus", "x"}}}, in(home));
  CHECK(code_thrown([&] { bad.run(); }) == ErrorCode::kInvalidInput);
}
