// H5Handle: sole owner of one HDF5 identifier, closed with the close function of its kind
// when the handle dies (files, groups, datasets, dataspaces, datatypes, attributes,
// property lists, generic objects). Move-only. Predefined library ids (H5T_NATIVE_*,
// H5P_DEFAULT, H5S_ALL) are never wrapped: they are not ours to close.
// Internal to sluice_core; the codec keeps <hdf5.h> out of public headers.
#pragma once

#include <utility>

#include <hdf5.h>

namespace sluice::h5 {

template <herr_t (*Close)(hid_t)>
class Handle {
 public:
  Handle() = default;
  // Takes ownership of `id` (a negative id means the call that made it failed).
  explicit Handle(hid_t id) : id_(id) {}
  Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)) {}
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { reset(); }

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  explicit operator bool() const { return valid(); }

  // Closes now; returns false if HDF5 reported an error while closing (for files this is
  // where buffered data is flushed, so the caller must look at it).
  bool reset() {
    if (id_ < 0) return true;
    const herr_t rc = Close(std::exchange(id_, H5I_INVALID_HID));
    return rc >= 0;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

using File = Handle<H5Fclose>;
using Group = Handle<H5Gclose>;
using Dataset = Handle<H5Dclose>;
using Dataspace = Handle<H5Sclose>;
using Datatype = Handle<H5Tclose>;
using Attribute = Handle<H5Aclose>;
using PropList = Handle<H5Pclose>;
using Object = Handle<H5Oclose>;  // a group, dataset or named datatype opened with H5Oopen

}  // namespace sluice::h5
