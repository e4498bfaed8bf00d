// Fixtures of the store's unit tests: a throwaway home, a workflow of N tasks, and
// connections and runs made with REQUIRE on every step.
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "sluice/engine/run_id.hpp"
#include "sluice/engine/store.hpp"
#include "support/scratch_dir.hpp"

namespace sluice::testing {

namespace fs = std::filesystem;

// A fresh Sluice home in a scratch directory, not yet created.
struct TempHome {
  ScratchDir scratch;
  fs::path path = scratch / "home";  // not made: opening the store makes it
  std::string str() const { return path.string(); }
};

inline Workflow make_workflow(const std::string& project, const std::string& name,
                              const std::string& hash, std::size_t task_count) {
  Workflow wf;
  wf.project = project;
  wf.name = name;
  wf.content_hash = hash;
  wf.source_path = "/somewhere/" + name + ".toml";
  wf.base_dir = "/somewhere";
  wf.text = "# " + name + " " + hash + "\n";
  for (std::size_t i = 0; i < task_count; ++i) {
    sluice::TaskSpec t;
    t.group = i % 2 ? "odd" : "even";
    t.name = t.group + "." + std::to_string(i);
    t.command = {"true"};
    wf.tasks.push_back(std::move(t));
    wf.index[wf.tasks.back().name] = static_cast<sluice::TaskId>(i);
  }
  return wf;
}

inline std::unique_ptr<RunStore> open_rw(const TempHome& home) {
  auto store = RunStore::open(home.str(), RunStore::Mode::kReadWrite);
  INFO((store ? "" : store.error().message));
  REQUIRE(store);
  return std::move(*store);
}

inline std::unique_ptr<RunStore> open_ro(const TempHome& home) {
  auto store = RunStore::open(home.str(), RunStore::Mode::kReadOnly);
  INFO((store ? "" : store.error().message));
  REQUIRE(store);
  return std::move(*store);
}

// Registers the workflow and creates a run of it.
inline sluice::RunRecord start_run(RunStore& store, const Workflow& wf,
                                   std::uint64_t epoch_ms = 0) {
  auto rev = store.register_workflow(wf);
  INFO((rev ? "" : rev.error().message));
  REQUIRE(rev);
  std::string id = epoch_ms ? sluice::new_run_id(epoch_ms) : sluice::new_run_id();
  auto run = store.create_run(wf, *rev, id, "local");
  INFO((run ? "" : run.error().message));
  REQUIRE(run);
  return *run;
}

template <class T>
void require_ok(const sluice::Expected<T>& e) {
  INFO((e ? "" : e.error().message));
  REQUIRE(e);
}

}  // namespace sluice::testing
