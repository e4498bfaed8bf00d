// Seeing a run: `sluice graph`, `sluice report` (rendered in headless Chromium when it
// is installed) and `sluice watch`, on real runs of the real binary.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>

#include "support/run_queries.hpp"
#include "support/skip.hpp"

using nlohmann::json;
using namespace sluice::testing;
namespace fs = std::filesystem;

namespace {

// A sweep of `n` matrix instances of `train` (instance 7 fails when `fail_seven`), then `pick`.
std::string sweep_workflow(int n, bool fail_seven) {
  std::ostringstream s;
  s << "[workflow]\nname = \"big_sweep\"\n[tasks.train]\nmatrix = { i = [";
  for (int i = 0; i < n; ++i) s << (i ? "," : "") << i;
  s << "] }\nshell = \"" << (fail_seven ? "test {i} -ne 7" : "true") << "\"\n";
  s << "[tasks.pick]\nafter = [\"train\"]\nshell = \"echo picked\"\n";
  return s.str();
}

//   fetch_a   fetch_b
//        \     /
//         merge       bad (fails twice; its stderr holds markup)
constexpr const char* kDiamondWithFailure = R"(
[workflow]
name = "diamond_fail"
project = "report"
[tasks.fetch_a]
shell = "sluice put value 10"
[tasks.fetch_b]
shell = "sluice put value 20"
[tasks.merge]
after = ["fetch_a", "fetch_b"]
shell = "echo merged"
[tasks.bad]
retries = 1
shell = 'echo "<script>alert(1)</script> & friends" >&2; exit 4'
)";

std::string find_chromium() {
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
    std::string cmd = std::string("command -v ") + name + " >/dev/null 2>&1";
    if (std::system(cmd.c_str()) == 0) return name;
  }
  return "";
}

// Runs headless Chromium on `page`: writes a screenshot and returns the DOM after scripts ran.
std::string chromium_dom(const std::string& chromium, const fs::path& page, const fs::path& png,
                         const fs::path& scratch) {
  const std::string common = "timeout 120 " + chromium +
                             " --headless --no-sandbox --disable-gpu --disable-background-networking"
                             " --disable-component-update --disable-sync --no-first-run"
                             " --user-data-dir=" + (scratch / "profile").string() +
                             " --window-size=1400,1000 ";
  const std::string url = "file://" + page.string();
  const auto dom = scratch / "dom.html";
  REQUIRE(std::system((common + "--screenshot=" + png.string() + " " + url +
                       " >/dev/null 2>&1").c_str()) == 0);
  REQUIRE(std::system((common + "--dump-dom " + url + " >" + dom.string() + " 2>/dev/null")
                          .c_str()) == 0);
  return read_file(dom);
}

}  // namespace

TEST_CASE("sluice graph draws a workflow file as dot and as mermaid", "[integration][graph]") {
  ScratchDir dir;
  auto dot = run_sluice({"graph", kExamples + "diamond.toml"}, dir.path());
  INFO(dot.err);
  REQUIRE(dot.exit_code == 0);
  CHECK(dot.out.rfind("digraph sluice {", 0) == 0);
  CHECK(dot.out.find("label=\"fetch_a\"") != std::string::npos);
  CHECK(dot.out.find(" -> ") != std::string::npos);
  auto mermaid = run_sluice({"graph", kExamples + "sweep.toml", "--format", "mermaid"}, dir.path());
  REQUIRE(mermaid.exit_code == 0);
  CHECK(mermaid.out.rfind("flowchart LR", 0) == 0);
  CHECK(mermaid.out.find("train.3") != std::string::npos);  // 4 instances: small, expanded
  CHECK(mermaid.out.find("-->") != std::string::npos);
}

TEST_CASE("a run's graph folds a large matrix group into one node with counts per state",
          "[integration][graph]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", sweep_workflow(30, true));
  auto r = run_sluice({"run", "wf.toml", "--cpus", "2"}, dir.path());
  REQUIRE(r.exit_code == 1);
  const auto id = run_id_of(r);
  auto g = run_sluice({"graph", id}, dir.path());
  INFO(g.out << g.err);
  REQUIRE(g.exit_code == 0);
  CHECK(g.out.find("train \u00d730: 29 succeeded, 1 failed") != std::string::npos);
  CHECK(g.out.find("#f28b82") != std::string::npos);  // coloured as failed
  CHECK(g.out.find("train.7") == std::string::npos);
  CHECK(g.out.find("pick\\nskipped") != std::string::npos);
  auto expanded = run_sluice({"graph", id, "--expand", "-o", "g.dot"}, dir.path());
  REQUIRE(expanded.exit_code == 0);
  const std::string text = read_file(dir / "g.dot");
  CHECK(text.find("train.7\\nfailed") != std::string::npos);
  CHECK(text.find("subgraph cluster_") != std::string::npos);
}

TEST_CASE("graph --format svg uses Graphviz, or says how to install it", "[integration][graph]") {
  ScratchDir dir;
  if (std::system("command -v dot >/dev/null 2>&1") == 0) {
    auto svg = run_sluice({"graph", kExamples + "diamond.toml", "--format", "svg", "-o", "d.svg"},
                          dir.path());
    INFO(svg.err);
    REQUIRE(svg.exit_code == 0);
    CHECK(read_file(dir / "d.svg").find("<svg") != std::string::npos);
  }
  const std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  ::setenv("PATH", dir.path().c_str(), 1);
  auto none = run_sluice({"graph", kExamples + "diamond.toml", "--format", "svg"}, dir.path());
  ::setenv("PATH", path.c_str(), 1);
  CHECK(none.exit_code == 2);
  CHECK(none.err.find("apt-get install graphviz") != std::string::npos);
}

TEST_CASE("the report escapes everything taken from the run", "[integration][report]") {
  ScratchDir dir;
  write_file(dir / "wf.toml", kDiamondWithFailure);
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  REQUIRE(r.exit_code == 1);
  const auto id = run_id_of(r);
  auto rep = run_sluice({"report", id, "-o", "r.html"}, dir.path());
  INFO(rep.out << rep.err);
  REQUIRE(rep.exit_code == 0);
  const std::string html = read_file(dir / "r.html");
  CHECK(html.find("<script>alert(1)") == std::string::npos);
  CHECK(html.find("\\u003cscript\\u003ealert(1)\\u003c/script\\u003e \\u0026 friends") !=
        std::string::npos);
  CHECK(html.find("http://") == std::string::npos);  // nothing to fetch
  CHECK(html.find("https://") == std::string::npos);

  auto data = run_sluice({"report", id, "--json", "-o", "-"}, dir.path());
  REQUIRE(data.exit_code == 0);
  const json d = json::parse(data.out);
  CHECK(d["counts"]["succeeded"] == 3);
  CHECK(d["counts"]["failed"] == 1);
  REQUIRE(d["failed"].size() == 1);
  CHECK(d["failed"][0]["attempts"] == 2);
  CHECK(d["failed"][0]["reason"] == "exit code 4");
  CHECK(d["failed"][0]["stderr"] == "<script>alert(1)</script> & friends\n");
  CHECK(d["attempts"]["task"].size() == 5);  // bad ran twice
  CHECK(d["artifacts"]["task"].size() >= 2);  // fetch_a and fetch_b put values
}

TEST_CASE("the report draws itself in headless Chromium", "[integration][report][browser]") {
  const std::string chromium = find_chromium();
  if (chromium.empty()) {
    if (in_ci()) FAIL("CI=true but chromium is not installed (scripts/deps.sh installs it)");
    SLUICE_SKIP("headless report test: chromium is not installed (apt-get install chromium)");
  }
  ScratchDir dir;
  write_file(dir / "wf.toml", kDiamondWithFailure);
  auto r = run_sluice({"run", "wf.toml"}, dir.path());
  REQUIRE(r.exit_code == 1);
  REQUIRE(run_sluice({"report", run_id_of(r), "-o", "diamond.html"}, dir.path()).exit_code == 0);
  std::string dom = chromium_dom(chromium, dir / "diamond.html", dir / "diamond.png", dir.path());
  INFO(dom.substr(0, 4000));
  CHECK(dom.find("data-rendered=\"1\"") != std::string::npos);
  CHECK(dom.find("id=\"task-count\">4<") != std::string::npos);
  CHECK(dom.find("id=\"failed-count\">1<") != std::string::npos);
  CHECK(dom.find("<summary>bad  <span class=\"reason\">exit code 4") != std::string::npos);
  CHECK(dom.find("&lt;script&gt;alert(1)&lt;/script&gt; &amp; friends") != std::string::npos);
  CHECK(dom.find("<script>alert(1)") == std::string::npos);
  CHECK(dom.find("data-bars=\"5\"") != std::string::npos);
  CHECK(dom.find("data-retries=\"1\"") != std::string::npos);
  CHECK(fs::file_size(dir / "diamond.png") > 20'000);

  write_file(dir / "sweep.toml", sweep_workflow(1000, false));
  auto s = run_sluice({"run", "sweep.toml", "-q"}, dir.path());
  REQUIRE(s.exit_code == 0);
  REQUIRE(run_sluice({"report", run_id_of(s), "-o", "sweep.html"}, dir.path()).exit_code == 0);
  dom = chromium_dom(chromium, dir / "sweep.html", dir / "sweep.png", dir.path());
  CHECK(dom.find("data-rendered=\"1\"") != std::string::npos);
  CHECK(dom.find("id=\"task-count\">1001<") != std::string::npos);
  CHECK(dom.find("data-bars=\"1001\"") != std::string::npos);
  CHECK(dom.find("id=\"count-succeeded\"") != std::string::npos);
  CHECK(dom.find("1001 succeeded") != std::string::npos);
  CHECK(fs::file_size(dir / "sweep.png") > 20'000);
}

TEST_CASE("graph and report work for every example", "[integration][examples][report]") {
  ScratchDir dir;
  int seen = 0;
  for (const auto& entry : fs::directory_iterator(kExamples)) {
    if (entry.path().extension() != ".toml") continue;
    const std::string file = entry.path().string();
    INFO(file);
    auto validate = run_sluice({"validate", file}, dir.path());
    if (validate.exit_code != 0) {
      WARN("skipping " << file << ": " << validate.err);
      continue;
    }
    ++seen;
    auto fg = run_sluice({"graph", file, "--format", "mermaid"}, dir.path());
    CHECK(fg.exit_code == 0);
    auto r = run_sluice({"run", file, "-q"}, dir.path());
    INFO(r.out << r.err);
    REQUIRE((r.exit_code == 0 || r.exit_code == 1));
    const auto id = run_id_of(r);
    auto g = run_sluice({"graph", id}, dir.path());
    CHECK(g.exit_code == 0);
    CHECK(g.out.find("digraph") == 0);
    auto rep = run_sluice({"report", id, "-o", "r.html"}, dir.path());
    CHECK(rep.exit_code == 0);
    CHECK(read_file(dir / "r.html").find("sluice-data") != std::string::npos);
  }
  CHECK(seen >= 5);
}

TEST_CASE("sluice watch follows a run started elsewhere and exits like sluice run",
          "[integration][watch]") {
  ScratchDir dir;
  write_file(dir / "ok.toml", R"(
[workflow]
name = "slow"
[tasks.a]
shell = "sleep 1"
[tasks.b]
after = ["a"]
shell = "sleep 1"
)");
  const pid_t pid = spawn_sluice({"run", "ok.toml"}, dir.path(), dir / "run.out", dir / "run.err");
  const std::string id = wait_for_run_id(dir / "run.out");
  auto w = run_sluice({"watch", id, "--interval", "0.2", "--progress-every", "0"}, dir.path());
  CHECK(wait_exit(pid) == 0);
  INFO(w.out << w.err);
  CHECK(w.exit_code == 0);
  CHECK(w.out == "run " + id + " succeeded\n");
  CHECK(w.err.find("2/2 done: 2 succeeded") != std::string::npos);
  CHECK(w.err.find("running") != std::string::npos);

  write_file(dir / "bad.toml", "[workflow]\nname = \"bad\"\n[tasks.a]\nshell = \"exit 1\"\n");
  auto r = run_sluice({"run", "bad.toml"}, dir.path());
  REQUIRE(r.exit_code == 1);
  auto wb = run_sluice({"watch", run_id_of(r)}, dir.path());
  CHECK(wb.exit_code == 1);
  CHECK(wb.out.find("failed") != std::string::npos);
}
