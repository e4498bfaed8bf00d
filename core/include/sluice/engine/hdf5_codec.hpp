// Artifacts: the HDF5 file (`output.h5`) an attempt writes and its dependents read. An
// artifact holds named Values (value.hpp) plus string/number attributes on the root
// group (provenance). ArtifactWriter builds one under a temporary name and renames it
// into place on commit(), so a crash never leaves a half-written artifact at the final
// path; ArtifactReader reads it back, or any HDF5 file written by another program.
// Both stream big arrays in blocks of rows, so an array need not fit in memory.
//
// Thread-safety: one object per thread. HDF5 here is built thread-safe with one global
// lock, so calls from many threads are serialized, not parallel. Failures are returned
// as Errors (HDF5's own error printing is silenced).
//
// Layout (see docs/artifact-layout.md), HDF5 1.8 file format: every key is one object in
// the root group, with a fixed-length ASCII string attribute `sluice_type` naming its
// Value type:
//   null    dataset with a null dataspace (h5py.Empty), int8
//   bool    scalar dataset, enum int8 {FALSE=0, TRUE=1} (h5py's bool)
//   int64   scalar dataset, H5T_STD_I64LE
//   float64 scalar dataset, H5T_IEEE_F64LE
//   string  scalar dataset, variable-length UTF-8 string
//   array   dataset of the array's shape, little-endian element type, contiguous
//   list    group; members "0", "1", ... in order
//   map     group; one member per key
// Files from other programs carry no `sluice_type` and read by their HDF5 types:
// rank-0 numbers become int64/float64, other numeric datasets NdArrays, string datasets
// strings (rank 0) or lists of strings, groups maps. Keys are non-empty UTF-8 names
// without '/' or NUL and other than ".".
//
// Usage:
//   auto w = ArtifactWriter::create(dir + "/output.h5");
//   if (!w) return tl::unexpected(w.error());
//   w->put("energy", -42.5);
//   w->put("positions", NdArray(std::move(xyz), {n, 3}));
//   if (auto ok = w->commit(); !ok) return ok;
//   auto r = ArtifactReader::open(dir + "/output.h5");
//   Expected<Value> e = r->get("energy");
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sluice/error.hpp"
#include "sluice/value.hpp"

namespace sluice {

struct ArtifactOptions {
  // commit() fsyncs the file and its directory before returning. Off by default: ~4x
  // the cost of a small artifact; batch durability elsewhere when it matters.
  bool durable = false;
};

class ArtifactWriter;

// Writes one array row block by row block (rows along the first dimension), so an array
// bigger than memory can be produced piece by piece. Obtained from
// ArtifactWriter::begin_array; must not outlive that writer.
class ArrayWriter {
 public:
  ArrayWriter(ArrayWriter&&) noexcept;
  ArrayWriter& operator=(ArrayWriter&&) noexcept;
  ~ArrayWriter();

  std::uint64_t rows_total() const;    // shape[0]
  std::uint64_t rows_written() const;  // rows appended so far
  std::uint64_t row_elements() const;  // elements per row: product of shape[1:]

  // Writes the next values.size() / row_elements() rows.
  // REQUIRES: T matches the array's dtype; values.size() is a multiple of row_elements();
  // the rows fit in what remains. Fails with kInvalidInput otherwise, kIo if HDF5 fails.
  template <ArrayElement T>
  Expected<void> append(std::span<const T> values) {
    return append_raw(dtype_of<T>(), values.data(), values.size());
  }
  Expected<void> append_raw(DType dtype, const void* data, std::uint64_t elements);

  // Declares the array complete. Fails (kInvalidInput) if rows are missing; until it
  // succeeds the writer's commit() fails.
  Expected<void> finish();

 private:
  friend class ArtifactWriter;
  struct Impl;
  explicit ArrayWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class ArtifactWriter {
 public:
  // Starts an artifact that will appear at `path` on commit(); meanwhile it is written to
  // `path + ".tmp-<pid>-<n>"` in the same directory. Fails with kIo if that file cannot
  // be created (missing directory, permissions).
  static Expected<ArtifactWriter> create(const std::string& path, ArtifactOptions options = {});

  ArtifactWriter(ArtifactWriter&&) noexcept;
  ArtifactWriter& operator=(ArtifactWriter&&) noexcept;
  // Without a successful commit(), removes the temporary file: `path` is left untouched.
  ~ArtifactWriter();

  const std::string& path() const;

  // Stores `value` under `key`. Fails with kInvalidInput for a bad key, a string holding
  // NUL or a map key that cannot be an HDF5 name; kConflict if `key` is already stored.
  Expected<void> put(const std::string& key, const Value& value);

  // Sets a root attribute (replacing one of the same name). `value` must be a bool,
  // int64, float64 or string; names starting with "sluice_" are reserved.
  Expected<void> set_attribute(const std::string& name, const Value& value);

  // Creates the array `key` of this dtype and shape (rank >= 1) and returns a writer for
  // its rows. Data is written as it is appended. `chunk_rows` = 0 stores the array
  // contiguously (fastest to write and read); > 0 stores it in chunks of that many rows.
  // One array may be open at a time.
  Expected<ArrayWriter> begin_array(const std::string& key, DType dtype,
                                    std::vector<std::uint64_t> shape, std::uint64_t chunk_rows = 0);

  // Closes the file and atomically renames it onto path() (fsyncing first if durable).
  // Fails with kInvalidInput if an array from begin_array is not finished, kIo if the
  // write or rename fails. After commit(), successful or not, the writer is closed.
  Expected<void> commit();

 private:
  struct Impl;
  friend class ArrayWriter;
  explicit ArtifactWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// What a key holds, learned without reading array or string data.
struct ValueInfo {
  Value::Type type = Value::Type::kNull;
  DType dtype = DType::kFloat64;     // arrays only
  std::vector<std::uint64_t> shape;  // arrays only
  std::uint64_t size_bytes = 0;      // in-memory bytes of arrays, numbers, bools; else 0
  std::uint64_t members = 0;         // lists and maps: number of entries
};

// Same format as describe(const Value&): "float64[1000,3]", "string", "map{3}".
std::string describe(const ValueInfo& info);

class ArtifactReader {
 public:
  // Opens an artifact (or any HDF5 file) read-only. Fails with kNotFound if `path` does
  // not exist, kInvalidInput ("not an HDF5 file: PATH", "corrupt HDF5 file: PATH: ...")
  // if it is not a readable HDF5 file (truncated files included).
  static Expected<ArtifactReader> open(const std::string& path);
  // Reads group `group` of the file at `path` as the artifact ("/" or "": the file's
  // root): a packed parent's values in a segment file (SLUICE_INPUT_<P>_GROUP). Fails
  // with kNotFound when the file or the group is missing.
  static Expected<ArtifactReader> open(const std::string& path, const std::string& group);
  // The same, read-write: the coordinator hashes what an attempt wrote and adds its
  // provenance in one open. Fails with kIo when only reading is possible.
  static Expected<ArtifactReader> open_for_update(const std::string& path);

  ArtifactReader(ArtifactReader&&) noexcept;
  ArtifactReader& operator=(ArtifactReader&&) noexcept;
  ~ArtifactReader();

  const std::string& path() const;
  // The stored keys, in byte order.
  const std::vector<std::string>& keys() const;
  bool contains(const std::string& key) const;

  // Reads the value under `key`. Fails with kNotFound for an unknown key, kInvalidInput
  // if the data is corrupt or of an HDF5 type with no Value equivalent (compound, ...).
  Expected<Value> get(const std::string& key) const;
  // Reads every key into one map.
  Expected<Map> get_all() const;
  Expected<ValueInfo> info(const std::string& key) const;

  // Reads the array `key` in blocks of whole rows (along the first dimension) of at most
  // `block_bytes` (at least one row), calling fn(first_row, block) for each in order; a
  // rank-0 array is one block. Stops at the first error fn returns and returns it.
  // Fails with kInvalidInput if `key` is not an array.
  using BlockFn = std::function<Expected<void>(std::uint64_t first_row, const NdArray& block)>;
  Expected<void> read_array_blocks(const std::string& key, std::size_t block_bytes,
                                   const BlockFn& fn) const;

  // The root attributes (as written by set_attribute; sluice_* ones excluded). Numeric
  // arrays become NdArrays, other unsupported attribute types are skipped.
  Expected<Map> attributes() const;

  // The open file's HDF5 id (a hid_t), to write beside reading (open_for_update).
  std::int64_t hdf5_file() const;
  // Closes the file, writing what is pending; false when that failed (disk full).
  bool close();

 private:
  struct Impl;
  explicit ArtifactReader(std::unique_ptr<Impl> impl);
  static Expected<ArtifactReader> open_with(const std::string& path, unsigned h5f_flags);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice
