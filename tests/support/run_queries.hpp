// Reading what a run did through the real CLI, for integration tests: its id from
// `sluice run`'s first line, `sluice get --json`, `sluice results --json`.
#pragma once

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <string>

#include "support/cli_runner.hpp"

namespace sluice::testing {

inline const std::string kExamples = std::string(SLUICE_SOURCE_DIR) + "/examples/";

// `sluice run` prints "run ID project:workflow:rev (…)" first.
inline std::string run_id_of(const CliResult& r) {
  REQUIRE(r.out.rfind("run ", 0) == 0);
  return r.out.substr(4, 26);
}

// The run id from the stdout file of a `sluice run` started in the background.
inline std::string wait_for_run_id(const std::filesystem::path& out) {
  std::string id;
  eventually([&] {
    auto text = read_file(out);
    if (text.size() < 30) return false;
    id = text.substr(4, 26);
    return true;
  });
  REQUIRE(id.size() == 26);
  return id;
}

inline nlohmann::json get_json(const std::string& id, const std::filesystem::path& cwd) {
  auto r = run_sluice({"get", id, "--json"}, cwd);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  return nlohmann::json::parse(r.out);
}

inline nlohmann::json results_json(const std::string& id, const std::filesystem::path& cwd) {
  auto r = run_sluice({"results", id, "--json"}, cwd);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  return nlohmann::json::parse(r.out);
}

// One task's entry in `sluice get --json`; fails the test when absent.
inline nlohmann::json task_named(const nlohmann::json& run, const std::string& name) {
  for (const auto& t : run["task_list"])
    if (t["name"] == name) return t;
  FAIL("no task " << name);
  return {};
}

inline std::string task_state(const nlohmann::json& run, const std::string& name) {
  for (const auto& t : run["task_list"])
    if (t["name"] == name) return t["state"];
  return "?";
}

}  // namespace sluice::testing
