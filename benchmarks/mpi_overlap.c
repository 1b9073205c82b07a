// Does overlapping the gradient allreduce with the backward pass pay on this machine, and
// what does polling a non-blocking allreduce (plinth's way, for its timeout) cost?
//   mpicc -O2 benchmarks/mpi_overlap.c -o /tmp/mpi_overlap
//   mpirun -np 2 /tmp/mpi_overlap 93322 2000000    # floats (the seed CNN), compute per step
// Each "step" is 10 slices of busy compute (standing in for the layers' backward passes)
// and an allreduce of n floats, three ways:
//   blocking:   the compute, then MPI_Allreduce;
//   polled:     the compute, then MPI_Iallreduce polled with MPI_Test until done (plinth);
//   overlapped: MPI_Iallreduce started before the compute and polled between the slices,
//               the best case of overlap (a real backward pass offers the arena bucket by
//               bucket, the last layers' first).
// Alternating rounds; the median step of each. With n = 0 it times the compute alone.
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static volatile double sink;

static void compute(long work) {
  double a = 1.0;
  for (long i = 0; i < work; ++i) a = a * 1.0000001 + 1e-9;
  sink = a;
}

static int by_value(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static void poll(MPI_Request* r) {
  int done = 0;
  while (!done) MPI_Test(r, &done, MPI_STATUS_IGNORE);
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const int n = argc > 1 ? atoi(argv[1]) : 93322;
  const long work = argc > 2 ? atol(argv[2]) : 2000000;
  enum { kPieces = 10, kSteps = 200, kRounds = 5, kModes = 3 };
  const char* names[kModes] = {"blocking", "polled", "overlapped"};
  float* x = calloc(n > 0 ? n : 1, sizeof(float));
  double median[kModes][kRounds];
  for (int round = 0; round < kRounds; ++round) {
    for (int mode = 0; mode < kModes; ++mode) {
      double t[kSteps];
      for (int s = 0; s < kSteps; ++s) {
        MPI_Barrier(MPI_COMM_WORLD);
        const double t0 = MPI_Wtime();
        MPI_Request r;
        if (mode == 2) MPI_Iallreduce(MPI_IN_PLACE, x, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &r);
        int done = 0;
        for (int p = 0; p < kPieces; ++p) {
          compute(work / kPieces);
          if (mode == 2 && !done) MPI_Test(&r, &done, MPI_STATUS_IGNORE);
        }
        if (mode == 0) MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        if (mode == 1) MPI_Iallreduce(MPI_IN_PLACE, x, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &r);
        if (mode >= 1 && !done) poll(&r);
        t[s] = MPI_Wtime() - t0;
      }
      qsort(t, kSteps, sizeof(double), by_value);
      median[mode][round] = t[kSteps / 2];
    }
  }
  if (rank == 0) {
    for (int mode = 0; mode < kModes; ++mode) {
      qsort(median[mode], kRounds, sizeof(double), by_value);
      printf("%-10s %d floats: median step %.3f ms (rounds %.3f..%.3f)\n", names[mode], n,
             median[mode][kRounds / 2] * 1e3, median[mode][0] * 1e3,
             median[mode][kRounds - 1] * 1e3);
    }
  }
  free(x);
  MPI_Finalize();
  return 0;
}
