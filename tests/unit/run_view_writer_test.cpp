// The run's view filled while the run goes on (engine/run_view_writer.hpp): what finish()
// leaves is exactly the final contents, whatever was streamed before.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "engine/run_view_writer.hpp"
#include "sluice/engine/hdf5_codec.hpp"
#include "sluice/value.hpp"
#include "support/scratch_dir.hpp"

namespace fs = std::filesystem;
using sluice::Map;
using sluice::Value;

namespace {

std::shared_ptr<const Map> result(std::int64_t v) {
  auto m = std::make_shared<Map>();
  m->insert_or_assign("result", Value(v));
  return m;
}

std::int64_t read_result(const std::string& file, const std::string& task) {
  auto r = sluice::ArtifactReader::open(file, "/" + task);
  REQUIRE(r);
  auto v = r->get("result");
  REQUIRE(v);
  return v->get<std::int64_t>();
}

bool has_group(const std::string& file, const std::string& task) {
  return sluice::ArtifactReader::open(file, "/" + task).has_value();
}

std::size_t files_in(const fs::path& dir) {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.is_regular_file() ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("RunViewWriter leaves exactly the final contents", "[run_view]") {
  sluice::testing::ScratchDir dir;
  const std::string path = (dir.path() / "run.h5").string();
  // A crashed coordinator's half-written view: the next writer removes it.
  { std::ofstream((dir.path() / "run.h5.tmp-1").string()) << "stale"; }
  auto a = result(1), b = result(2), b2 = result(20), c = result(3), d = result(4);
  sluice::RunViewWriter w(path);
  w.add("a", a);
  w.add("b", b);
  w.add("b", b2);  // a later attempt's values replace the first's
  w.add("c", c);   // streamed, then not succeeded: must not be in the view
  // Final: a (streamed), b with b2, d never streamed (restored from the store).
  sluice::PackedFileContents contents;
  contents.tasks = {{"a", a.get()}, {"b", b2.get()}, {"d", d.get()}};
  std::vector<sluice::ProvenanceRow> rows(1);
  rows[0].task = "a@1";
  contents.provenance = &rows;
  REQUIRE(w.finish(contents));
  CHECK(read_result(path, "a") == 1);
  CHECK(read_result(path, "b") == 20);
  CHECK(read_result(path, "d") == 4);
  CHECK_FALSE(has_group(path, "c"));
  CHECK(files_in(dir.path()) == 1);  // run.h5 alone: no temporary file left
}

TEST_CASE("An unfinished RunViewWriter leaves no file", "[run_view]") {
  sluice::testing::ScratchDir dir;
  {
    sluice::RunViewWriter w((dir.path() / "run.h5").string());
    w.add("a", result(1));
  }
  CHECK(files_in(dir.path()) == 0);
}
