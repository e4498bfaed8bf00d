// A "simulation code" in C++ that writes its result straight into the task's artifact
// with the HDF5 C API, as HPC codes do: a ROWS x COLS field of doubles,
// field[i][j] = i + j/1000. Sluice passes the artifact path in SLUICE_OUTPUT; nothing
// else is needed (no Sluice library).
#include <hdf5.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
  const char* out = std::getenv("SLUICE_OUTPUT");
  if (out == nullptr || argc < 3) {
    std::fprintf(stderr, "usage: SLUICE_OUTPUT=FILE simulate ROWS COLS\n");
    return 2;
  }
  const hsize_t dims[2] = {std::strtoull(argv[1], nullptr, 10),
                           std::strtoull(argv[2], nullptr, 10)};
  std::vector<double> field(dims[0] * dims[1]);
  for (hsize_t i = 0; i < dims[0]; ++i)
    for (hsize_t j = 0; j < dims[1]; ++j)
      field[i * dims[1] + j] = static_cast<double>(i) + static_cast<double>(j) / 1000.0;

  hid_t file = H5Fcreate(out, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t space = H5Screate_simple(2, dims, nullptr);
  hid_t dset = H5Dcreate2(file, "field", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT,
                          H5P_DEFAULT);
  const herr_t rc = H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, field.data());
  H5Dclose(dset);
  H5Sclose(space);
  if (H5Fclose(file) < 0 || rc < 0) return 1;
  std::printf("wrote field[%llu][%llu] to %s\n", static_cast<unsigned long long>(dims[0]),
              static_cast<unsigned long long>(dims[1]), out);
  return 0;
}
