/* A "simulation code" that writes its result straight into the task's artifact with the
 * HDF5 C API, as HPC codes do: a ROWS x COLS field of doubles, field[i][j] = i + j/1000.
 * Sluice passes the artifact path in SLUICE_OUTPUT; nothing else is needed. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
  const char* out = getenv("SLUICE_OUTPUT");
  if (!out || argc < 3) {
    fprintf(stderr, "usage: SLUICE_OUTPUT=FILE simulate ROWS COLS\n");
    return 2;
  }
  hsize_t dims[2] = {(hsize_t)atoll(argv[1]), (hsize_t)atoll(argv[2])};
  double* field = malloc(dims[0] * dims[1] * sizeof(double));
  for (hsize_t i = 0; i < dims[0]; ++i)
    for (hsize_t j = 0; j < dims[1]; ++j) field[i * dims[1] + j] = (double)i + (double)j / 1000.0;

  hid_t file = H5Fcreate(out, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t space = H5Screate_simple(2, dims, NULL);
  hid_t dset = H5Dcreate2(file, "field", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT,
                          H5P_DEFAULT);
  herr_t rc = H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, field);
  H5Dclose(dset);
  H5Sclose(space);
  if (H5Fclose(file) < 0 || rc < 0) return 1;
  printf("wrote field[%llu][%llu] to %s\n", (unsigned long long)dims[0],
         (unsigned long long)dims[1], out);
  free(field);
  return 0;
}
