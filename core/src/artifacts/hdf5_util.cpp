#include "artifacts/hdf5_util.hpp"

#include <cstdint>
#include <string_view>

namespace sluice::hdf5_detail {
namespace {

herr_t innermost_error(unsigned n, const H5E_error2_t* e, void* out) {
  if (n == 0 && e->desc != nullptr) *static_cast<std::string*>(out) = e->desc;
  return 0;
}

}  // namespace

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

h5::PropList no_file_locking_fapl() {
  // Artifacts are immutable once renamed into place, so HDF5's flock buys nothing, and it
  // fails outright on file systems without flock (some Lustre/NFS mounts).
  h5::PropList fapl(H5Pcreate(H5P_FILE_ACCESS));
  H5Pset_file_locking(fapl.get(), false, true);
  return fapl;
}

}  // namespace sluice::hdf5_detail
