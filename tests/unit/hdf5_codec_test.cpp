#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <hdf5.h>

#include "sluice/engine/artifacts.hpp"
#include "sluice/engine/hdf5_codec.hpp"
#include "sluice/value.hpp"
#include "support/scratch_dir.hpp"

namespace fs = std::filesystem;
using sluice::ArtifactReader;
using sluice::ArtifactWriter;
using sluice::DType;
using sluice::ErrorCode;
using sluice::List;
using sluice::Map;
using sluice::NdArray;
using sluice::Value;

namespace {

// A scratch directory, with the paths of files in it and a count of its entries.
struct TempDir {
  sluice::testing::ScratchDir scratch;
  fs::path path = scratch.path();
  std::string file(const std::string& name) const { return (path / name).string(); }
  std::size_t entries() const {
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(path), {}));
  }
};

// Writes `values` under their keys, commits, and reads every key back.
Map round_trip(const TempDir& dir, const Map& values) {
  const std::string path = dir.file("output.h5");
  auto w = ArtifactWriter::create(path);
  REQUIRE(w);
  for (const auto& [key, value] : values) {
    auto ok = w->put(key, value);
    INFO(key << ": " << (ok ? "" : ok.error().message));
    REQUIRE(ok);
  }
  REQUIRE(w->commit());
  auto r = ArtifactReader::open(path);
  REQUIRE(r);
  auto all = r->get_all();
  INFO((all ? "" : all.error().message));
  REQUIRE(all);
  return *all;
}

std::vector<double> iota_doubles(std::size_t n) {
  std::vector<double> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = 0.5 * static_cast<double>(i);
  return v;
}

}  // namespace

TEST_CASE("values describe themselves briefly", "[hdf5][value]") {
  CHECK(describe(Value()) == "null");
  CHECK(describe(Value(true)) == "bool");
  CHECK(describe(Value(3)) == "int64");
  CHECK(describe(Value(2.5)) == "float64");
  CHECK(describe(Value("x")) == "string");
  CHECK(describe(Value(NdArray(iota_doubles(3000), {1000, 3}))) == "float64[1000,3]");
  CHECK(describe(Value(NdArray(DType::kInt32, {}))) == "int32[]");
  CHECK(describe(Value(List{1, 2, 3, 4})) == "list[4]");
  CHECK(describe(Value(Map{{"a", 1}, {"b", 2}, {"c", 3}})) == "map{3}");
  CHECK_THROWS_AS(NdArray(std::vector<double>{1, 2, 3}, {2, 2}), sluice::Error);
}

TEST_CASE("maps keep their keys sorted and unique", "[hdf5][value]") {
  Map m{{"b", 2}, {"a", 1}, {"c", 3}};
  m.insert_or_assign("a", 10);
  m["0"] = "zero";
  std::vector<std::string> keys;
  for (const auto& [k, v] : m) keys.push_back(k);
  CHECK(keys == std::vector<std::string>{"0", "a", "b", "c"});
  CHECK(*m.find("a") == Value(10));
  CHECK(m.erase("b"));
  CHECK_FALSE(m.contains("b"));
  CHECK(m.find("zz") == nullptr);
}

TEST_CASE("every scalar type round-trips", "[hdf5]") {
  TempDir dir;
  const Map in{
      {"null", Value()},
      {"true", true},
      {"false", false},
      {"int", std::int64_t{-9'007'199'254'740'993}},
      {"int_max", INT64_MAX},
      {"double", -1.0 / 3.0},
      {"inf", std::numeric_limits<double>::infinity()},
      {"empty_string", ""},
      {"unicode", "π ≈ 3.14, 日本語, emoji 🚀"},
  };
  CHECK(round_trip(dir, in) == in);
}

TEST_CASE("arrays of every dtype and shape round-trip, empty ones included", "[hdf5]") {
  TempDir dir;
  std::vector<std::int32_t> i32(24);
  for (int i = 0; i < 24; ++i) i32[i] = i * (i % 2 ? -1 : 1);
  const Map in{
      {"f64_2d", NdArray(iota_doubles(6), {2, 3})},
      {"i32_3d", NdArray(i32, {2, 3, 4})},
      {"f32", NdArray(std::vector<float>{1.5f, -2.25f, 3e38f})},
      {"i64", NdArray(std::vector<std::int64_t>{INT64_MIN, 0, INT64_MAX})},
      {"u8", NdArray(std::vector<std::uint8_t>{0, 127, 255})},
      {"empty_1d", NdArray(std::vector<double>{}, {0})},
      {"empty_3x0", NdArray(std::vector<std::int32_t>{}, {3, 0})},
      {"empty_0x5_f32", NdArray(std::vector<float>{}, {0, 5})},
      {"rank0", NdArray(std::vector<std::int64_t>{7}, {})},
      {"big", NdArray(iota_doubles(300'000), {1000, 300})},  // > 1 MiB
  };
  const Map out = round_trip(dir, in);
  CHECK(out == in);
  CHECK(out.find("empty_3x0")->get<NdArray>().shape() == std::vector<std::uint64_t>{3, 0});
  CHECK(out.find("rank0")->is<NdArray>());  // not confused with an int64 scalar
}

TEST_CASE("nested lists and maps round-trip in order", "[hdf5]") {
  TempDir dir;
  List twelve;
  for (int i = 0; i < 12; ++i) twelve.emplace_back(i * i);  // "10" sorts before "2" as a name
  const Map in{
      {"list", twelve},
      {"empty_list", List{}},
      {"empty_map", Map{}},
      {"mixed", List{1, "two", 3.0, Value(), List{true, false}, Map{{"k", "v"}}}},
      {"config", Map{{"solver", Map{{"tol", 1e-9}, {"iters", 500}, {"name", "cg"}}},
                     {"grid", NdArray(std::vector<std::int64_t>{64, 64, 32})},
                     {"tags", List{"a", "b"}},
                     {"ünïcödé kéy ✓", "value"},
                     {"has space", Value()}}},
  };
  CHECK(round_trip(dir, in) == in);
}

TEST_CASE("sealing an artifact adds provenance and reads its content hash in the same open",
          "[hdf5][cache]") {
  TempDir dir;
  const std::string path = dir.file("output.h5");
  const Map values{{"v", 42}, {"grid", NdArray(iota_doubles(6), {2, 3})}};
  auto w = ArtifactWriter::create(path);
  REQUIRE(w);
  for (const auto& [key, value] : values) REQUIRE(w->put(key, value));
  REQUIRE(w->commit());

  sluice::Provenance p;
  p.run_id = "run-1";
  p.task = "t@1";
  p.attempt = 2;
  auto sealed = sluice::finalize_artifact(path, p, /*hash_content=*/true);
  REQUIRE(sealed);
  CHECK(sealed->content_hash == sluice::values_content_hash(values));
  CHECK(sealed->content_hash == *sluice::artifact_content_hash(path));  // provenance excluded
  CHECK(sealed->checksum == *sluice::file_checksum(path));              // of the sealed file
  auto attrs = ArtifactReader::open(path)->attributes();
  REQUIRE(attrs);
  REQUIRE(attrs->contains("run_id"));
  CHECK(attrs->find("run_id")->get<std::string>() == "run-1");
  REQUIRE(attrs->contains("attempt"));
  CHECK(attrs->find("attempt")->get<std::int64_t>() == 2);

  auto unasked = sluice::finalize_artifact(path, p);
  REQUIRE(unasked);
  CHECK(unasked->content_hash.empty());

  const std::string junk = dir.file("junk.h5");
  std::ofstream(junk) << "not hdf5";
  auto bad = sluice::finalize_artifact(junk, p, true);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message == "bad artifact: not an HDF5 file: " + junk);
}

TEST_CASE("the content hash of values equals the hash of the artifact they are written to",
          "[hdf5][cache]") {
  TempDir dir;
  List twelve;
  for (int i = 0; i < 12; ++i) twelve.emplace_back(i * i);
  const std::vector<Map> cases = {
      Map{{"result", 42}},
      Map{{"result", Value()}},
      Map{{"result", true}, {"b", false}},
      Map{{"result", "text ✓"}, {"pi", 3.14159}, {"neg", -7}},
      Map{{"result", NdArray(iota_doubles(6), {2, 3})}},  // a top-level array
      Map{{"result", NdArray(std::vector<std::int64_t>{7}, {})},
          {"u8", NdArray(std::vector<std::uint8_t>{0, 127, 255})},
          {"empty", NdArray(std::vector<float>{}, {0, 5})}},
      Map{{"result", twelve}},
      Map{{"result", List{1, "two", 3.0, Value(), List{true, false}, Map{{"k", "v"}},
                          NdArray(std::vector<std::int32_t>{1, -2, 3})}}},
      Map{{"result", Map{{"solver", Map{{"tol", 1e-9}, {"iters", 500}}},
                         {"grid", NdArray(std::vector<std::int64_t>{64, 64, 32})},
                         {"ünïcödé kéy ✓", "value"}}},
          {"Zebra", List{}},
          {"alpha", Map{}}},
  };
  std::vector<std::string> seen;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    INFO("case " << i);
    const std::string path = dir.file("case" + std::to_string(i) + ".h5");
    auto w = ArtifactWriter::create(path);
    REQUIRE(w);
    for (const auto& [key, value] : cases[i]) REQUIRE(w->put(key, value));
    REQUIRE(w->commit());
    auto from_file = sluice::artifact_content_hash(path);
    REQUIRE(from_file);
    CHECK(sluice::values_content_hash(cases[i]) == *from_file);
    if (cases[i].size() == 1) {
      const auto& [key, value] = *cases[i].begin();
      CHECK(sluice::value_content_hash(key, value) == *from_file);
    }
    CHECK(std::find(seen.begin(), seen.end(), *from_file) == seen.end());
    seen.push_back(*from_file);
  }
  // A value that differs only in type or key gives another hash.
  CHECK(sluice::value_content_hash("result", 1) != sluice::value_content_hash("result", 1.0));
  CHECK(sluice::value_content_hash("result", 1) != sluice::value_content_hash("other", 1));
}

TEST_CASE("info describes a key without reading its data", "[hdf5]") {
  TempDir dir;
  const std::string path = dir.file("output.h5");
  auto w = ArtifactWriter::create(path);
  REQUIRE(w);
  REQUIRE(w->put("x", NdArray(iota_doubles(3000), {1000, 3})));
  REQUIRE(w->put("s", "hello"));
  REQUIRE(w->put("m", Map{{"a", 1}, {"b", 2}, {"c", 3}}));
  REQUIRE(w->put("l", List{1, 2}));
  REQUIRE(w->put("n", Value()));
  REQUIRE(w->put("b", true));
  REQUIRE(w->commit());
  auto r = ArtifactReader::open(path);
  REQUIRE(r);
  CHECK(r->keys() == std::vector<std::string>{"b", "l", "m", "n", "s", "x"});
  auto x = r->info("x");
  REQUIRE(x);
  CHECK(x->type == Value::Type::kArray);
  CHECK(x->dtype == DType::kFloat64);
  CHECK(x->size_bytes == 24'000);
  CHECK(describe(*x) == "float64[1000,3]");
  CHECK(describe(*r->info("s")) == "string");
  CHECK(describe(*r->info("m")) == "map{3}");
  CHECK(describe(*r->info("l")) == "list[2]");
  CHECK(describe(*r->info("n")) == "null");
  CHECK(describe(*r->info("b")) == "bool");
  auto missing = r->get("nope");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == ErrorCode::kNotFound);
  CHECK_FALSE(r->info("nope"));
}

TEST_CASE("root attributes are written and read back", "[hdf5]") {
  TempDir dir;
  const std::string path = dir.file("output.h5");
  auto w = ArtifactWriter::create(path);
  REQUIRE(w);
  REQUIRE(w->set_attribute("task", "sim@2"));
  REQUIRE(w->set_attribute("attempt", 3));
  REQUIRE(w->set_attribute("wall_s", 1.25));
  REQUIRE(w->set_attribute("ok", true));
  REQUIRE(w->set_attribute("attempt", 4));  // replaces
  CHECK_FALSE(w->set_attribute("sluice_type", "x"));
  CHECK_FALSE(w->set_attribute("list", List{1}));
  REQUIRE(w->commit());
  auto r = ArtifactReader::open(path);
  REQUIRE(r);
  auto attrs = r->attributes();
  REQUIRE(attrs);
  CHECK(*attrs == Map{{"task", "sim@2"}, {"attempt", 4}, {"wall_s", 1.25}, {"ok", true}});
  CHECK(r->keys().empty());
}

TEST_CASE("bad keys and unstorable values are rejected without leaving debris", "[hdf5]") {
  TempDir dir;
  const std::string path = dir.file("output.h5");
  auto w = ArtifactWriter::create(path);
  REQUIRE(w);
  for (const std::string& bad : std::vector<std::string>{"", ".", "a/b", std::string("a\0b", 3)}) {
    auto ok = w->put(bad, 1);
    REQUIRE_FALSE(ok);
    CHECK(ok.error().code == ErrorCode::kInvalidInput);
  }
  auto nested = w->put("cfg", Map{{"good", 1}, {"bad/key", 2}});
  REQUIRE_FALSE(nested);
  CHECK(nested.error().message.find("cfg/bad/key") != std::string::npos);
  CHECK_FALSE(w->put("nul", std::string("a\0b", 3)));
  REQUIRE(w->put("x", 1));
  auto dup = w->put("x", 2);
  REQUIRE_FALSE(dup);
  CHECK(dup.error().code == ErrorCode::kConflict);
  REQUIRE(w->commit());
  auto r = ArtifactReader::open(path);
  REQUIRE(r);
  CHECK(r->keys() == std::vector<std::string>{"x"});  // the failed "cfg" was removed
  CHECK(*r->get("x") == Value(1));
}

TEST_CASE("an artifact appears at its path only on commit", "[hdf5]") {
  TempDir dir;
  const std::string path = dir.file("output.h5");
  {
    auto w = ArtifactWriter::create(path);
    REQUIRE(w);
    REQUIRE(w->put("x", 1));
    CHECK_FALSE(fs::exists(path));
    CHECK(dir.entries() == 1);  // the temporary file
  }
  CHECK_FALSE(fs::exists(path));
  CHECK(dir.entries() == 0);  // abandoned: the temporary file is gone too

  auto w = ArtifactWriter::create(path, {.durable = true});
  REQUIRE(w);
  REQUIRE(w->put("x", 2));
  CHECK_FALSE(fs::exists(path));
  REQUIRE(w->commit());
  CHECK(fs::exists(path));
  CHECK(dir.entries() == 1);
  CHECK_FALSE(w->put("y", 3));  // closed after commit
  CHECK(*ArtifactReader::open(path)->get("x") == Value(2));

  auto nodir = ArtifactWriter::create(dir.file("no/such/dir/output.h5"));
  REQUIRE_FALSE(nodir);
  CHECK(nodir.error().code == ErrorCode::kIo);
}

TEST_CASE("files written by other programs read by their HDF5 types", "[hdf5]") {
  TempDir dir;
  const std::string path = dir.file("plain.h5");
  {
    // Raw C API, as a simulation code or h5py would write: no sluice_type anywhere.
    hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE(f >= 0);
    const hsize_t dims[2] = {2, 3};
    const double grid[6] = {1, 2, 3, 4, 5, 6};
    hid_t s2 = H5Screate_simple(2, dims, nullptr);
    hid_t d = H5Dcreate2(f, "grid", H5T_IEEE_F64BE, s2, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, grid);
    H5Dclose(d);
    const std::int16_t shorts[6] = {-1, 2, -3, 4, -5, 6};
    d = H5Dcreate2(f, "shorts", H5T_STD_I16LE, s2, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_INT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, shorts);
    H5Dclose(d);
    H5Sclose(s2);

    hid_t scalar = H5Screate(H5S_SCALAR);
    hid_t fixed = H5Tcopy(H5T_C_S1);
    H5Tset_size(fixed, 16);
    H5Tset_strpad(fixed, H5T_STR_NULLPAD);
    const char label[16] = "fixed label";
    d = H5Dcreate2(f, "label", fixed, scalar, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, fixed, H5S_ALL, H5S_ALL, H5P_DEFAULT, label);
    H5Dclose(d);
    H5Tclose(fixed);

    const std::int32_t steps = 42;
    d = H5Dcreate2(f, "steps", H5T_STD_I32LE, scalar, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, &steps);
    H5Dclose(d);

    hid_t g = H5Gcreate2(f, "params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const float dt = 0.5f;
    d = H5Dcreate2(g, "dt", H5T_IEEE_F32LE, scalar, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, &dt);
    H5Dclose(d);
    H5Gclose(g);

    hid_t a = H5Acreate2(f, "code", H5T_STD_I32LE, scalar, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT32, &steps);
    H5Aclose(a);
    H5Sclose(scalar);

    hid_t cmp = H5Tcreate(H5T_COMPOUND, 8);
    H5Tinsert(cmp, "a", 0, H5T_NATIVE_DOUBLE);
    const hsize_t one = 1;
    hid_t s1 = H5Screate_simple(1, &one, nullptr);
    d = H5Dcreate2(f, "compound", cmp, s1, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, cmp, H5S_ALL, H5S_ALL, H5P_DEFAULT, grid);
    H5Dclose(d);
    H5Sclose(s1);
    H5Tclose(cmp);
    REQUIRE(H5Fclose(f) >= 0);
  }
  auto r = ArtifactReader::open(path);
  REQUIRE(r);
  CHECK(*r->get("grid") == Value(NdArray(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3})));
  CHECK(*r->get("shorts") ==
        Value(NdArray(std::vector<std::int32_t>{-1, 2, -3, 4, -5, 6}, {2, 3})));
  CHECK(*r->get("label") == Value("fixed label"));
  CHECK(*r->get("steps") == Value(42));
  CHECK(*r->get("params") == Value(Map{{"dt", 0.5}}));
  CHECK(*r->attributes() == Map{{"code", 42}});
  auto compound = r->get("compound");
  REQUIRE_FALSE(compound);
  CHECK(compound.error().message.find("'compound'") != std::string::npos);
}

TEST_CASE("corrupt, truncated and missing files give clear errors", "[hdf5]") {
  TempDir dir;
  const std::string junk = dir.file("junk.h5");
  {
    std::ofstream out(junk, std::ios::binary);
    std::mt19937 rng(7);
    for (int i = 0; i < 10'000; ++i) out.put(static_cast<char>(rng()));
  }
  auto r = ArtifactReader::open(junk);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == ErrorCode::kInvalidInput);
  CHECK(r.error().message == "not an HDF5 file: " + junk);

  const std::string real = dir.file("output.h5");
  auto w = ArtifactWriter::create(real);
  REQUIRE(w);
  REQUIRE(w->put("x", NdArray(iota_doubles(100'000))));
  REQUIRE(w->put("m", Map{{"a", 1}}));
  REQUIRE(w->commit());
  for (std::uintmax_t size :
       {std::uintmax_t{0}, std::uintmax_t{100}, fs::file_size(real) / 2, fs::file_size(real) - 1}) {
    const std::string cut = dir.file("cut-" + std::to_string(size) + ".h5");
    fs::copy_file(real, cut);
    fs::resize_file(cut, size);
    auto t = ArtifactReader::open(cut);
    if (t) {  // the superblock may survive: then reading must fail, not crash
      for (const std::string& key : t->keys()) (void)t->get(key);
    } else {
      INFO(t.error().message);
      CHECK(t.error().code == ErrorCode::kInvalidInput);
      CHECK((t.error().message.starts_with("not an HDF5 file: ") ||
             t.error().message.starts_with("corrupt HDF5 file: ")));
    }
  }
  const std::string flipped = dir.file("flipped.h5");
  fs::copy_file(real, flipped);
  {
    std::fstream f(flipped, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(200);
    for (int i = 0; i < 600; ++i) f.put('\xab');  // object headers of both keys
  }
  auto damaged = ArtifactReader::open(flipped);
  REQUIRE(damaged);  // the superblock is intact
  CHECK(damaged->keys().size() == 2);
  for (const std::string& key : damaged->keys()) {
    auto v = damaged->get(key);
    REQUIRE_FALSE(v);
    CHECK(v.error().message.starts_with("cannot open '" + key + "': "));
  }

  auto missing = ArtifactReader::open(dir.file("missing.h5"));
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == ErrorCode::kNotFound);
}

TEST_CASE("a dataset that declares more bytes than it stores is refused before allocating",
          "[hdf5]") {
  TempDir dir;
  const std::string path = dir.file("unwritten.h5");
  {
    // Never written, so nothing stored: 8 GB of declared doubles in a file of a few KB
    // (what a corrupt dimension in a header looks like), and 10 doubles that read as fill.
    hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE(f >= 0);
    const hsize_t huge = 1'000'000'000, small = 10;
    hid_t s = H5Screate_simple(1, &huge, nullptr);
    H5Dclose(H5Dcreate2(f, "huge", H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Sclose(s);
    s = H5Screate_simple(1, &small, nullptr);
    H5Dclose(H5Dcreate2(f, "small", H5T_IEEE_F64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Sclose(s);
    // Chunked: one chunk of a billion doubles written, no compression (corrupt in the same
    // way); and a million zeros deflated ~1000 times (legitimate, near deflate's limit).
    const hsize_t chunk = 65'536, million = 1'000'000;
    const std::vector<double> zeros(million, 0.0);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, &chunk);
    s = H5Screate_simple(1, &huge, nullptr);
    hid_t d = H5Dcreate2(f, "sparse", H5T_IEEE_F64LE, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    hid_t one_chunk = H5Screate_simple(1, &chunk, nullptr);
    const hsize_t first = 0;
    H5Sselect_hyperslab(s, H5S_SELECT_SET, &first, nullptr, &chunk, nullptr);
    REQUIRE(H5Dwrite(d, H5T_NATIVE_DOUBLE, one_chunk, s, H5P_DEFAULT, zeros.data()) >= 0);
    H5Sclose(one_chunk);
    H5Dclose(d);
    H5Sclose(s);
    H5Pset_deflate(dcpl, 9);
    s = H5Screate_simple(1, &million, nullptr);
    d = H5Dcreate2(f, "zeros", H5T_IEEE_F64LE, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    REQUIRE(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros.data()) >= 0);
    H5Dclose(d);
    H5Sclose(s);
    H5Pclose(dcpl);
    REQUIRE(H5Fclose(f) >= 0);
  }
  auto r = ArtifactReader::open(path);
  REQUIRE(r);
  auto info = r->info("huge");  // metadata alone still describes it
  REQUIRE(info);
  CHECK(info->size_bytes == 8'000'000'000ULL);
  auto huge = r->get("huge");
  REQUIRE_FALSE(huge);
  CHECK(huge.error().code == ErrorCode::kInvalidInput);
  CHECK(huge.error().message ==
        "corrupt dataset 'huge': it declares 8000000000 bytes but stores 0");
  auto blocks = r->read_array_blocks("huge", 4096, [](std::uint64_t, const NdArray&) {
    FAIL("no block of a corrupt dataset is read");
    return sluice::Expected<void>{};
  });
  REQUIRE_FALSE(blocks);
  CHECK(blocks.error().message == huge.error().message);
  CHECK(*r->get("small") == Value(NdArray(std::vector<double>(10, 0.0))));
  auto sparse = r->get("sparse");
  REQUIRE_FALSE(sparse);
  CHECK(sparse.error().message ==
        "corrupt dataset 'sparse': it declares 8000000000 bytes but stores 524288");
  CHECK(*r->get("zeros") == Value(NdArray(std::vector<double>(1'000'000, 0.0))));
}

TEST_CASE("arrays stream in row blocks, contiguous or chunked", "[hdf5]") {
  TempDir dir;
  const std::string path = dir.file("output.h5");
  const std::vector<double> all = iota_doubles(100 * 7);
  auto w = ArtifactWriter::create(path);
  REQUIRE(w);
  for (std::uint64_t chunk_rows : {0, 16}) {
    const std::string key = "a" + std::to_string(chunk_rows);
    auto a = w->begin_array(key, DType::kFloat64, {100, 7}, chunk_rows);
    REQUIRE(a);
    CHECK(a->row_elements() == 7);
    CHECK_FALSE(w->begin_array("other", DType::kFloat64, {1}));  // one at a time
    CHECK_FALSE(a->append(std::span<const float>()));            // wrong dtype
    CHECK_FALSE(a->append(std::span(all).first(5)));             // not whole rows
    std::size_t row = 0;
    for (std::size_t rows : {3, 30, 1, 50, 16}) {  // unaligned with the chunks
      REQUIRE(a->append(std::span(all).subspan(row * 7, rows * 7)));
      row += rows;
    }
    CHECK(a->rows_written() == 100);
    CHECK_FALSE(a->append(std::span(all).first(7)));  // past the end
    REQUIRE(a->finish());
  }
  REQUIRE(w->commit());
  auto r = ArtifactReader::open(path);
  REQUIRE(r);
  for (const char* key : {"a0", "a16"}) {
    CHECK(*r->get(key) == Value(NdArray(all, {100, 7})));
    std::uint64_t next = 0;
    auto ok = r->read_array_blocks(key, 7 * 8 * 12, [&](std::uint64_t first, const NdArray& b) {
      CHECK(first == next);
      CHECK(b.shape()[1] == 7);
      CHECK(b.shape()[0] == std::min<std::uint64_t>(12, 100 - first));
      auto v = b.values<double>();
      CHECK(std::equal(v.begin(), v.end(), all.begin() + first * 7));
      next += b.shape()[0];
      return sluice::Expected<void>{};
    });
    REQUIRE(ok);
    CHECK(next == 100);
  }
  CHECK_FALSE(r->read_array_blocks("nope", 1024,
                                   [](auto, const auto&) { return sluice::Expected<void>{}; }));
}

TEST_CASE("an array begun but not finished fails the commit", "[hdf5]") {
  TempDir dir;
  const std::string path = dir.file("output.h5");
  auto w = ArtifactWriter::create(path);
  REQUIRE(w);
  auto a = w->begin_array("x", DType::kInt32, {10});
  REQUIRE(a);
  REQUIRE(a->append(std::span<const std::int32_t>(std::vector<std::int32_t>(4).data(), 4)));
  auto incomplete = a->finish();
  REQUIRE_FALSE(incomplete);
  CHECK(incomplete.error().message.find("4 of 10 rows") != std::string::npos);
  auto commit = w->commit();
  REQUIRE_FALSE(commit);
  CHECK(commit.error().message.find("not finished") != std::string::npos);
  CHECK_FALSE(fs::exists(path));
  CHECK(dir.entries() == 0);
}

namespace {

// Peak resident memory of this process in KiB, after resetting the peak if the kernel
// allows (Linux: writing 5 to clear_refs).
long reset_and_read_peak_kib(bool reset) {
  if (reset) std::ofstream("/proc/self/clear_refs") << "5";
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("VmHWM:")) return std::stol(line.substr(6));
  }
  return 0;
}

}  // namespace

TEST_CASE("a 256 MiB array streams through bounded memory", "[hdf5][large]") {
  TempDir dir;
  const std::string path = dir.file("output.h5");
  constexpr std::uint64_t kRows = 4 << 20, kCols = 8;  // 32 Mi doubles = 256 MiB
  constexpr std::uint64_t kBlockRows = 1 << 16;        // 4 MiB blocks
  auto value_at = [](std::uint64_t i) { return static_cast<double>(i) * 0.25 - 1e6; };
  const long before_kib = reset_and_read_peak_kib(true);
  const auto t0 = std::chrono::steady_clock::now();
  {
    auto w = ArtifactWriter::create(path);
    REQUIRE(w);
    auto a = w->begin_array("field", DType::kFloat64, {kRows, kCols});
    REQUIRE(a);
    std::vector<double> block(kBlockRows * kCols);
    for (std::uint64_t row = 0; row < kRows; row += kBlockRows) {
      for (std::uint64_t j = 0; j < block.size(); ++j) block[j] = value_at(row * kCols + j);
      REQUIRE(a->append(std::span<const double>(block)));
    }
    REQUIRE(a->finish());
    REQUIRE(w->commit());
  }
  const auto t1 = std::chrono::steady_clock::now();
  CHECK(fs::file_size(path) >= kRows * kCols * 8);
  auto r = ArtifactReader::open(path);
  REQUIRE(r);
  CHECK(describe(*r->info("field")) == "float64[4194304,8]");
  std::uint64_t rows_seen = 0, mismatches = 0;
  auto ok = r->read_array_blocks("field", 4 << 20, [&](std::uint64_t first, const NdArray& b) {
    auto v = b.values<double>();
    for (std::uint64_t j = 0; j < v.size(); ++j) mismatches += v[j] != value_at(first * kCols + j);
    rows_seen += b.shape()[0];
    return sluice::Expected<void>{};
  });
  const auto t2 = std::chrono::steady_clock::now();
  REQUIRE(ok);
  CHECK(rows_seen == kRows);
  CHECK(mismatches == 0);
  const long growth_mib = (reset_and_read_peak_kib(false) - before_kib) / 1024;
  auto mib_per_s = [](auto a, auto b) {
    return 256.0 / std::chrono::duration<double>(b - a).count();
  };
  WARN("256 MiB: write " << mib_per_s(t0, t1) << " MiB/s, read " << mib_per_s(t1, t2)
                         << " MiB/s, peak memory growth " << growth_mib << " MiB");
  CHECK(growth_mib < 64);  // one 4 MiB block each way, never the whole array
}
