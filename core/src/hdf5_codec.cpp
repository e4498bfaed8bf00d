#include "sluice/hdf5_codec.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <new>
#include <optional>
#include <string_view>

#include "h5_handle.hpp"

namespace sluice {
namespace {

constexpr const char* kTypeAttr = "sluice_type";

// Silences HDF5's automatic error printing on this thread while alive; the error stack is
// still recorded and read by h5_detail().
class QuietErrors {
 public:
  QuietErrors() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~QuietErrors() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }
  QuietErrors(const QuietErrors&) = delete;
  QuietErrors& operator=(const QuietErrors&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

herr_t innermost_error(unsigned n, const H5E_error2_t* e, void* out) {
  if (n == 0 && e->desc != nullptr) *static_cast<std::string*>(out) = e->desc;
  return 0;
}

// The innermost message on this thread's HDF5 error stack (then clears the stack).
std::string h5_detail() {
  std::string s;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_error, &s);
  H5Eclear2(H5E_DEFAULT);
  return s.empty() ? std::string("HDF5 error") : s;
}

tl::unexpected<Error> h5_error(ErrorCode code, const std::string& what) {
  return make_error(code, what + ": " + h5_detail());
}

std::string in_quotes(const std::string& where) {
  return "'" + where + "'";
}
std::string child_path(const std::string& parent, const std::string& name) {
  return parent.empty() ? name : parent + "/" + name;
}

Expected<void> check_name(const std::string& name, const std::string& where) {
  if (name.empty() || name == "." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    return make_error(ErrorCode::kInvalidInput,
                      "invalid key " + in_quotes(where) +
                          ": keys must be non-empty, contain no '/' or NUL and not be \".\"");
  }
  return {};
}

hid_t file_type(DType t) {
  switch (t) {
    case DType::kUInt8:
      return H5T_STD_U8LE;
    case DType::kInt32:
      return H5T_STD_I32LE;
    case DType::kInt64:
      return H5T_STD_I64LE;
    case DType::kFloat32:
      return H5T_IEEE_F32LE;
    case DType::kFloat64:
      return H5T_IEEE_F64LE;
  }
  return H5I_INVALID_HID;
}

hid_t mem_type(DType t) {
  switch (t) {
    case DType::kUInt8:
      return H5T_NATIVE_UINT8;
    case DType::kInt32:
      return H5T_NATIVE_INT32;
    case DType::kInt64:
      return H5T_NATIVE_INT64;
    case DType::kFloat32:
      return H5T_NATIVE_FLOAT;
    case DType::kFloat64:
      return H5T_NATIVE_DOUBLE;
  }
  return H5I_INVALID_HID;
}

// The DType a numeric HDF5 type reads as without loss (uint64 above INT64_MAX saturates).
std::optional<DType> dtype_for(hid_t type) {
  const H5T_class_t cls = H5Tget_class(type);
  const std::size_t size = H5Tget_size(type);
  if (cls == H5T_INTEGER) {
    const bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
    if (size == 1 && !is_signed) return DType::kUInt8;
    if (size <= 2 || (size == 4 && is_signed)) return DType::kInt32;
    return DType::kInt64;
  }
  if (cls == H5T_FLOAT) return size == 4 ? DType::kFloat32 : DType::kFloat64;
  return std::nullopt;
}

h5::Datatype make_utf8_vlen() {
  h5::Datatype t(H5Tcopy(H5T_C_S1));
  H5Tset_size(t.get(), H5T_VARIABLE);
  H5Tset_cset(t.get(), H5T_CSET_UTF8);
  return t;
}

// h5py's bool: enum of int8 {FALSE = 0, TRUE = 1}.
h5::Datatype make_bool_enum() {
  h5::Datatype t(H5Tenum_create(H5T_NATIVE_INT8));
  const std::int8_t f = 0, tr = 1;
  H5Tenum_insert(t.get(), "FALSE", &f);
  H5Tenum_insert(t.get(), "TRUE", &tr);
  return t;
}

bool is_bool_enum(hid_t type) {
  if (H5Tget_class(type) != H5T_ENUM || H5Tget_size(type) != 1 || H5Tget_nmembers(type) != 2) {
    return false;
  }
  for (unsigned i = 0; i < 2; ++i) {
    char* name = H5Tget_member_name(type, i);
    std::int8_t value = -1;
    H5Tget_member_value(type, i, &value);
    const bool ok = name != nullptr && std::string_view(name) == (value == 0 ? "FALSE" : "TRUE") &&
                    (value == 0 || value == 1);
    H5free_memory(name);
    if (!ok) return false;
  }
  return true;
}

// Reads `n` strings from a dataset or attribute of string type `type`; `read` performs
// the H5Dread/H5Aread into the given memory type and buffer, `space` is its dataspace.
template <class ReadFn>
Expected<std::vector<std::string>> read_strings(hid_t type, hid_t space, std::size_t n,
                                                const std::string& where, ReadFn read) {
  std::vector<std::string> out;
  out.reserve(n);
  if (H5Tis_variable_str(type) > 0) {
    h5::Datatype mem(H5Tcopy(H5T_C_S1));
    H5Tset_size(mem.get(), H5T_VARIABLE);
    H5Tset_cset(mem.get(), H5Tget_cset(type));
    std::vector<char*> buf(n, nullptr);
    if (read(mem.get(), buf.data()) < 0)
      return h5_error(ErrorCode::kInvalidInput, "cannot read strings " + in_quotes(where));
    for (char* s : buf) out.emplace_back(s != nullptr ? s : "");
#if H5_VERSION_GE(1, 12, 0)
    H5Treclaim(mem.get(), space, H5P_DEFAULT, buf.data());
#else
    H5Dvlen_reclaim(mem.get(), space, H5P_DEFAULT, buf.data());
#endif
    return out;
  }
  const std::size_t size = H5Tget_size(type);
  h5::Datatype mem(H5Tcopy(type));
  std::vector<char> buf(n * size);
  if (read(mem.get(), buf.data()) < 0) {
    return h5_error(ErrorCode::kInvalidInput, "cannot read strings " + in_quotes(where));
  }
  const bool space_pad = H5Tget_strpad(type) == H5T_STR_SPACEPAD;
  for (std::size_t i = 0; i < n; ++i) {
    std::string_view s(buf.data() + i * size, size);
    if (space_pad) {
      s = s.substr(0, s.find_last_not_of(' ') + 1);
    } else if (auto nul = s.find('\0'); nul != std::string_view::npos) {
      s = s.substr(0, nul);
    }
    out.emplace_back(s);
  }
  return out;
}

std::optional<std::string> read_type_attr(hid_t obj) {
  if (H5Aexists(obj, kTypeAttr) <= 0) return std::nullopt;
  h5::Attribute a(H5Aopen(obj, kTypeAttr, H5P_DEFAULT));
  h5::Datatype t(H5Aget_type(a.get()));
  h5::Dataspace s(H5Aget_space(a.get()));
  if (!a || H5Tget_class(t.get()) != H5T_STRING || H5Sget_simple_extent_npoints(s.get()) != 1) {
    return std::nullopt;
  }
  auto v = read_strings(t.get(), s.get(), 1, kTypeAttr,
                        [&](hid_t mem, void* buf) { return H5Aread(a.get(), mem, buf); });
  if (!v) return std::nullopt;
  return (*v)[0];
}

// Dataspace shape; nullopt for a null dataspace.
std::optional<std::vector<std::uint64_t>> shape_of(hid_t space) {
  if (H5Sget_simple_extent_type(space) == H5S_NULL) return std::nullopt;
  const int rank = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(std::max(rank, 0));
  if (rank > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  return std::vector<std::uint64_t>(dims.begin(), dims.end());
}

#if H5_VERSION_GE(1, 12, 0)
using LinkInfo = H5L_info2_t;
#else
using LinkInfo = H5L_info_t;
#endif

herr_t collect_name(hid_t, const char* name, const LinkInfo*, void* out) {
  static_cast<std::vector<std::string>*>(out)->emplace_back(name);
  return 0;
}

Expected<std::vector<std::string>> member_names(hid_t group, const std::string& where) {
  std::vector<std::string> names;
  if (H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_name, &names) < 0) {
    return h5_error(ErrorCode::kInvalidInput, "cannot list " + in_quotes(where));
  }
  return names;
}

h5::PropList no_file_locking_fapl() {
  // Artifacts are immutable once renamed into place, so HDF5's flock buys nothing, and it
  // fails outright on file systems without flock (some Lustre/NFS mounts).
  h5::PropList fapl(H5Pcreate(H5P_FILE_ACCESS));
  H5Pset_file_locking(fapl.get(), false, true);
  return fapl;
}

// ---- Writing ----

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

 private:
  h5::Datatype utf8_, bool_;
  h5::PropList utf8_lcpl_;
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
  h5::Dataset ds(H5Dcreate2(loc, name.c_str(), ftype, space.get(), t.lcpl_for(name), H5P_DEFAULT,
                            H5P_DEFAULT));
  if (!ds) return h5_error(ErrorCode::kIo, "cannot create " + in_quotes(where));
  const bool has_data = dims && shape_elements(*dims) > 0;
  if (has_data && H5Dwrite(ds.get(), mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
    return h5_error(ErrorCode::kIo, "cannot write " + in_quotes(where));
  }
  if (!write_type_attr(ds.get(), type_name) || !ds.reset()) {
    return h5_error(ErrorCode::kIo, "cannot write " + in_quotes(where));
  }
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

// ---- Reading ----

namespace {

// What a dataset holds, from its metadata alone.
struct DatasetKind {
  Value::Type type = Value::Type::kNull;
  DType dtype = DType::kFloat64;
  std::vector<std::uint64_t> shape;
  bool is_bool = false;    // bool or (rank >= 1) a uint8 array of 0/1 read from a bool enum
  bool is_string = false;  // string, or (rank >= 1) a list of strings
};

Expected<DatasetKind> classify(hid_t ds, hid_t type, hid_t space, const std::string& where) {
  DatasetKind k;
  const std::optional<std::string> st = read_type_attr(ds);
  auto shape = shape_of(space);
  if (!shape || st == "null") return k;
  k.shape = std::move(*shape);
  const bool scalar = k.shape.empty() && st != "array";
  const H5T_class_t cls = H5Tget_class(type);
  if (cls == H5T_STRING) {
    k.is_string = true;
    k.type = scalar ? Value::Type::kString : Value::Type::kList;
  } else if (is_bool_enum(type) || (st == "bool" && cls == H5T_INTEGER)) {
    k.is_bool = true;
    k.dtype = DType::kUInt8;
    k.type = scalar ? Value::Type::kBool : Value::Type::kArray;
  } else if (auto dt = dtype_for(type)) {
    k.dtype = *dt;
    const bool integer = cls == H5T_INTEGER;
    k.type = !scalar ? Value::Type::kArray : integer ? Value::Type::kInt : Value::Type::kDouble;
  } else {
    return make_error(ErrorCode::kInvalidInput, in_quotes(where) + " has an HDF5 datatype (class " +
                                                    std::to_string(static_cast<int>(cls)) +
                                                    ") with no Sluice equivalent");
  }
  return k;
}

Expected<Value> read_object(hid_t loc, const std::string& name, const std::string& where);

Expected<Value> read_group(hid_t g, const std::string& where) {
  const std::optional<std::string> st = read_type_attr(g);
  if (st == "null") return Value();
  auto names = member_names(g, where);
  if (!names) return tl::unexpected(names.error());
  if (st == "list") {
    List list(names->size());
    std::vector<bool> seen(names->size(), false);
    for (const std::string& n : *names) {
      char* end = nullptr;
      const unsigned long long i = std::strtoull(n.c_str(), &end, 10);
      if (n.empty() || *end != '\0' || (n.size() > 1 && n[0] == '0') || i >= list.size() ||
          seen[i]) {
        return make_error(ErrorCode::kInvalidInput, "list " + in_quotes(where) + " has a member " +
                                                        in_quotes(n) + " that is not an index 0.." +
                                                        std::to_string(list.size() - 1));
      }
      seen[i] = true;
      auto v = read_object(g, n, child_path(where, n));
      if (!v) return v;
      list[i] = std::move(*v);
    }
    return Value(std::move(list));
  }
  Map map;
  for (const std::string& n : *names) {
    auto v = read_object(g, n, child_path(where, n));
    if (!v) return v;
    map.insert_or_assign(n, std::move(*v));  // names come sorted: appends
  }
  return Value(std::move(map));
}

Expected<Value> read_dataset(hid_t ds, const std::string& where) {
  h5::Datatype type(H5Dget_type(ds));
  h5::Dataspace space(H5Dget_space(ds));
  if (!type || !space) return h5_error(ErrorCode::kInvalidInput, "cannot read " + in_quotes(where));
  auto kind = classify(ds, type.get(), space.get(), where);
  if (!kind) return tl::unexpected(kind.error());
  auto read_error = [&] {
    return h5_error(ErrorCode::kInvalidInput, "cannot read " + in_quotes(where));
  };
  if (kind->type == Value::Type::kNull) return Value();
  if (kind->is_string) {
    auto strings = read_strings(
        type.get(), space.get(), shape_elements(kind->shape), where,
        [&](hid_t mem, void* buf) { return H5Dread(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf); });
    if (!strings) return tl::unexpected(strings.error());
    if (kind->type == Value::Type::kString) return Value(std::move((*strings)[0]));
    return Value(
        List(std::make_move_iterator(strings->begin()), std::make_move_iterator(strings->end())));
  }
  // Bools read through their own enum type (HDF5 converts no enum to integers).
  h5::Datatype native_enum;
  if (kind->is_bool && H5Tget_class(type.get()) == H5T_ENUM) {
    native_enum = h5::Datatype(H5Tget_native_type(type.get(), H5T_DIR_DEFAULT));
  }
  const hid_t bool_mem = native_enum ? native_enum.get() : H5T_NATIVE_UINT8;
  switch (kind->type) {
    case Value::Type::kBool: {
      std::uint8_t b = 0;
      if (H5Dread(ds, bool_mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, &b) < 0) return read_error();
      return Value(b != 0);
    }
    case Value::Type::kInt: {
      std::int64_t i = 0;
      if (H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, &i) < 0) return read_error();
      return Value(i);
    }
    case Value::Type::kDouble: {
      double d = 0;
      if (H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &d) < 0)
        return read_error();
      return Value(d);
    }
    default:
      break;
  }
  try {
    NdArray a(kind->dtype, kind->shape);
    const hid_t mem = kind->is_bool ? bool_mem : mem_type(kind->dtype);
    if (a.size() > 0 && H5Dread(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, a.data()) < 0) {
      return read_error();
    }
    return Value(std::move(a));
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kInvalidInput,
                      "array " + in_quotes(where) + " is too large for memory; read it in blocks");
  }
}

Expected<Value> read_object(hid_t loc, const std::string& name, const std::string& where) {
  h5::Object obj(H5Oopen(loc, name.c_str(), H5P_DEFAULT));
  if (!obj) return h5_error(ErrorCode::kInvalidInput, "cannot open " + in_quotes(where));
  switch (H5Iget_type(obj.get())) {
    case H5I_GROUP:
      return read_group(obj.get(), where);
    case H5I_DATASET:
      return read_dataset(obj.get(), where);
    default:
      return make_error(ErrorCode::kInvalidInput,
                        in_quotes(where) + " is neither a group nor a dataset");
  }
}

}  // namespace

struct ArtifactReader::Impl {
  std::string path;
  h5::File file;
  std::vector<std::string> keys;

  Expected<h5::Object> open(const std::string& key) const {
    if (!std::binary_search(keys.begin(), keys.end(), key)) {
      return make_error(ErrorCode::kNotFound, "no key " + in_quotes(key) + " in " + path);
    }
    h5::Object obj(H5Oopen(file.get(), key.c_str(), H5P_DEFAULT));
    if (!obj) return h5_error(ErrorCode::kInvalidInput, "cannot open " + in_quotes(key));
    return obj;
  }
};

ArtifactReader::ArtifactReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ArtifactReader::ArtifactReader(ArtifactReader&&) noexcept = default;
ArtifactReader& ArtifactReader::operator=(ArtifactReader&& o) noexcept {
  QuietErrors quiet;
  impl_ = std::move(o.impl_);
  return *this;
}
ArtifactReader::~ArtifactReader() {
  QuietErrors quiet;
  impl_.reset();
}

Expected<ArtifactReader> ArtifactReader::open(const std::string& path) {
  QuietErrors quiet;
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  h5::PropList fapl = no_file_locking_fapl();
  impl->file = h5::File(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()));
  if (!impl->file) {
    const std::string detail = h5_detail();
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      return make_error(ErrorCode::kNotFound, "no such artifact: " + path);
    }
    if (H5Fis_hdf5(path.c_str()) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return make_error(ErrorCode::kInvalidInput, "not an HDF5 file: " + path);
    }
    return make_error(ErrorCode::kInvalidInput, "corrupt HDF5 file: " + path + ": " + detail);
  }
  auto keys = member_names(impl->file.get(), path);
  if (!keys) return tl::unexpected(keys.error());
  impl->keys = std::move(*keys);
  if (!std::is_sorted(impl->keys.begin(), impl->keys.end())) {
    std::sort(impl->keys.begin(), impl->keys.end());
  }
  return ArtifactReader(std::move(impl));
}

const std::string& ArtifactReader::path() const {
  return impl_->path;
}
const std::vector<std::string>& ArtifactReader::keys() const {
  return impl_->keys;
}
bool ArtifactReader::contains(const std::string& key) const {
  return std::binary_search(impl_->keys.begin(), impl_->keys.end(), key);
}

Expected<Value> ArtifactReader::get(const std::string& key) const {
  QuietErrors quiet;
  if (!contains(key))
    return make_error(ErrorCode::kNotFound, "no key " + in_quotes(key) + " in " + impl_->path);
  return read_object(impl_->file.get(), key, key);
}

Expected<Map> ArtifactReader::get_all() const {
  Map all;
  for (const std::string& key : impl_->keys) {
    auto v = get(key);
    if (!v) return tl::unexpected(v.error());
    all.insert_or_assign(key, std::move(*v));
  }
  return all;
}

Expected<ValueInfo> ArtifactReader::info(const std::string& key) const {
  QuietErrors quiet;
  auto obj = impl_->open(key);
  if (!obj) return tl::unexpected(obj.error());
  ValueInfo info;
  if (H5Iget_type(obj->get()) == H5I_GROUP) {
    const std::optional<std::string> st = read_type_attr(obj->get());
    if (st == "null") return info;
    info.type = st == "list" ? Value::Type::kList : Value::Type::kMap;
    H5G_info_t g;
    if (H5Gget_info(obj->get(), &g) < 0)
      return h5_error(ErrorCode::kInvalidInput, "cannot read " + in_quotes(key));
    info.members = g.nlinks;
    return info;
  }
  h5::Datatype type(H5Dget_type(obj->get()));
  h5::Dataspace space(H5Dget_space(obj->get()));
  auto kind = classify(obj->get(), type.get(), space.get(), key);
  if (!kind) return tl::unexpected(kind.error());
  info.type = kind->type;
  switch (kind->type) {
    case Value::Type::kBool:
      info.size_bytes = 1;
      break;
    case Value::Type::kInt:
    case Value::Type::kDouble:
      info.size_bytes = 8;
      break;
    case Value::Type::kList:
      info.members = shape_elements(kind->shape);
      break;
    case Value::Type::kArray:
      info.dtype = kind->dtype;
      info.shape = kind->shape;
      info.size_bytes = shape_elements(kind->shape) * dtype_size(kind->dtype);
      break;
    default:
      break;
  }
  return info;
}

Expected<void> ArtifactReader::read_array_blocks(const std::string& key, std::size_t block_bytes,
                                                 const BlockFn& fn) const {
  QuietErrors quiet;
  auto obj = impl_->open(key);
  if (!obj) return tl::unexpected(obj.error());
  const hid_t ds = obj->get();
  if (H5Iget_type(ds) != H5I_DATASET) {
    return make_error(ErrorCode::kInvalidInput, in_quotes(key) + " is not an array");
  }
  h5::Datatype type(H5Dget_type(ds));
  h5::Dataspace file_space(H5Dget_space(ds));
  auto kind = classify(ds, type.get(), file_space.get(), key);
  if (!kind) return tl::unexpected(kind.error());
  if (kind->is_string || kind->type == Value::Type::kNull) {
    return make_error(ErrorCode::kInvalidInput, in_quotes(key) + " is not an array");
  }
  h5::Datatype native_enum;
  if (H5Tget_class(type.get()) == H5T_ENUM) {
    native_enum = h5::Datatype(H5Tget_native_type(type.get(), H5T_DIR_DEFAULT));
  }
  const hid_t mem = native_enum ? native_enum.get() : mem_type(kind->dtype);
  const std::vector<std::uint64_t>& shape = kind->shape;
  try {
    if (shape.empty()) {  // rank 0: one element
      NdArray block(kind->dtype, {});
      if (H5Dread(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, block.data()) < 0) {
        return h5_error(ErrorCode::kInvalidInput, "cannot read " + in_quotes(key));
      }
      return fn(0, block);
    }
    if (shape_elements(shape) == 0) return {};
    const std::uint64_t row_bytes =
        shape_elements(std::span(shape).subspan(1)) * dtype_size(kind->dtype);
    const std::uint64_t rows_per_block =
        std::clamp<std::uint64_t>(block_bytes / row_bytes, 1, shape[0]);
    std::vector<std::uint64_t> block_shape = shape;
    block_shape[0] = rows_per_block;
    NdArray block(kind->dtype, block_shape);
    std::vector<hsize_t> start(shape.size(), 0), count(shape.begin(), shape.end());
    for (std::uint64_t row = 0; row < shape[0]; row += rows_per_block) {
      const std::uint64_t rows = std::min(rows_per_block, shape[0] - row);
      if (rows != block_shape[0]) {  // the last, shorter block
        block_shape[0] = rows;
        block = NdArray(kind->dtype, block_shape);
      }
      start[0] = row;
      count[0] = rows;
      h5::Dataspace mem_space(
          H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr));
      if (H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(),
                              nullptr) < 0 ||
          H5Dread(ds, mem, mem_space.get(), file_space.get(), H5P_DEFAULT, block.data()) < 0) {
        return h5_error(ErrorCode::kInvalidInput, "cannot read rows of " + in_quotes(key));
      }
      if (auto ok = fn(row, block); !ok) return ok;
    }
  } catch (const std::bad_alloc&) {
    return make_error(ErrorCode::kInvalidInput,
                      "a block of " + in_quotes(key) + " does not fit in memory");
  }
  return {};
}

Expected<Map> ArtifactReader::attributes() const {
  QuietErrors quiet;
  const hid_t root = impl_->file.get();
  std::vector<std::string> names;
  auto collect = [](hid_t, const char* name, const H5A_info_t*, void* out) -> herr_t {
    static_cast<std::vector<std::string>*>(out)->emplace_back(name);
    return 0;
  };
  if (H5Aiterate2(root, H5_INDEX_NAME, H5_ITER_INC, nullptr, collect, &names) < 0) {
    return h5_error(ErrorCode::kInvalidInput, "cannot list attributes of " + impl_->path);
  }
  Map out;
  for (const std::string& name : names) {
    if (name.starts_with("sluice_")) continue;
    h5::Attribute a(H5Aopen(root, name.c_str(), H5P_DEFAULT));
    h5::Datatype type(H5Aget_type(a.get()));
    h5::Dataspace space(H5Aget_space(a.get()));
    auto shape = shape_of(space.get());
    if (!a || !shape) continue;
    const H5T_class_t cls = H5Tget_class(type.get());
    const std::uint64_t n = shape_elements(*shape);
    auto read = [&](hid_t mem, void* buf) { return H5Aread(a.get(), mem, buf); };
    if (cls == H5T_STRING) {
      auto s = read_strings(type.get(), space.get(), n, name, read);
      if (!s) continue;
      if (shape->empty()) {
        out.insert_or_assign(name, std::move((*s)[0]));
      } else {
        out.insert_or_assign(name, List(s->begin(), s->end()));
      }
    } else if (is_bool_enum(type.get()) && shape->empty()) {
      h5::Datatype mem(H5Tget_native_type(type.get(), H5T_DIR_DEFAULT));
      std::uint8_t b = 0;
      if (read(mem.get(), &b) >= 0) out.insert_or_assign(name, b != 0);
    } else if (auto dt = dtype_for(type.get())) {
      if (shape->empty() && cls == H5T_INTEGER) {
        std::int64_t i = 0;
        if (read(H5T_NATIVE_INT64, &i) >= 0) out.insert_or_assign(name, i);
      } else if (shape->empty()) {
        double d = 0;
        if (read(H5T_NATIVE_DOUBLE, &d) >= 0) out.insert_or_assign(name, d);
      } else {
        NdArray arr(*dt, *shape);
        if (n == 0 || read(mem_type(*dt), arr.data()) >= 0)
          out.insert_or_assign(name, std::move(arr));
      }
    }
  }
  H5Eclear2(H5E_DEFAULT);
  return out;
}

std::string describe(const ValueInfo& info) {
  switch (info.type) {
    case Value::Type::kArray: {
      std::string s = dtype_name(info.dtype);
      s += '[';
      for (std::size_t i = 0; i < info.shape.size(); ++i) {
        if (i > 0) s += ',';
        s += std::to_string(info.shape[i]);
      }
      return s + ']';
    }
    case Value::Type::kList:
      return "list[" + std::to_string(info.members) + "]";
    case Value::Type::kMap:
      return "map{" + std::to_string(info.members) + "}";
    default:
      return type_name(info.type);
  }
}

}  // namespace sluice
