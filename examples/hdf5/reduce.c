/* The consumer: reads the parent's 2-D "field" from the artifact Sluice names in
 * SLUICE_INPUT_SIMULATE, sums it, and writes the total into its own artifact. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  const char* in = getenv("SLUICE_INPUT_SIMULATE");
  const char* out = getenv("SLUICE_OUTPUT");
  if (!in || !out) {
    fprintf(stderr, "reduce runs as a Sluice task after `simulate`\n");
    return 2;
  }
  hid_t file = H5Fopen(in, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t dset = H5Dopen2(file, "field", H5P_DEFAULT);
  hid_t space = H5Dget_space(dset);
  hsize_t dims[2];
  H5Sget_simple_extent_dims(space, dims, NULL);
  double* field = malloc(dims[0] * dims[1] * sizeof(double));
  if (H5Dread(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, field) < 0) return 1;
  double total = 0;
  for (hsize_t k = 0; k < dims[0] * dims[1]; ++k) total += field[k];
  H5Sclose(space);
  H5Dclose(dset);
  H5Fclose(file);

  hid_t o = H5Fcreate(out, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t scalar = H5Screate(H5S_SCALAR);
  hid_t t = H5Dcreate2(o, "total", H5T_IEEE_F64LE, scalar, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(t, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &total);
  H5Dclose(t);
  H5Sclose(scalar);
  if (H5Fclose(o) < 0) return 1;
  printf("sum of %llu x %llu field = %.3f\n", (unsigned long long)dims[0],
         (unsigned long long)dims[1], total);
  free(field);
  return 0;
}
