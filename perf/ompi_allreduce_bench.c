/* ompi_allreduce_bench: the Open MPI side of perf/compare_peers.sh. Times MPI_Allreduce
 * (float32, MPI_SUM, out-of-place) the way allreduce_perf times braidAllReduce, so the two
 * tables compare directly:
 *   per size: fill inputs, W warmup calls, MPI_Barrier, N timed calls, time per call =
 *   elapsed / N, reduced over ranks with MPI_MAX (allreduce_perf -a 3); then, with -c 1, fresh
 *   inputs, one more call and an exact check (inputs are small integers: sums are exact).
 * Flags (nccl-tests' letters): -b MIN -e MAX (K/M/G suffixes) -f FACTOR -n ITERS -w WARMUP
 * -c 0|1. Output: '#' header lines, then per size: size(B) count time(us) algbw busbw #wrong,
 * with busbw = algbw * 2(n-1)/n as in nccl-tests. Exit status 1 if any element was wrong. */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static size_t parse_bytes(const char* s) {
  char* end = NULL;
  double v = strtod(s, &end);
  double mult = 1;
  if (*end == 'K' || *end == 'k') mult = 1024.0;
  if (*end == 'M' || *end == 'm') mult = 1024.0 * 1024;
  if (*end == 'G' || *end == 'g') mult = 1024.0 * 1024 * 1024;
  return (size_t)(v * mult);
}

static float input_value(int rank, size_t i) { return (float)((i * 7 + (size_t)rank * 3) % 4); }

int main(int argc, char** argv) {
  size_t min_bytes = 8, max_bytes = 128u << 20, factor = 2;
  int iters = 20, warmup = 5, check = 1, opt;
  MPI_Init(&argc, &argv);
  int rank, nranks;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nranks);
  while ((opt = getopt(argc, argv, "b:e:f:n:w:c:")) != -1) {
    switch (opt) {
      case 'b': min_bytes = parse_bytes(optarg); break;
      case 'e': max_bytes = parse_bytes(optarg); break;
      case 'f': factor = (size_t)atol(optarg); break;
      case 'n': iters = atoi(optarg); break;
      case 'w': warmup = atoi(optarg); break;
      case 'c': check = atoi(optarg); break;
      default:
        if (rank == 0)
          fprintf(stderr, "usage: %s [-b min] [-e max] [-f factor] [-n iters] [-w warmup] "
                          "[-c 0|1]\n", argv[0]);
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
  }
  if (factor < 2 || iters < 1 || min_bytes < 4 || min_bytes > max_bytes) {
    if (rank == 0) fprintf(stderr, "%s: need -f >= 2, -n >= 1, 4 <= -b <= -e\n", argv[0]);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  float* send = malloc(max_bytes);
  float* recv = malloc(max_bytes);
  if (!send || !recv) MPI_Abort(MPI_COMM_WORLD, 2);
  int version_len = 0;
  char version[MPI_MAX_LIBRARY_VERSION_STRING];
  MPI_Get_library_version(version, &version_len);
  if (rank == 0) {
    char* nl = strchr(version, '\n');
    if (nl) *nl = '\0';
    printf("# ompi_allreduce_bench: %d ranks, float sum out-of-place, warmup %d iters %d, "
           "time: max over ranks\n# %s\n", nranks, warmup, iters, version);
    printf("# %10s  %12s  %7s  %6s  %6s  %6s\n", "size", "count", "time", "algbw", "busbw",
           "#wrong");
    printf("# %10s  %12s  %7s  %6s  %6s  %6s\n", "(B)", "(elements)", "(us)", "(GB/s)",
           "(GB/s)", "");
  }
  unsigned long long total_wrong = 0;
  for (size_t bytes = min_bytes; bytes <= max_bytes; bytes *= factor) {
    size_t count = bytes / sizeof(float);
    for (size_t i = 0; i < count; ++i) send[i] = input_value(rank, i);
    for (int k = 0; k < warmup; ++k)
      MPI_Allreduce(send, recv, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (int k = 0; k < iters; ++k)
      MPI_Allreduce(send, recv, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    double mine = (MPI_Wtime() - t0) / iters, t = 0;
    MPI_Allreduce(&mine, &t, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    unsigned long long wrong = 0, my_wrong = 0;
    if (check) {
      memset(recv, 0xA5, count * sizeof(float));
      MPI_Allreduce(send, recv, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
      for (size_t i = 0; i < count; ++i) {
        float expected = 0;
        for (int q = 0; q < nranks; ++q) expected += input_value(q, i);
        my_wrong += recv[i] != expected;
      }
      MPI_Allreduce(&my_wrong, &wrong, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
      total_wrong += wrong;
    }
    if (rank == 0) {
      double us = t * 1e6, algbw = (double)(count * sizeof(float)) / 1e3 / us;
      double busbw = algbw * 2.0 * (nranks - 1) / nranks;
      printf("%12zu  %12zu  %7.2f  %6.2f  %6.2f  %6llu\n", count * sizeof(float), count, us, algbw,
             busbw, wrong);
      fflush(stdout);
    }
    if (bytes > max_bytes / factor) break;
  }
  if (rank == 0) printf("# Out of bounds values : %llu %s\n", total_wrong, total_wrong ? "FAILED" : "OK");
  free(send);
  free(recv);
  MPI_Finalize();
  return total_wrong ? 1 : 0;
}
