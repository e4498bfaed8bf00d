// Writing artifacts: ArtifactWriter (values, attributes, commit by rename) and
// ArrayWriter (big arrays appended in blocks of rows).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>

#include "artifacts/hdf5_util.hpp"
#include "sluice/engine/hdf5_codec.hpp"

namespace sluice {

using hdf5_detail::child_path;
using hdf5_detail::file_type;
using hdf5_detail::h5_error;
using hdf5_detail::in_quotes;
using hdf5_detail::kTypeAttr;
using hdf5_detail::make_bool_enum;
using hdf5_detail::make_utf8_vlen;
using hdf5_detail::mem_type;
using hdf5_detail::no_file_locking_fapl;
using hdf5_detail::QuietErrors;

namespace {

Expected<void> check_name(const std::string& name, const std::string& where) {
  if (name.empty() || name == "." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    return make_error(ErrorCode::kInvalidInput,
                      "invalid key " + in_quotes(where) +
                          ": keys must be non-empty, contain no '/' or NUL and not be \".\"");
  }
  return {};
}

// Types and property lists a writer needs, made on first use (an artifact holding one
// number needs none of them).
class WriteTypes {
 public:
  hid_t utf8() {
    if (!utf8_) utf8_ = make_utf8_vlen();
    return utf8_.get();
  }
  hid_t boolean() {
    if (!bool_) bool_ = make_bool_enum();
    return bool_.get();
  }
  // Link creation properties for `name`: UTF-8 encoded names are marked as such.
  hid_t lcpl_for(const std::string& name) {
    if (std::all_of(name.begin(), name.end(), [](char c) { return (c & 0x80) == 0; })) {
      return H5P_DEFAULT;
    }
    if (!utf8_lcpl_) {
      utf8_lcpl_ = h5::PropList(H5Pcreate(H5P_LINK_CREATE));
      H5Pset_char_encoding(utf8_lcpl_.get(), H5T_CSET_UTF8);
    }
    return utf8_lcpl_.get();
  }
  // Dataset creation properties for `bytes` of data: compact layout when asked for and
  // small enough (an object header holds at most 64 KiB).
  void set_compact(bool on) { compact_ = on; }
  // Packed files leave `sluice_type` off scalars: their HDF5 type reads back as the same
  // Value (artifact-layout.md), and one attribute less per value is a third of the work.
  bool typed_scalars() const { return !compact_; }
  hid_t dcpl_for(std::uint64_t bytes) {
    if (!compact_ || bytes > 16 * 1024) return H5P_DEFAULT;
    if (!compact_dcpl_) {
      compact_dcpl_ = h5::PropList(H5Pcreate(H5P_DATASET_CREATE));
      H5Pset_layout(compact_dcpl_.get(), H5D_COMPACT);
    }
    return compact_dcpl_.get();
  }

 private:
  h5::Datatype utf8_, bool_;
  h5::PropList utf8_lcpl_, compact_dcpl_;
  bool compact_ = false;
};

// A fixed-length ASCII string (numpy "S" type), not a variable-length one: variable-length
// strings live in a global heap that costs 4 KiB and ~10 us per small file.
bool write_type_attr(hid_t obj, const char* type) {
  h5::Datatype t(H5Tcopy(H5T_C_S1));
  H5Tset_size(t.get(), std::strlen(type));
  H5Tset_strpad(t.get(), H5T_STR_NULLPAD);
  h5::Dataspace space(H5Screate(H5S_SCALAR));
  h5::Attribute a(H5Acreate2(obj, kTypeAttr, t.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
  return a && H5Awrite(a.get(), t.get(), type) >= 0;
}

// One dataset: `ftype` on disk, `mtype` in memory, shape `dims` (nullopt: null dataspace).
Expected<void> write_dataset(hid_t loc, const std::string& name, const std::string& where,
                             WriteTypes& t, hid_t ftype, hid_t mtype,
                             const std::optional<std::vector<std::uint64_t>>& dims,
                             const void* data, const char* type_name) {
  h5::Dataspace space;
  if (!dims) {
    space = h5::Dataspace(H5Screate(H5S_NULL));
  } else if (dims->empty()) {
    space = h5::Dataspace(H5Screate(H5S_SCALAR));
  } else {
    if (dims->size() > H5S_MAX_RANK) {
      return make_error(ErrorCode::kInvalidInput,
                        "array " + in_quotes(where) + " has more than 32 dimensions");
    }
    std::vector<hsize_t> d(dims->begin(), dims->end());
    space = h5::Dataspace(H5Screate_simple(static_cast<int>(d.size()), d.data(), nullptr));
  }
  // A null dataspace has no data to lay out.
  const std::uint64_t bytes = dims ? shape_elements(*dims) * H5Tget_size(mtype) : 0;
  h5::Dataset ds(H5Dcreate2(loc, name.c_str(), ftype, space.get(), t.lcpl_for(name),
                            dims ? t.dcpl_for(bytes) : H5P_DEFAULT, H5P_DEFAULT));
  if (!ds) return h5_error(ErrorCode::kIo, "cannot create " + in_quotes(where));
  const bool has_data = dims && shape_elements(*dims) > 0;
  if (has_data && H5Dwrite(ds.get(), mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
    return h5_error(ErrorCode::kIo, "cannot write " + in_quotes(where));
  }
  const bool scalar = !dims || dims->empty();
  if ((!scalar || t.typed_scalars()) && !write_type_attr(ds.get(), type_name)) {
    return h5_error(ErrorCode::kIo, "cannot write " + in_quotes(where));
  }
  if (!ds.reset()) return h5_error(ErrorCode::kIo, "cannot write " + in_quotes(where));
  return {};
}

Expected<void> write_value(hid_t loc, const std::string& name, const std::string& where,
                           WriteTypes& t, const Value& v);

Expected<void> write_group(hid_t loc, const std::string& name, const std::string& where,
                           WriteTypes& t, const Value& v) {
  h5::Group g(H5Gcreate2(loc, name.c_str(), t.lcpl_for(name), H5P_DEFAULT, H5P_DEFAULT));
  if (!g) return h5_error(ErrorCode::kIo, "cannot create " + in_quotes(where));
  if (!write_type_attr(g.get(), type_name(v.type()))) {
    return h5_error(ErrorCode::kIo, "cannot write " + in_quotes(where));
  }
  if (const List* list = v.get_if<List>()) {
    for (std::size_t i = 0; i < list->size(); ++i) {
      const std::string member = std::to_string(i);
      auto ok = write_value(g.get(), member, child_path(where, member), t, (*list)[i]);
      if (!ok) return ok;
    }
  } else {
    for (const auto& [key, value] : v.get<Map>()) {
      const std::string path = child_path(where, key);
      if (auto ok = check_name(key, path); !ok) return ok;
      if (auto ok = write_value(g.get(), key, path, t, value); !ok) return ok;
    }
  }
  if (!g.reset()) return h5_error(ErrorCode::kIo, "cannot write " + in_quotes(where));
  return {};
}

Expected<void> write_value(hid_t loc, const std::string& name, const std::string& where,
                           WriteTypes& t, const Value& v) {
  using S = std::vector<std::uint64_t>;
  const char* tn = type_name(v.type());
  switch (v.type()) {
    case Value::Type::kNull:
      return write_dataset(loc, name, where, t, H5T_STD_I8LE, H5T_NATIVE_INT8, std::nullopt,
                           nullptr, tn);
    case Value::Type::kBool: {
      const std::int8_t b = v.get<bool>() ? 1 : 0;
      return write_dataset(loc, name, where, t, t.boolean(), t.boolean(), S{}, &b, tn);
    }
    case Value::Type::kInt:
      return write_dataset(loc, name, where, t, H5T_STD_I64LE, H5T_NATIVE_INT64, S{},
                           &v.get<std::int64_t>(), tn);
    case Value::Type::kDouble:
      return write_dataset(loc, name, where, t, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, S{},
                           &v.get<double>(), tn);
    case Value::Type::kString: {
      const std::string& s = v.get<std::string>();
      if (s.find('\0') != std::string::npos) {
        return make_error(
            ErrorCode::kInvalidInput,
            "string " + in_quotes(where) + " contains a NUL byte (HDF5 cannot store it)");
      }
      const char* p = s.c_str();
      return write_dataset(loc, name, where, t, t.utf8(), t.utf8(), S{}, &p, tn);
    }
    case Value::Type::kArray: {
      const NdArray& a = v.get<NdArray>();
      return write_dataset(loc, name, where, t, file_type(a.dtype()), mem_type(a.dtype()),
                           a.shape(), a.data(), tn);
    }
    case Value::Type::kList:
    case Value::Type::kMap:
      return write_group(loc, name, where, t, v);
  }
  return {};
}

}  // namespace

Expected<void> hdf5_detail::write_values_compact(hid_t loc, const Map& values,
                                                 const std::string& where) {
  WriteTypes t;
  t.set_compact(true);
  for (const auto& [key, value] : values) {
    const std::string path = child_path(where, key);
    if (auto ok = check_name(key, path); !ok) return ok;
    if (auto ok = write_value(loc, key, path, t, value); !ok) return ok;
  }
  return {};
}

namespace {

std::string temp_path_for(const std::string& path) {
  static std::atomic<unsigned> counter{0};
  return path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

bool fsync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

// ---- ArtifactWriter ----

struct ArtifactWriter::Impl {
  std::string path;
  std::string tmp_path;
  ArtifactOptions options;
  WriteTypes types;
  h5::File file;
  std::string open_array;  // key of an array begun and not yet finished

  // Closes the file and removes the temporary file (no-op once committed).
  void discard() {
    if (!file) return;
    file.reset();
    ::unlink(tmp_path.c_str());
  }
  Expected<void> check_open() const {
    if (!file) return make_error(ErrorCode::kConflict, "artifact " + path + " is already closed");
    return {};
  }
};

ArtifactWriter::ArtifactWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ArtifactWriter::ArtifactWriter(ArtifactWriter&&) noexcept = default;
ArtifactWriter& ArtifactWriter::operator=(ArtifactWriter&& o) noexcept {
  if (this != &o) {
    QuietErrors quiet;
    if (impl_) impl_->discard();
    impl_ = std::move(o.impl_);
  }
  return *this;
}
ArtifactWriter::~ArtifactWriter() {
  if (!impl_) return;
  QuietErrors quiet;
  impl_->discard();
}

const std::string& ArtifactWriter::path() const {
  return impl_->path;
}

Expected<ArtifactWriter> ArtifactWriter::create(const std::string& path, ArtifactOptions options) {
  QuietErrors quiet;
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->tmp_path = temp_path_for(path);
  impl->options = options;
  h5::PropList fapl = no_file_locking_fapl();
  // The 1.8 file format: compact groups and small files, readable by any HDF5 since 1.8.
  H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_V18);
  impl->file = h5::File(H5Fcreate(impl->tmp_path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()));
  if (!impl->file) {
    return h5_error(ErrorCode::kIo, "cannot create artifact " + impl->tmp_path);
  }
  return ArtifactWriter(std::move(impl));
}

Expected<void> ArtifactWriter::put(const std::string& key, const Value& value) {
  QuietErrors quiet;
  if (auto ok = impl_->check_open(); !ok) return ok;
  if (auto ok = check_name(key, key); !ok) return ok;
  const hid_t root = impl_->file.get();
  if (H5Lexists(root, key.c_str(), H5P_DEFAULT) > 0) {
    return make_error(ErrorCode::kConflict,
                      "key " + in_quotes(key) + " is already in the artifact");
  }
  auto ok = write_value(root, key, key, impl_->types, value);
  if (!ok && H5Lexists(root, key.c_str(), H5P_DEFAULT) > 0) {
    H5Ldelete(root, key.c_str(), H5P_DEFAULT);  // no half-written value under `key`
  }
  return ok;
}

Expected<void> ArtifactWriter::set_attribute(const std::string& name, const Value& value) {
  QuietErrors quiet;
  if (auto ok = impl_->check_open(); !ok) return ok;
  if (name.empty() || name.starts_with("sluice_") || name.find('\0') != std::string::npos) {
    return make_error(ErrorCode::kInvalidInput, "invalid attribute name " + in_quotes(name) +
                                                    ": empty, or reserved (sluice_*)");
  }
  WriteTypes& t = impl_->types;
  hid_t ftype = H5I_INVALID_HID, mtype = H5I_INVALID_HID;
  const void* data = nullptr;
  std::int8_t b = 0;
  const char* s = nullptr;
  switch (value.type()) {
    case Value::Type::kBool:
      b = value.get<bool>() ? 1 : 0;
      ftype = mtype = t.boolean();
      data = &b;
      break;
    case Value::Type::kInt:
      ftype = H5T_STD_I64LE, mtype = H5T_NATIVE_INT64, data = &value.get<std::int64_t>();
      break;
    case Value::Type::kDouble:
      ftype = H5T_IEEE_F64LE, mtype = H5T_NATIVE_DOUBLE, data = &value.get<double>();
      break;
    case Value::Type::kString:
      if (value.get<std::string>().find('\0') != std::string::npos) {
        return make_error(ErrorCode::kInvalidInput,
                          "attribute " + in_quotes(name) + " contains a NUL byte");
      }
      s = value.get<std::string>().c_str();
      ftype = mtype = t.utf8();
      data = &s;
      break;
    default:
      return make_error(ErrorCode::kInvalidInput, "attribute " + in_quotes(name) +
                                                      " must be a bool, int64, float64 or "
                                                      "string, not " +
                                                      describe(value));
  }
  const hid_t root = impl_->file.get();
  if (H5Aexists(root, name.c_str()) > 0) H5Adelete(root, name.c_str());
  h5::Dataspace space(H5Screate(H5S_SCALAR));
  h5::Attribute a(H5Acreate2(root, name.c_str(), ftype, space.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!a || H5Awrite(a.get(), mtype, data) < 0 || !a.reset()) {
    return h5_error(ErrorCode::kIo, "cannot write attribute " + in_quotes(name));
  }
  return {};
}

Expected<void> ArtifactWriter::commit() {
  QuietErrors quiet;
  if (auto ok = impl_->check_open(); !ok) return ok;
  if (!impl_->open_array.empty()) {
    const std::string key = impl_->open_array;
    impl_->discard();
    return make_error(ErrorCode::kInvalidInput, "array " + in_quotes(key) +
                                                    " was begun but not finished; artifact " +
                                                    impl_->path + " discarded");
  }
  if (!impl_->file.reset()) {
    ::unlink(impl_->tmp_path.c_str());
    return h5_error(ErrorCode::kIo, "cannot write artifact " + impl_->path);
  }
  auto fail = [&](const std::string& what) {
    const int err = errno;
    ::unlink(impl_->tmp_path.c_str());
    return make_error(ErrorCode::kIo, what + ": " + std::strerror(err));
  };
  if (impl_->options.durable && !fsync_path(impl_->tmp_path, O_RDONLY)) {
    return fail("cannot fsync " + impl_->tmp_path);
  }
  if (::rename(impl_->tmp_path.c_str(), impl_->path.c_str()) != 0) {
    return fail("cannot rename " + impl_->tmp_path + " to " + impl_->path);
  }
  if (impl_->options.durable) {
    std::string dir = std::filesystem::path(impl_->path).parent_path().string();
    if (!fsync_path(dir.empty() ? "." : dir, O_RDONLY | O_DIRECTORY)) {
      return make_error(ErrorCode::kIo,
                        "cannot fsync directory of " + impl_->path + ": " + std::strerror(errno));
    }
  }
  return {};
}

// ---- ArrayWriter ----

struct ArrayWriter::Impl {
  ArtifactWriter::Impl* owner = nullptr;
  std::string key;
  DType dtype = DType::kFloat64;
  std::vector<hsize_t> dims;
  std::uint64_t row_elements = 0;
  std::uint64_t rows_written = 0;
  h5::Dataset dataset;  // reset by finish()
};

ArrayWriter::ArrayWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ArrayWriter::ArrayWriter(ArrayWriter&&) noexcept = default;
ArrayWriter& ArrayWriter::operator=(ArrayWriter&&) noexcept = default;
ArrayWriter::~ArrayWriter() {
  QuietErrors quiet;
  impl_.reset();
}

std::uint64_t ArrayWriter::rows_total() const {
  return impl_->dims[0];
}
std::uint64_t ArrayWriter::rows_written() const {
  return impl_->rows_written;
}
std::uint64_t ArrayWriter::row_elements() const {
  return impl_->row_elements;
}

Expected<ArrayWriter> ArtifactWriter::begin_array(const std::string& key, DType dtype,
                                                  std::vector<std::uint64_t> shape,
                                                  std::uint64_t chunk_rows) {
  QuietErrors quiet;
  if (auto ok = impl_->check_open(); !ok) return tl::unexpected(ok.error());
  if (auto ok = check_name(key, key); !ok) return tl::unexpected(ok.error());
  if (!impl_->open_array.empty()) {
    return make_error(ErrorCode::kConflict,
                      "array " + in_quotes(impl_->open_array) + " is still being written");
  }
  if (shape.empty() || shape.size() > H5S_MAX_RANK) {
    return make_error(ErrorCode::kInvalidInput,
                      "array " + in_quotes(key) + " must have between 1 and 32 dimensions");
  }
  const hid_t root = impl_->file.get();
  if (H5Lexists(root, key.c_str(), H5P_DEFAULT) > 0) {
    return make_error(ErrorCode::kConflict,
                      "key " + in_quotes(key) + " is already in the artifact");
  }
  auto a = std::make_unique<ArrayWriter::Impl>();
  a->owner = impl_.get();
  a->key = key;
  a->dtype = dtype;
  a->dims.assign(shape.begin(), shape.end());
  a->row_elements = shape_elements(std::span(shape).subspan(1));

  h5::PropList dcpl(H5Pcreate(H5P_DATASET_CREATE));
  H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER);  // every element gets written
  h5::PropList dapl(H5Pcreate(H5P_DATASET_ACCESS));
  if (chunk_rows > 0 && shape_elements(shape) > 0) {
    std::vector<hsize_t> chunk = a->dims;
    chunk[0] = std::min<hsize_t>(chunk_rows, chunk[0]);
    const std::vector<std::uint64_t> chunk_shape(chunk.begin(), chunk.end());
    const std::uint64_t chunk_bytes = shape_elements(chunk_shape) * dtype_size(dtype);
    if (chunk_bytes >= (std::uint64_t{1} << 32)) {
      return make_error(ErrorCode::kInvalidInput,
                        "array " + in_quotes(key) + ": chunks must be smaller than 4 GiB");
    }
    H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data());
    // Room for two chunks, so appends that straddle a chunk boundary never re-read one.
    const std::size_t cache = std::max<std::size_t>(2 * chunk_bytes, 1 << 20);
    H5Pset_chunk_cache(dapl.get(), 521, cache, 1.0);
  }
  h5::Dataspace space(H5Screate_simple(static_cast<int>(a->dims.size()), a->dims.data(), nullptr));
  a->dataset = h5::Dataset(H5Dcreate2(root, key.c_str(), file_type(dtype), space.get(),
                                      impl_->types.lcpl_for(key), dcpl.get(), dapl.get()));
  if (!a->dataset || !write_type_attr(a->dataset.get(), "array")) {
    return h5_error(ErrorCode::kIo, "cannot create array " + in_quotes(key));
  }
  impl_->open_array = key;
  return ArrayWriter(std::move(a));
}

Expected<void> ArrayWriter::append_raw(DType dtype, const void* data, std::uint64_t elements) {
  QuietErrors quiet;
  Impl& a = *impl_;
  const std::string where = in_quotes(a.key);
  if (!a.dataset) return make_error(ErrorCode::kConflict, "array " + where + " is finished");
  if (dtype != a.dtype) {
    return make_error(ErrorCode::kInvalidInput, std::string("array ") + where + " holds " +
                                                    dtype_name(a.dtype) + ", not " +
                                                    dtype_name(dtype));
  }
  if (a.row_elements == 0 || elements % a.row_elements != 0) {
    return make_error(ErrorCode::kInvalidInput, "array " + where + ": " + std::to_string(elements) +
                                                    " values are not a whole number of rows of " +
                                                    std::to_string(a.row_elements));
  }
  const std::uint64_t rows = elements / a.row_elements;
  if (rows > a.dims[0] - a.rows_written) {
    return make_error(ErrorCode::kInvalidInput, "array " + where + ": appending " +
                                                    std::to_string(rows) + " rows past row " +
                                                    std::to_string(a.dims[0]));
  }
  if (rows == 0) return {};
  std::vector<hsize_t> start(a.dims.size(), 0), count = a.dims;
  start[0] = a.rows_written;
  count[0] = rows;
  h5::Dataspace file_space(H5Dget_space(a.dataset.get()));
  h5::Dataspace mem_space(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr));
  if (H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(),
                          nullptr) < 0 ||
      H5Dwrite(a.dataset.get(), mem_type(a.dtype), mem_space.get(), file_space.get(), H5P_DEFAULT,
               data) < 0) {
    return h5_error(ErrorCode::kIo, "cannot write rows of array " + where);
  }
  a.rows_written += rows;
  return {};
}

Expected<void> ArrayWriter::finish() {
  QuietErrors quiet;
  Impl& a = *impl_;
  if (!a.dataset) return {};
  if (a.rows_written != a.dims[0] && a.row_elements > 0) {
    return make_error(ErrorCode::kInvalidInput, "array " + in_quotes(a.key) + " is incomplete: " +
                                                    std::to_string(a.rows_written) + " of " +
                                                    std::to_string(a.dims[0]) + " rows written");
  }
  if (!a.dataset.reset()) return h5_error(ErrorCode::kIo, "cannot write array " + in_quotes(a.key));
  a.owner->open_array.clear();
  return {};
}

}  // namespace sluice
