// The pieces behind `sluice run`'s progress line, `sluice watch`, `graph` and `report`
// that need no run: ETA, timeline lanes, escaping, folding.
#include <catch2/catch.hpp>

#include "graph_view.hpp"
#include "progress.hpp"
#include "report_data.hpp"
#include "report_html.hpp"

using namespace sluice;
using namespace sluice::cli;

TEST_CASE("the ETA waits for a rate, then follows the recent rate", "[unit][progress]") {
  EtaEstimator eta(10.0);
  eta.sample(0.0, 0, 1000);
  CHECK_FALSE(eta.eta_s());  // one sample: no rate
  eta.sample(0.5, 0, 1000);
  CHECK_FALSE(eta.eta_s());  // nothing finished yet
  // A slow start (20 s for 10 tasks), then a uniform 10 tasks per second.
  eta.sample(20.0, 10, 1000);
  for (int s = 21; s <= 60; ++s) eta.sample(s, 10 + static_cast<std::size_t>(s - 20) * 10, 1000);
  REQUIRE(eta.rate());
  CHECK(*eta.rate() == Approx(10.0));
  // 410 done at t=60: 590 left at 10/s. Since-start averaging would say ~80 s.
  CHECK(*eta.eta_s() == Approx(59.0));
}

TEST_CASE("the progress line shows an ETA only when given one", "[unit][progress]") {
  StateCounts c{};
  c[static_cast<int>(TaskState::kSucceeded)] = 3;
  c[static_cast<int>(TaskState::kRunning)] = 1;
  c[static_cast<int>(TaskState::kWaiting)] = 6;
  const std::string line = format_progress(c, 2.0, std::nullopt);
  CHECK(line.find("3/10 done: 3 succeeded") != std::string::npos);
  CHECK(line.find("1 running") != std::string::npos);
  CHECK(line.find("eta") == std::string::npos);
  CHECK(format_progress(c, 2.0, 42.0).find("| eta 42s") != std::string::npos);
}

TEST_CASE("timeline lanes reuse the lowest free slot of each host", "[unit][report]") {
  //   host 0: [0,10) [5,15) [10,20) [12,13)    host 1: [0,100)
  std::vector<LaneInterval> iv = {{0, 10, 0}, {5, 15, 0}, {10, 20, 0}, {12, 13, 0}, {0, 100, 1}};
  std::vector<std::uint32_t> per_host;
  auto slot = assign_slots(iv, per_host);
  CHECK(slot == std::vector<std::uint32_t>{0, 1, 0, 2, 0});
  CHECK(per_host == std::vector<std::uint32_t>{3, 1});
}

TEST_CASE("nothing from a run reaches the report as markup", "[unit][report]") {
  CHECK(html_escape("<a href='x'>&\"</a>") == "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
  nlohmann::json d = {{"s", "</script><script>alert(1)</script>&"}};
  const std::string text = json_for_script(d);
  CHECK(text.find('<') == std::string::npos);
  CHECK(text.find('>') == std::string::npos);
  CHECK(text.find('&') == std::string::npos);
  CHECK(nlohmann::json::parse(text) == d);
  nlohmann::json page = {{"run", {{"id", "R<1>"}, {"workflow", "p:w:1"}}}};
  CHECK(render_report_html(page).find("<title>Sluice run R&lt;1&gt;") != std::string::npos);
}

TEST_CASE("a large matrix group folds into one node with counts per state", "[unit][graph]") {
  //   prep -> train.0 … train.19 -> pick
  RunView v;
  v.run = RunRecord{};
  auto add = [&](std::string name, std::string group, TaskState s, std::vector<TaskId> after) {
    TaskRecord r;
    r.index = static_cast<TaskId>(v.tasks.size());
    r.name = std::move(name);
    r.group = std::move(group);
    r.state = s;
    v.tasks.push_back(r);
    v.parents.push_back(std::move(after));
  };
  add("prep", "prep", TaskState::kSucceeded, {});
  std::vector<TaskId> trains;
  for (int i = 0; i < 20; ++i) {
    trains.push_back(static_cast<TaskId>(v.tasks.size()));
    add("train." + std::to_string(i), "train", i == 3 ? TaskState::kFailed : TaskState::kSucceeded,
        {0});
  }
  add("pick", "pick", TaskState::kSkipped, trains);
  auto g = fold_graph(v, 12, false);
  REQUIRE(g.nodes.size() == 3);
  CHECK(g.nodes[1].label == "train \u00d720: 19 succeeded, 1 failed");
  CHECK(g.nodes[1].state_class == "failed");
  CHECK(g.edges.size() == 2);
  auto full = fold_graph(v, 12, true);
  CHECK(full.nodes.size() == 22);
  CHECK(full.edges.size() == 40);
  CHECK(render_mermaid(g).find("classDef failed") != std::string::npos);
}
