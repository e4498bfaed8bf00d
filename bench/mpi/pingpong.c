/* MPI round-trip latency between rank 0 and every other rank, the way the `mpi`
 * backend talks: a small message (64 bytes) there and back. Prints the median round
 * trip in microseconds over all (rank 0, worker) pairs. Run with the same ranks as
 * the workload it is compared with (bench/mpi_bench.sh).
 *
 *   mpirun -n 3 ./mpi_pingpong [iterations]      -> "mpi_rtt_us=3.81"
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const int iters = argc > 1 ? atoi(argv[1]) : 2000;
  char buf[64] = {0};
  double* rtt = malloc(sizeof(double) * (size_t)(iters > 0 ? iters : 1) * (size_t)(size > 1 ? size - 1 : 1));
  int n = 0;
  for (int peer = 1; peer < size; ++peer) {
    MPI_Barrier(MPI_COMM_WORLD);
    for (int i = -100; i < iters; ++i) { /* 100 warm-up round trips */
      if (rank == 0) {
        double t0 = MPI_Wtime();
        MPI_Send(buf, 64, MPI_BYTE, peer, 1, MPI_COMM_WORLD);
        MPI_Recv(buf, 64, MPI_BYTE, peer, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (i >= 0) rtt[n++] = (MPI_Wtime() - t0) * 1e6;
      } else if (rank == peer) {
        MPI_Recv(buf, 64, MPI_BYTE, 0, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Send(buf, 64, MPI_BYTE, 0, 2, MPI_COMM_WORLD);
      }
    }
  }
  if (rank == 0 && n > 0) {
    qsort(rtt, (size_t)n, sizeof(double), cmp);
    printf("mpi_rtt_us=%.2f\n", rtt[n / 2]);
  }
  free(rtt);
  MPI_Finalize();
  return 0;
}
