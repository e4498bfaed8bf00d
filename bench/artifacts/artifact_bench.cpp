// artifact_bench: what passing data through HDF5 artifacts costs, beside the floors.
//
//   artifact_bench [--n N] [--reps R] [--gib G] [--quick] [--only small,bandwidth]
//
// Small artifacts (N files per repetition, median of R repetitions, each repetition in a
// fresh directory under $TMPDIR): write one int64, read it back, check it.
//   sluice-codec   ArtifactWriter::create + put + commit, ArtifactReader::open + get
//   sluice-sealed  the same plus finalize_artifact (provenance + xxh3 checksum), as the
//                  coordinator seals an attempt's artifact before dependents read it
//   sluice-results write_sealed_artifact: values, provenance and checksum in one pass, as
//                  the coordinator writes the artifact of a task that left only a results
//                  file ($SLUICE_RESULTS)
//   hdf5-raw       bare HDF5 C API: H5Fcreate, scalar int64 dataset, close, H5Fopen, read
//   posix          open/write 8 bytes/close, open/read/close: the floor
// Bandwidth: one float64 array of G GiB (default 1; --quick: 256 MiB), produced in row
// blocks of 8 MiB generated on the fly through begin_array + commit(durable), then read
// back with read_array_blocks checking every value; beside it `dd` writing zeros with
// conv=fsync and reading them back. Before each cold read the page cache is dropped
// (`echo 3 > /proc/sys/vm/drop_caches`) or, where that is refused, the file's pages are
// evicted with posix_fadvise(DONTNEED) after fsync; `cache=` says which.
//
// Output, one line per result on stdout:
//   workload=small tool=sluice-codec n=2000 us_per_artifact=180.2 write_us=120.1 read_us=60.1 ok=1
//   workload=bandwidth tool=sluice-write bytes=1073741824 mib_per_s=410.3 ok=1
// Exit status 1 when any result has ok=0.
#include <fcntl.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "sluice/engine/artifacts.hpp"
#include "sluice/engine/hdf5_codec.hpp"
#include "sluice/value.hpp"

namespace fs = std::filesystem;
using sluice::ArtifactReader;
using sluice::ArtifactWriter;
using sluice::Value;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string tmp_root() {
  const char* t = std::getenv("TMPDIR");
  return t && *t ? t : "/tmp";
}

// A fresh directory under $TMPDIR, removed (with everything in it) on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    std::string tmpl = tmp_root() + "/artifact_bench-" + tag + "-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!::mkdtemp(buf.data())) {
      std::perror("artifact_bench: mkdtemp");
      std::exit(1);
    }
    path_ = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// --- small artifacts -------------------------------------------------------------------

// One artifact: write `value` to `path`, then read it back. Returns false on any error or
// a wrong value. Adds the time of each half to write_s / read_s.
struct SmallTool {
  const char* name;
  std::function<bool(const std::string& path, std::int64_t value, double& write_s, double& read_s)>
      run;
};

// What Coordinator::seal_artifact records for a cached task with one input.
sluice::Provenance bench_provenance() {
  sluice::Provenance p;
  p.run_id = "20261126T120000-bench";
  p.workflow = "bench:artifacts:1";
  p.task = "t@1";
  p.attempt = 1;
  p.host = "localhost";
  p.started_us = 1'700'000'000'000'000;
  p.ended_us = p.started_us + 1000;
  p.command = "sluice put v 42";
  p.inputs.emplace_back("/tmp/run/tasks/parent/attempt-1/output.h5", "xxh3:0123456789abcdef");
  return p;
}

bool is_sealed(const sluice::Expected<sluice::SealedArtifact>& sealed) {
  return sealed && sealed->checksum.rfind("xxh3:", 0) == 0 &&
         sealed->content_hash.rfind("xxh3:", 0) == 0;
}

enum class Seal { kNone, kFinalize, kOnePass };

bool codec_roundtrip(const std::string& path, std::int64_t v, Seal seal, double& write_s,
                     double& read_s) {
  auto t0 = Clock::now();
  if (seal == Seal::kOnePass) {
    sluice::Map values;
    values.insert_or_assign("v", Value(v));
    if (!is_sealed(sluice::write_sealed_artifact(path, values, bench_provenance(), true)))
      return false;
  } else {
    {
      auto w = ArtifactWriter::create(path);
      if (!w || !w->put("v", Value(v)) || !w->commit()) return false;
    }
    if (seal == Seal::kFinalize &&
        !is_sealed(sluice::finalize_artifact(path, bench_provenance(), /*hash_content=*/true)))
      return false;
  }
  auto t1 = Clock::now();
  auto r = ArtifactReader::open(path);
  if (!r) return false;
  auto got = r->get("v");
  const bool ok = got && got->is<std::int64_t>() && got->get<std::int64_t>() == v;
  write_s += std::chrono::duration<double>(t1 - t0).count();
  read_s += seconds_since(t1);
  return ok;
}

bool hdf5_raw_roundtrip(const std::string& path, std::int64_t v, double& write_s, double& read_s) {
  auto t0 = Clock::now();
  {
    hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return false;
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t d = H5Dcreate2(f, "v", H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const bool ok = d >= 0 && H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) >= 0;
    if (d >= 0) H5Dclose(d);
    H5Sclose(s);
    if (H5Fclose(f) < 0 || !ok) return false;
  }
  auto t1 = Clock::now();
  std::int64_t got = ~v;
  {
    hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return false;
    hid_t d = H5Dopen2(f, "v", H5P_DEFAULT);
    const bool ok =
        d >= 0 && H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &got) >= 0;
    if (d >= 0) H5Dclose(d);
    H5Fclose(f);
    if (!ok) return false;
  }
  write_s += std::chrono::duration<double>(t1 - t0).count();
  read_s += seconds_since(t1);
  return got == v;
}

bool posix_roundtrip(const std::string& path, std::int64_t v, double& write_s, double& read_s) {
  auto t0 = Clock::now();
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  const bool wrote = ::write(fd, &v, sizeof v) == static_cast<ssize_t>(sizeof v);
  if (::close(fd) != 0 || !wrote) return false;
  auto t1 = Clock::now();
  std::int64_t got = ~v;
  fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool read_ok = ::read(fd, &got, sizeof got) == static_cast<ssize_t>(sizeof got);
  ::close(fd);
  write_s += std::chrono::duration<double>(t1 - t0).count();
  read_s += seconds_since(t1);
  return read_ok && got == v;
}

bool bench_small(int n, int reps) {
  const SmallTool tools[] = {
      {"sluice-codec", [](const std::string& p, std::int64_t v, double& w,
                          double& r) { return codec_roundtrip(p, v, Seal::kNone, w, r); }},
      {"sluice-sealed", [](const std::string& p, std::int64_t v, double& w,
                           double& r) { return codec_roundtrip(p, v, Seal::kFinalize, w, r); }},
      {"sluice-results", [](const std::string& p, std::int64_t v, double& w,
                            double& r) { return codec_roundtrip(p, v, Seal::kOnePass, w, r); }},
      {"hdf5-raw", hdf5_raw_roundtrip},
      {"posix", posix_roundtrip},
  };
  bool all_ok = true;
  for (const auto& tool : tools) {
    std::vector<double> total_us, write_us, read_us;
    bool ok = true;
    for (int rep = 0; rep < reps && ok; ++rep) {
      TempDir dir(std::string("small-") + tool.name);
      double write_s = 0, read_s = 0;
      auto t0 = Clock::now();
      for (int i = 0; i < n && ok; ++i) {
        const std::string path = dir.path() + "/a" + std::to_string(i) + ".h5";
        ok = tool.run(path, std::int64_t{i} * 7919 - 3, write_s, read_s);
        if (!ok) std::fprintf(stderr, "artifact_bench: %s failed on %s\n", tool.name, path.c_str());
      }
      total_us.push_back(seconds_since(t0) * 1e6 / n);
      write_us.push_back(write_s * 1e6 / n);
      read_us.push_back(read_s * 1e6 / n);
    }
    std::printf(
        "workload=small tool=%s n=%d reps=%d us_per_artifact=%.1f write_us=%.1f read_us=%.1f "
        "ok=%d\n",
        tool.name, n, reps, median(total_us), median(write_us), median(read_us), ok ? 1 : 0);
    std::fflush(stdout);
    all_ok = all_ok && ok;
  }
  return all_ok;
}

// --- bandwidth -------------------------------------------------------------------------

constexpr std::uint64_t kCols = 1024;                      // 8 KiB rows
constexpr std::size_t kBlockBytes = std::size_t{8} << 20;  // 8 MiB blocks
constexpr std::uint64_t kBlockRows = kBlockBytes / (kCols * sizeof(double));
constexpr double kMiB = 1024.0 * 1024.0;

// Makes the next read of `path` come from the disk. Returns "dropped" (the whole page
// cache), "fadvise" (this file's pages) or "warm" (neither worked).
std::string evict(const std::string& path) {
  if (std::system("sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null") == 0) return "dropped";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "warm";
  const bool ok = ::fdatasync(fd) == 0 && ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0;
  ::close(fd);
  return ok ? "fadvise" : "warm";
}

void print_bw(const char* tool, std::uint64_t bytes, double s, const std::string& cache, bool ok,
              const std::string& extra = "") {
  std::printf("workload=bandwidth tool=%s bytes=%" PRIu64 " mib_per_s=%.1f s=%.3f%s%s ok=%d\n",
              tool, bytes, bytes / kMiB / s, s, cache.empty() ? "" : (" cache=" + cache).c_str(),
              extra.c_str(), ok ? 1 : 0);
  std::fflush(stdout);
}

bool sluice_write(const std::string& path, std::uint64_t rows, double& gen_s) {
  auto w = ArtifactWriter::create(path, sluice::ArtifactOptions{.durable = true});
  if (!w) return false;
  auto a = w->begin_array("x", sluice::DType::kFloat64, {rows, kCols});
  if (!a) return false;
  std::vector<double> block(kBlockRows * kCols);
  for (std::uint64_t r0 = 0; r0 < rows; r0 += kBlockRows) {
    const std::uint64_t nrows = std::min(kBlockRows, rows - r0);
    auto g0 = Clock::now();
    const double base = static_cast<double>(r0 * kCols);
    for (std::uint64_t i = 0; i < nrows * kCols; ++i) block[i] = base + static_cast<double>(i);
    gen_s += seconds_since(g0);
    if (!a->append(std::span<const double>(block.data(), nrows * kCols))) return false;
  }
  if (!a->finish()) return false;
  return w->commit().has_value();
}

bool sluice_read(const std::string& path, std::uint64_t rows) {
  auto r = ArtifactReader::open(path);
  if (!r) return false;
  std::uint64_t seen_rows = 0;
  auto ok = r->read_array_blocks(
      "x", kBlockBytes,
      [&](std::uint64_t first_row, const sluice::NdArray& b) -> sluice::Expected<void> {
        auto v = b.values<double>();
        const double base = static_cast<double>(first_row * kCols);
        bool good = first_row == seen_rows && b.shape().size() == 2 && b.shape()[1] == kCols;
        for (std::size_t i = 0; good && i < v.size(); ++i) good = v[i] == base + double(i);
        if (!good)
          return sluice::make_error(sluice::ErrorCode::kInvalidInput,
                                    "wrong values in rows from " + std::to_string(first_row));
        seen_rows += b.shape()[0];
        return {};
      });
  if (!ok) std::fprintf(stderr, "artifact_bench: read: %s\n", ok.error().message.c_str());
  return ok && seen_rows == rows;
}

// Runs a shell command, returning its wall time in seconds, or a negative number if it
// failed.
double timed_system(const std::string& cmd) {
  auto t0 = Clock::now();
  const int rc = std::system(cmd.c_str());
  const double s = seconds_since(t0);
  return rc == 0 ? s : -1;
}

bool bench_bandwidth(std::uint64_t bytes, int reps) {
  const std::uint64_t rows = bytes / (kCols * sizeof(double));
  bytes = rows * kCols * sizeof(double);
  const std::uint64_t blocks = (rows + kBlockRows - 1) / kBlockRows;
  TempDir dir("bandwidth");
  const std::string h5 = dir.path() + "/big.h5";
  const std::string raw = dir.path() + "/big.dd";
  bool all_ok = true;

  std::vector<double> w_s, gen, rc_s, rw_s, hc_s, hw_s, dw_s, dr_s;
  std::string cache_h5, cache_hash, cache_dd;
  bool ok_w = true, ok_r = true, ok_rw = true, ok_hc = true, ok_hw = true, ok_dw = true,
       ok_dr = true;
  for (int rep = 0; rep < reps; ++rep) {
    double gen_s = 0;
    auto t0 = Clock::now();
    ok_w = ok_w && sluice_write(h5, rows, gen_s);
    w_s.push_back(seconds_since(t0));
    gen.push_back(gen_s);
    cache_h5 = evict(h5);
    t0 = Clock::now();
    ok_r = ok_r && sluice_read(h5, rows);
    rc_s.push_back(seconds_since(t0));
    t0 = Clock::now();  // again, from the page cache: the codec's own cost
    ok_rw = ok_rw && sluice_read(h5, rows);
    rw_s.push_back(seconds_since(t0));
    // The content hash the cache keys dependents on, cold and warm: it should run at
    // the disk's read speed (cold) and the hash's own speed (warm).
    cache_hash = evict(h5);
    t0 = Clock::now();
    auto cold = sluice::artifact_content_hash(h5);
    hc_s.push_back(seconds_since(t0));
    t0 = Clock::now();
    auto warm = sluice::artifact_content_hash(h5);
    hw_s.push_back(seconds_since(t0));
    ok_hc = ok_hc && cold.has_value();
    ok_hw = ok_hw && warm.has_value() && cold && *warm == *cold;
    std::remove(h5.c_str());

    double s = timed_system("dd if=/dev/zero of='" + raw +
                            "' bs=8M count=" + std::to_string(blocks) + " conv=fsync status=none");
    ok_dw = ok_dw && s > 0;
    dw_s.push_back(s > 0 ? s : 1e-9);
    cache_dd = evict(raw);
    s = timed_system("dd if='" + raw + "' of=/dev/null bs=8M status=none");
    ok_dr = ok_dr && s > 0;
    dr_s.push_back(s > 0 ? s : 1e-9);
    std::remove(raw.c_str());
  }
  char extra[96];
  std::snprintf(extra, sizeof extra, " reps=%d gen_s=%.3f durable=1", reps, median(gen));
  print_bw("sluice-write", bytes, median(w_s), "", ok_w, extra);
  const std::string r = " reps=" + std::to_string(reps);
  print_bw("sluice-read", bytes, median(rc_s), cache_h5, ok_r, r);
  print_bw("sluice-read", bytes, median(rw_s), "warm", ok_rw, r);
  print_bw("sluice-hash", bytes, median(hc_s), cache_hash, ok_hc, r);
  print_bw("sluice-hash", bytes, median(hw_s), "warm", ok_hw, r);
  print_bw("dd-write", bytes, median(dw_s), "", ok_dw, r + " fsync=1");
  print_bw("dd-read", bytes, median(dr_s), cache_dd, ok_dr, r);
  all_ok = ok_w && ok_r && ok_rw && ok_hc && ok_hw && ok_dw && ok_dr;
  return all_ok;
}

[[noreturn]] void usage(int code) {
  std::fprintf(code ? stderr : stdout,
               "usage: artifact_bench [--n N] [--reps R] [--gib G] [--quick] "
               "[--only small,bandwidth]\n");
  std::exit(code);
}

}  // namespace

int main(int argc, char** argv) {
  int n = 2000, reps = 3;
  double gib = 1.0;
  bool quick = false, gib_set = false;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) usage(2);
      return argv[++i];
    };
    if (a == "--n") {
      n = std::atoi(next().c_str());
    } else if (a == "--reps") {
      reps = std::atoi(next().c_str());
    } else if (a == "--gib") {
      gib = std::atof(next().c_str());
      gib_set = true;
    } else if (a == "--quick") {
      quick = true;
    } else if (a == "--only") {
      only = next();
    } else if (a == "-h" || a == "--help") {
      usage(0);
    } else {
      std::fprintf(stderr, "artifact_bench: unknown argument: %s\n", a.c_str());
      usage(2);
    }
  }
  if (n < 1 || reps < 1 || gib <= 0) usage(2);
  if (quick && !gib_set) gib = 0.25;
  auto wanted = [&](const char* w) {
    return only.empty() || ("," + only + ",").find(std::string(",") + w + ",") != std::string::npos;
  };
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);

  bool ok = true;
  if (wanted("small")) ok = bench_small(n, reps) && ok;
  if (wanted("bandwidth"))
    ok = bench_bandwidth(static_cast<std::uint64_t>(gib * 1024 * 1024 * 1024), reps) && ok;
  return ok ? 0 : 1;
}
