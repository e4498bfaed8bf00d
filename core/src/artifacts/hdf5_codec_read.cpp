// Reading artifacts: ArtifactReader (values, value metadata, arrays in blocks of rows,
// attributes) and describe(ValueInfo).
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <new>
#include <optional>
#include <stdexcept>
#include <string_view>

#include "artifacts/hdf5_util.hpp"
#include "sluice/engine/hdf5_codec.hpp"

namespace sluice {

using hdf5_detail::child_path;
using hdf5_detail::dtype_for;
using hdf5_detail::h5_detail;
using hdf5_detail::h5_error;
using hdf5_detail::in_quotes;
using hdf5_detail::is_bool_enum;
using hdf5_detail::kTypeAttr;
using hdf5_detail::mem_type;
using hdf5_detail::no_file_locking_fapl;
using hdf5_detail::QuietErrors;

namespace {

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

// The bytes `elements` elements of the file's `type` take (saturating).
std::uint64_t declared_bytes(hid_t type, std::uint64_t elements) {
  const std::uint64_t element_bytes = H5Tget_size(type);
  return element_bytes != 0 && elements > UINT64_MAX / element_bytes ? UINT64_MAX
                                                                     : elements * element_bytes;
}

// How many bytes a dataset's storage can expand to when read, or nullopt when its filters
// allow any ratio. Contiguous and compact datasets, and chunked ones without compression,
// hold their elements as stored; deflate expands at most 1032 times (RFC 1951's longest
// match, 258 bytes, per 2 bits). Other compressors (szip, scale-offset, plugins) are not
// bounded here. A mandatory filter this HDF5 library lacks is an error: the data cannot be
// read.
Expected<std::optional<std::uint64_t>> readable_bytes(hid_t ds, hid_t dcpl,
                                                      const std::string& where) {
  const std::uint64_t stored = H5Dget_storage_size(ds);
  if (H5Pget_layout(dcpl) != H5D_CHUNKED) return stored;
  std::uint64_t ratio = 1;
  const int filters = H5Pget_nfilters(dcpl);
  for (int i = 0; i < filters; ++i) {
    unsigned flags = 0;
    std::size_t nelmts = 0;
    unsigned filter_config = 0;
    const H5Z_filter_t id = H5Pget_filter2(dcpl, static_cast<unsigned>(i), &flags, &nelmts, nullptr,
                                           0, nullptr, &filter_config);
    const bool available = id >= 0 && H5Zfilter_avail(id) > 0;
    if (!available && (flags & H5Z_FLAG_OPTIONAL)) return std::optional<std::uint64_t>{};
    if (!available) {
      return make_error(ErrorCode::kInvalidInput,
                        in_quotes(where) + " is compressed with HDF5 filter " + std::to_string(id) +
                            ", which this HDF5 library does not have");
    }
    if (id == H5Z_FILTER_DEFLATE) {
      ratio = std::max<std::uint64_t>(ratio, 1032);
    } else if (id != H5Z_FILTER_SHUFFLE && id != H5Z_FILTER_FLETCHER32) {
      return std::optional<std::uint64_t>{};
    }
  }
  return stored > UINT64_MAX / ratio ? UINT64_MAX : stored * ratio;
}

// A dataset that declares more bytes than its storage can expand to is corrupt (a few
// bytes of a header can ask for gigabytes) and is refused before a buffer of the declared
// size is allocated. Unwritten storage reads as fill values, so up to the size of the
// whole file passes whatever is stored.
Expected<void> check_stored_size(hid_t ds, hid_t type, std::uint64_t elements,
                                 const std::string& where) {
  h5::PropList dcpl(H5Dget_create_plist(ds));
  if (!dcpl) return h5_error(ErrorCode::kInvalidInput, "cannot read " + in_quotes(where));
  const std::uint64_t declared = declared_bytes(type, elements);
  auto readable = readable_bytes(ds, dcpl.get(), where);
  if (!readable) return tl::unexpected(readable.error());
  if (!*readable || declared <= **readable) return {};
  h5::File file(H5Iget_file_id(ds));
  hsize_t file_bytes = 0;
  if (file && H5Fget_filesize(file.get(), &file_bytes) >= 0 && declared <= file_bytes) return {};
  return make_error(ErrorCode::kInvalidInput, "corrupt dataset " + in_quotes(where) +
                                                  ": it declares " + std::to_string(declared) +
                                                  " bytes but stores " +
                                                  std::to_string(H5Dget_storage_size(ds)));
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
  if (auto ok = check_stored_size(ds, type.get(), shape_elements(kind->shape), where); !ok) {
    return tl::unexpected(ok.error());
  }
  if (kind->is_string) {
    auto too_large = [&] {
      return make_error(ErrorCode::kInvalidInput,
                        "strings " + in_quotes(where) + " are too large for memory");
    };
    try {
      auto strings = read_strings(type.get(), space.get(), shape_elements(kind->shape), where,
                                  [&](hid_t mem, void* buf) {
                                    return H5Dread(ds, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
                                  });
      if (!strings) return tl::unexpected(strings.error());
      if (kind->type == Value::Type::kString) return Value(std::move((*strings)[0]));
      return Value(
          List(std::make_move_iterator(strings->begin()), std::make_move_iterator(strings->end())));
    } catch (const std::bad_alloc&) {
      return too_large();
    } catch (const std::length_error&) {  // more elements than a vector's max_size()
      return too_large();
    }
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
  h5::Group group;  // open(path, group): the group read as the artifact's root
  std::vector<std::string> keys;

  hid_t root() const { return group ? group.get() : file.get(); }

  Expected<h5::Object> open(const std::string& key) const {
    if (!std::binary_search(keys.begin(), keys.end(), key)) {
      return make_error(ErrorCode::kNotFound, "no key " + in_quotes(key) + " in " + path);
    }
    h5::Object obj(H5Oopen(root(), key.c_str(), H5P_DEFAULT));
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
  return open_with(path, H5F_ACC_RDONLY);
}

Expected<ArtifactReader> ArtifactReader::open(const std::string& path, const std::string& group) {
  if (group.empty() || group == "/") return open(path);
  QuietErrors quiet;
  auto impl = std::make_unique<Impl>();
  impl->path = path + ":" + group;
  h5::PropList fapl = no_file_locking_fapl();
  impl->file = h5::File(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()));
  if (!impl->file) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
      return make_error(ErrorCode::kNotFound, "no such artifact: " + path);
    return make_error(ErrorCode::kInvalidInput, "corrupt HDF5 file: " + path + ": " + h5_detail());
  }
  impl->group = h5::Group(H5Gopen2(impl->file.get(), group.c_str(), H5P_DEFAULT));
  if (!impl->group) return make_error(ErrorCode::kNotFound, "no group " + group + " in " + path);
  auto keys = member_names(impl->group.get(), impl->path);
  if (!keys) return tl::unexpected(keys.error());
  impl->keys = std::move(*keys);
  std::sort(impl->keys.begin(), impl->keys.end());
  return ArtifactReader(std::move(impl));
}

Expected<ArtifactReader> ArtifactReader::open_for_update(const std::string& path) {
  auto reader = open_with(path, H5F_ACC_RDWR);
  if (reader || reader.error().code != ErrorCode::kInvalidInput) return reader;
  if (auto readable = open(path); readable)  // a readable file this process cannot write
    return make_error(ErrorCode::kIo, "cannot open " + path + " for writing");
  return reader;
}

std::int64_t ArtifactReader::hdf5_file() const {
  return impl_->file.get();
}

bool ArtifactReader::close() {
  return impl_->file.reset();
}

Expected<ArtifactReader> ArtifactReader::open_with(const std::string& path, unsigned flags) {
  QuietErrors quiet;
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  h5::PropList fapl = no_file_locking_fapl();
  impl->file = h5::File(H5Fopen(path.c_str(), flags, fapl.get()));
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
  return read_object(impl_->root(), key, key);
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
  if (auto ok = check_stored_size(ds, type.get(), shape_elements(shape), key); !ok) return ok;
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
  const hid_t root = impl_->root();
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
    // Attributes are stored whole and uncompressed: one declaring more is corrupt.
    if (declared_bytes(type.get(), n) > H5Aget_storage_size(a.get())) continue;
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
