// Backend options tables (sluice/engine/backend_options.hpp): how keys and values are
// checked, and that configurations and create_backend() refuse what a table does not
// list, before any backend is made.
#include <catch2/catch.hpp>

#include <filesystem>
#include <random>

#include "local_backend.hpp"
#include "sluice/config.hpp"
#include "sluice/engine/backend_options.hpp"
#include "sluice/engine/backend_registry.hpp"

using namespace sluice;

namespace {

const OptionTable kTable = {
    {"grace_ms", "2000", "ms before SIGKILL", check_count(0, 10'000)},
    {"interval", "1s", "how often", check_duration()},
    {"arrays", "on", "job arrays", check_one_of({"on", "off"})},
    {"executor.*", "", "partition per executor label", {}},
    {"sbatch", "", "free-form", {}},
};

std::string message(const Expected<void>& r) {
  return r ? std::string() : r.error().message;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("an options table accepts its keys with values its checks take", "[options]") {
  CHECK(check_options("b", kTable, {}));
  CHECK(check_options("b", kTable,
                      {{"grace_ms", "0"},
                       {"interval", "500ms"},
                       {"arrays", "off"},
                       {"executor.gpu", "gpuq"},
                       {"sbatch", "--exclusive --mem=4G"}}));
}

TEST_CASE("an unknown key is refused with every valid key and its doc", "[options]") {
  auto r = check_options("local", kTable, {{"grace_ms", "1"}, {"bogus", "1"}});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::kInvalidInput);
  const std::string m = message(r);
  CHECK(contains(m, "unknown option 'bogus' for backend local; valid keys:"));
  for (const char* line : {"grace_ms", "ms before SIGKILL (default: 2000)", "interval", "arrays",
                           "executor.*", "sbatch"})
    CHECK(contains(m, line));
  // A pattern needs something after its prefix; a near miss is not a match.
  CHECK_FALSE(check_options("b", kTable, {{"executor.", "q"}}));
  CHECK_FALSE(check_options("b", kTable, {{"executor", "q"}}));
  CHECK_FALSE(check_options("b", kTable, {{"Grace_ms", "1"}}));
}

TEST_CASE("a malformed value is refused naming the key, the value and why", "[options]") {
  auto count = check_options("b", kTable, {{"grace_ms", "abc"}});
  CHECK(contains(message(count), "option grace_ms=abc for backend b: not a whole number"));
  CHECK(contains(message(count), "ms before SIGKILL"));
  CHECK_FALSE(check_options("b", kTable, {{"grace_ms", "12x"}}));
  CHECK_FALSE(check_options("b", kTable, {{"grace_ms", ""}}));
  CHECK_FALSE(check_options("b", kTable, {{"grace_ms", "-1"}}));
  CHECK_FALSE(check_options("b", kTable, {{"grace_ms", "10001"}}));
  CHECK_FALSE(check_options("b", kTable, {{"grace_ms", "99999999999999999999999"}}));
  CHECK(contains(message(check_options("b", kTable, {{"interval", "soon"}})), "not a duration"));
  CHECK_FALSE(check_options("b", kTable, {{"interval", "0s"}}));
  CHECK(contains(message(check_options("b", kTable, {{"arrays", "yes"}})), "use on or off"));
}

TEST_CASE("integers parse whole or not at all", "[options]") {
  CHECK(parse_option_int("42") == 42);
  CHECK(parse_option_int("-1") == -1);
  CHECK_FALSE(parse_option_int(""));
  CHECK_FALSE(parse_option_int(" 1"));
  CHECK_FALSE(parse_option_int("1.5"));
  CHECK_FALSE(parse_option_int("0x10"));
}

TEST_CASE("merged tables keep the first entry of a key, the common keys come first", "[options]") {
  OptionTable merged =
      merge_option_tables(kTable, {{"grace_ms", "9", "other", {}}, {"new", "", "", {}}});
  REQUIRE(merged.size() == kTable.size() + 1);
  CHECK(find_option(merged, "grace_ms")->default_value == "2000");
  CHECK(find_option(merged, "new") != nullptr);
  CHECK(find_option(merged, "executor.cpu")->key == "executor.*");

  register_backend(
      "options-test",
      [](const BackendOptions&) -> Expected<std::unique_ptr<Backend>> {
        return make_error(ErrorCode::kBackend, "not made in this test");
      },
      kTable);
  auto table = backend_option_table("options-test");
  REQUIRE(table);
  REQUIRE(table->size() == kTable.size() + 3);
  CHECK((*table)[0].key == "cpus");
  CHECK((*table)[1].key == "gpus");
  CHECK((*table)[2].key == "executors");
  CHECK(backend_option_table("no-such-backend").error().code == ErrorCode::kNotFound);
}

TEST_CASE("create_backend refuses options outside the table without calling the factory",
          "[options]") {
  int made = 0;
  register_backend("counted",
                   [&](const BackendOptions&) -> Expected<std::unique_ptr<Backend>> {
                     ++made;
                     return make_error(ErrorCode::kBackend, "counted");
                   },
                   {{"depth", "1", "queue depth", check_count(1, 8)}});
  BackendOptions bad;
  bad.extra["bogus"] = "1";
  auto r = create_backend("counted", bad);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::kInvalidInput);
  CHECK(contains(r.error().message, "unknown option 'bogus' for backend counted"));
  CHECK(contains(r.error().message, "depth"));
  bad.extra = {{"depth", "9"}};
  CHECK_FALSE(create_backend("counted", bad));
  CHECK(made == 0);
  BackendOptions good;
  good.cpus = 2;
  good.executors = {"cpu"};
  good.extra = {{"depth", "3"}};
  CHECK(create_backend("counted", good).error().code == ErrorCode::kBackend);
  CHECK(made == 1);
}

TEST_CASE("option strings parse into BackendOptions and back", "[options][config]") {
  auto o = parse_backend_options(
      {{"cpus", "3"}, {"gpus", "-1"}, {"executors", "cpu,,gpu"}, {"kill_grace_ms", "5"}});
  REQUIRE(o);
  CHECK(o->cpus == 3);
  CHECK(o->gpus == -1);
  CHECK(o->executors == std::vector<std::string>{"cpu", "gpu"});
  CHECK(o->extra == std::map<std::string, std::string>{{"kill_grace_ms", "5"}});
  CHECK(option_strings(*o) == std::map<std::string, std::string>{
                                  {"cpus", "3"}, {"executors", "cpu,gpu"}, {"kill_grace_ms", "5"}});
  CHECK_FALSE(parse_backend_options({{"cpus", "abc"}}));
  CHECK_FALSE(parse_backend_options({{"cpus", "3x"}}));
  CHECK_FALSE(parse_backend_options({{"gpus", "-2"}}));
}

TEST_CASE("a configuration with a key its backend does not list is refused when used",
          "[options][config]") {
  register_local_backend();
  Config ok{"fine", "local", {{"cpus", "2"}, {"kill_grace_ms", "100"}, {"spawn", "posix"}}};
  CHECK(ok.backend_options());
  Config typo{"typo", "local", {{"kill_grace", "100"}}};
  auto r = typo.backend_options();
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::kInvalidInput);
  CHECK(contains(r.error().message,
                 "configuration 'typo': unknown option 'kill_grace' for backend local"));
  CHECK(contains(r.error().message, "kill_grace_ms"));
  Config malformed{"m", "local", {{"cpus", "abc"}}};
  CHECK(contains(malformed.backend_options().error().message, "cpus=abc"));
  // A backend this program lacks is reported when it is made, not here.
  Config elsewhere{"e", "no-such-backend", {{"anything", "1"}}};
  CHECK(elsewhere.backend_options());
}

TEST_CASE("the home and the configuration directory are resolved in one place", "[config]") {
  const std::string dir = "/tmp/sluice-options-test-" + std::to_string(std::random_device{}());
  CHECK(sluice_home(dir + "/a/../b") == dir + "/b");
  CHECK(config_dir(dir) == dir + "/configs");
  CHECK(std::filesystem::path(sluice_home("rel")).is_absolute());
  CHECK(is_config_name("gpu-nodes_2.big"));
  CHECK_FALSE(is_config_name(""));
  CHECK_FALSE(is_config_name(".hidden"));
  CHECK_FALSE(is_config_name("../etc"));
  CHECK_FALSE(is_config_name("a b"));
}
