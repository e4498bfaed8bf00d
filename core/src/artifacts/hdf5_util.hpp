// Private to the HDF5 codec (hdf5_write.cpp, hdf5_read.cpp): what writing and reading
// share — the sluice_type attribute name, the mapping between Sluice and HDF5 types,
// HDF5 error handling, and the file access properties.
#pragma once

#include <optional>
#include <string>

#include "artifacts/h5_handle.hpp"
#include "sluice/error.hpp"
#include "sluice/value.hpp"

namespace sluice::hdf5_detail {

inline constexpr const char* kTypeAttr = "sluice_type";

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

// The innermost message on this thread's HDF5 error stack (then clears the stack).
std::string h5_detail();
tl::unexpected<Error> h5_error(ErrorCode code, const std::string& what);

std::string in_quotes(const std::string& where);
std::string child_path(const std::string& parent, const std::string& name);

hid_t file_type(DType t);
hid_t mem_type(DType t);
// The DType a numeric HDF5 type reads as without loss (uint64 above INT64_MAX saturates).
std::optional<DType> dtype_for(hid_t type);

h5::Datatype make_utf8_vlen();
// h5py's bool: enum of int8 {FALSE = 0, TRUE = 1}.
h5::Datatype make_bool_enum();
bool is_bool_enum(hid_t type);

h5::PropList no_file_locking_fapl();

// Writes each of `values` under `loc` as an artifact would hold it (same types and
// attributes), small datasets with compact layout (their data inside the object header:
// no separate block). For files that pack many tasks' values (packed_file.hpp).
Expected<void> write_values_compact(hid_t loc, const Map& values, const std::string& where);

}  // namespace sluice::hdf5_detail
