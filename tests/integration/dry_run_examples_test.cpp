// `sluice run --dry-run` on every example workflow: it explains every decision, runs
// nothing, and what it predicts is exactly what the next real run does.
#include <catch2/catch.hpp>

#include <map>
#include <nlohmann/json.hpp>

#include "support/run_queries.hpp"

using nlohmann::json;
using namespace sluice::testing;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> example_workflows() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(kExamples))
    if (e.path().extension() == ".toml") out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// The dry run's plan: task name -> {action, why}.
std::map<std::string, std::pair<std::string, std::string>> plan_of(const std::string& file,
                                                                   const ScratchDir& dir) {
  auto r = run_sluice({"run", "--dry-run", "--json", file}, dir.path());
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  const json parsed = json::parse(r.out);
  std::map<std::string, std::pair<std::string, std::string>> plan;
  for (const auto& t : parsed["tasks"]) plan[t["name"]] = {t["action"], t["why"]};
  return plan;
}

std::size_t runs_in(const ScratchDir& dir) {
  auto r = run_sluice({"ps", "--all", "--json"}, dir.path());
  if (r.exit_code != 0) return 0;  // no store yet
  return json::parse(r.out).size();
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

}  // namespace

TEST_CASE("the dry run explains every decision on every example, and is right",
          "[integration][cache][examples]") {
  const auto examples = example_workflows();
  REQUIRE(examples.size() >= 5);
  for (const std::string& ex : examples) {
    SECTION(ex) {
      ScratchDir dir;
      const std::string file = kExamples + ex;

      // Nothing ran here yet: every task runs, each because it is new or its input will
      // be, and the dry run itself records nothing.
      auto first = plan_of(file, dir);
      REQUIRE(!first.empty());
      for (const auto& [name, d] : first) {
        INFO(ex << " " << name << ": " << d.second);
        CHECK(d.first == "run");
        CHECK((starts_with(d.second, "new task") ||
               starts_with(d.second, "input will be recomputed")));
      }
      CHECK(runs_in(dir) == 0);

      auto run1 = run_sluice({"run", "-q", file}, dir.path());
      INFO(ex << "\n" << run1.out << run1.err);
      REQUIRE((run1.exit_code == 0 || run1.exit_code == 1));  // retries.toml fails on purpose
      const std::string id1 = run_id_of(run1);
      const json done1 = get_json(id1, dir.path());

      // After one run: what succeeded is cached from that run (dynamic children of a
      // cached parent included: they are replayed); the rest says why not.
      auto second = plan_of(file, dir);
      CHECK(second.size() == done1["task_list"].size());
      CHECK(runs_in(dir) == 1);
      for (const auto& [name, d] : second) {
        INFO(ex << " " << name << ": " << d.first << ", " << d.second);
        REQUIRE(!d.second.empty());
        if (task_state(done1, name) == "succeeded") {
          CHECK(d.first == "cached");
          CHECK(d.second.find("cached from run " + id1) != std::string::npos);
        } else {
          CHECK(d.first == "run");
          CHECK((starts_with(d.second, "new task") ||
                 starts_with(d.second, "input will be recomputed")));
        }
      }

      // The prediction is what happens: the real rerun takes exactly those tasks from
      // the cache.
      auto run2 = run_sluice({"run", "-q", file}, dir.path());
      INFO(run2.out << run2.err);
      CHECK(run2.exit_code == run1.exit_code);
      const json done2 = get_json(run_id_of(run2), dir.path());
      for (const auto& [name, d] : second) {
        INFO(ex << " " << name << ": " << d.second);
        const json t = task_named(done2, name);
        CHECK((d.first == "cached") == !t["cached_from"].is_null());
      }

      // The same decisions in the table form.
      auto text = run_sluice({"run", "--dry-run", file}, dir.path());
      CHECK(text.exit_code == 0);
      CHECK(text.out.find("dry run: nothing was run") != std::string::npos);
      CHECK(runs_in(dir) == 2);

      // --no-cache: everything runs, and it says so.
      auto nc = run_sluice({"run", "--dry-run", "--no-cache", "--json", file}, dir.path());
      REQUIRE(nc.exit_code == 0);
      const json nc_plan = json::parse(nc.out);
      for (const auto& t : nc_plan["tasks"]) {
        CHECK(t["action"] == "run");
        CHECK(t["why"] == "cache disabled for this run (--no-cache)");
      }
    }
  }
}
