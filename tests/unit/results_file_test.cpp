// The results file (SLUICE_RESULTS): KEY=VALUE and KEY<<DELIM lines parsed into values,
// and merged into an artifact that already holds values and attributes.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "sluice/engine/artifacts.hpp"
#include "sluice/engine/hdf5_codec.hpp"
#include "sluice/engine/results_file.hpp"
#include "sluice/value.hpp"
#include "support/scratch_dir.hpp"

namespace fs = std::filesystem;
using sluice::ErrorCode;
using sluice::Map;
using sluice::NdArray;
using sluice::Value;

namespace {

void write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

Map parse_ok(const std::string& text) {
  auto m = sluice::parse_results(text, "results");
  INFO((m ? std::string() : m.error().message));
  REQUIRE(m);
  return *m;
}

std::string parse_error(const std::string& text) {
  auto m = sluice::parse_results(text, "results");
  REQUIRE_FALSE(m);
  CHECK(m.error().code == ErrorCode::kInvalidInput);
  return m.error().message;
}

}  // namespace

TEST_CASE("results lines are typed as sluice put types its arguments", "[results]") {
  Map m = parse_ok(
      "i=42\nf=2.5\nb=true\ns=hello world\nempty=\nlist=[1, 2, 3]\n"
      "obj={\"k\": \"v\"}\neq=a=b\nneg=-7\n");
  CHECK(m.find("i")->get<std::int64_t>() == 42);
  CHECK(m.find("f")->get<double>() == 2.5);
  CHECK(m.find("b")->get<bool>() == true);
  CHECK(m.find("s")->get<std::string>() == "hello world");
  CHECK(m.find("empty")->get<std::string>().empty());
  CHECK(m.find("list")->get<NdArray>().values<std::int64_t>().size() == 3);
  CHECK(m.find("obj")->get<Map>().find("k")->get<std::string>() == "v");
  CHECK(m.find("eq")->get<std::string>() == "a=b");  // split at the first '='
  CHECK(m.find("neg")->get<std::int64_t>() == -7);
  CHECK(m.size() == 9);
}

TEST_CASE("blank lines are skipped, CRLF is accepted and a later line replaces a key",
          "[results]") {
  Map m = parse_ok("\n  \nv=1\r\n\r\nv=2\nw=x\r\n");
  CHECK(m.size() == 2);
  CHECK(m.find("v")->get<std::int64_t>() == 2);
  CHECK(m.find("w")->get<std::string>() == "x");
  CHECK(parse_ok("").empty());
}

TEST_CASE("KEY<<DELIM holds the lines up to DELIM: a table of numbers is an array", "[results]") {
  Map m = parse_ok(
      "table<<EOF\n1 2\n3 4\n5 6\nEOF\n"
      "column<<END\n1.5\n2.5\nEND\n"
      "text<<EOF\nfirst line\n  second = line\nEOF\n"
      "none<<X\nX\n"
      "after=1");
  const auto& table = m.find("table")->get<NdArray>();
  CHECK(table.shape() == std::vector<std::uint64_t>{3, 2});
  CHECK(table.values<std::int64_t>()[5] == 6);
  const auto& column = m.find("column")->get<NdArray>();
  CHECK(column.shape() == std::vector<std::uint64_t>{2});
  CHECK(column.values<double>()[1] == 2.5);
  CHECK(m.find("text")->get<std::string>() == "first line\n  second = line");
  CHECK(m.find("none")->get<std::string>().empty());
  CHECK(m.find("after")->get<std::int64_t>() == 1);
}

TEST_CASE("malformed results name the line and what is wrong", "[results]") {
  CHECK(parse_error("a=1\njust text\n") ==
        "results:2: expected KEY=VALUE or KEY<<DELIM, got 'just text'");
  CHECK(parse_error("=5\n") == "results:1: '' is not a key");
  CHECK(parse_error("two words=5\n") == "results:1: 'two words' is not a key");
  CHECK(parse_error("a=1\nt<<EOF\n1 2\n") ==
        "results:2: 't<<EOF' is never closed by a line holding only EOF");
  CHECK(parse_error("t<<\nx\n") == "results:1: KEY<<DELIM needs a delimiter after <<");
}

TEST_CASE("read_results refuses links, oversized files and reports missing ones", "[results]") {
  sluice::testing::ScratchDir dir;
  write(dir / "results", "a=1\n");
  auto ok = sluice::read_results(dir / "results");
  REQUIRE(ok);
  CHECK(ok->find("a")->get<std::int64_t>() == 1);

  fs::create_symlink(dir / "results", dir / "link");
  auto link = sluice::read_results(dir / "link");
  REQUIRE_FALSE(link);
  CHECK(link.error().code == ErrorCode::kInvalidInput);

  { std::ofstream big(dir / "big"); }
  fs::resize_file(dir / "big", sluice::kMaxResultsBytes + 1);  // sparse: nothing written
  auto big = sluice::read_results(dir / "big");
  REQUIRE_FALSE(big);
  CHECK(big.error().message.find("more than the 64 MiB") != std::string::npos);

  auto missing = sluice::read_results(dir / "missing");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == ErrorCode::kIo);
}

TEST_CASE("results merge into an artifact: its values stay unless replaced, attributes stay",
          "[results]") {
  sluice::testing::ScratchDir dir;
  const std::string path = dir / "output.h5";
  {
    auto w = sluice::ArtifactWriter::create(path);
    REQUIRE(w);
    REQUIRE(w->put("kept", Value(std::int64_t{1})));
    REQUIRE(w->put("replaced", Value(std::string("old"))));
    REQUIRE(w->set_attribute("note", Value(std::string("from the task"))));
    REQUIRE(w->commit());
  }
  Map results = parse_ok("replaced=new\nadded=2.5\n");
  REQUIRE(sluice::merge_into_artifact(results, path));
  auto r = sluice::ArtifactReader::open(path);
  REQUIRE(r);
  auto all = r->get_all();
  REQUIRE(all);
  CHECK(all->size() == 3);
  CHECK(all->find("kept")->get<std::int64_t>() == 1);
  CHECK(all->find("replaced")->get<std::string>() == "new");
  CHECK(all->find("added")->get<double>() == 2.5);
  auto attrs = r->attributes();
  REQUIRE(attrs);
  CHECK(attrs->find("note")->get<std::string>() == "from the task");

  // A key HDF5 cannot hold fails the merge and leaves the artifact as it was.
  Map bad = parse_ok("a/b=1\n");
  auto merged = sluice::merge_into_artifact(bad, path);
  REQUIRE_FALSE(merged);
  CHECK(merged.error().message.find("key 'a/b'") != std::string::npos);
  auto again = sluice::ArtifactReader::open(path);
  REQUIRE(again);
  CHECK(again->get_all()->size() == 3);
}

TEST_CASE("an artifact sealed in one pass equals one written and then finalized", "[results]") {
  sluice::testing::ScratchDir dir;
  Map values = parse_ok("n=3\nlabel=x\nt<<E\n1 2\nE\n");
  sluice::Provenance p;
  p.run_id = "r1";
  p.workflow = "proj:wf:1";
  p.task = "t@1";
  p.attempt = 2;
  p.host = "h";
  p.started_us = 1'000'000;
  p.ended_us = 2'000'000;
  p.exit_status = 0;
  p.command = "echo";
  p.inputs.emplace_back("/in.h5", "xxh3:0123456789abcdef");

  auto one = sluice::write_sealed_artifact(dir / "one.h5", values, p, true);
  REQUIRE(one);
  {
    auto w = sluice::ArtifactWriter::create(dir / "two.h5");
    REQUIRE(w);
    for (const auto& [k, v] : values) REQUIRE(w->put(k, v));
    REQUIRE(w->commit());
  }
  auto two = sluice::finalize_artifact(dir / "two.h5", p, true);
  REQUIRE(two);
  CHECK(one->content_hash == two->content_hash);
  CHECK(one->checksum.rfind("xxh3:", 0) == 0);

  auto a = sluice::ArtifactReader::open(dir / "one.h5");
  auto b = sluice::ArtifactReader::open(dir / "two.h5");
  REQUIRE(a);
  REQUIRE(b);
  CHECK(*a->get_all() == *b->get_all());
  auto attrs_a = a->attributes(), attrs_b = b->attributes();
  REQUIRE(attrs_a);
  REQUIRE(attrs_b);
  CHECK(*attrs_a == *attrs_b);
  CHECK(attrs_a->find("attempt")->get<std::int64_t>() == 2);
  CHECK(attrs_a->find("inputs")->get<std::string>() == "xxh3:0123456789abcdef /in.h5\n");
}
