// reduce_perf: nccl-tests' reduce_perf for Braid (flags and columns: perf_common.h, -h).
#include "perf_common.h"

int main(int argc, char** argv) {
  return braidperf::PerfMain(argc, argv, braidperf::Coll::kReduce);
}
