// The nccl-tests style harness behind allreduce_perf, allgather_perf, reduce_scatter_perf and
// broadcast_perf: flags, exact test data, timing and the table. Uses only the public braid.h.
#ifndef BRAID_PERF_PERF_COMMON_H_
#define BRAID_PERF_PERF_COMMON_H_

#include <braid/braid.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace braidperf {

enum class Coll {
  kAllReduce, kAllGather, kReduceScatter, kBroadcast,
  // issue 6: count is per peer for alltoall; sendrecv sends to rank+1, receives from rank-1.
  kReduce, kAllToAll, kSendRecv
};

// Runs one perf tool: parses argv, creates the communicator from the launcher environment,
// sweeps the sizes and prints the table on rank 0. Returns the process exit status.
int PerfMain(int argc, char** argv, Coll coll);

// ---- flags (perf_args.cc) ----
struct Options {
  size_t min_bytes = 32u << 20;  // nccl-tests defaults: -b 32M -e 32M -i 1M -f 1
  size_t max_bytes = 32u << 20;
  size_t step_bytes = 1u << 20;
  size_t step_factor = 1;
  int iters = 20;
  int warmup = 5;
  int check = 1;
  int root = 0;
  int blocking = 0;
  int average = 1;
  std::vector<braidDataType_t> types{braidFloat32};
  std::vector<braidRedOp_t> ops{braidSum};
};

// Parses nccl-tests' flags. Returns -1 to continue, else an exit status (after -h or an error;
// the message was printed when print is true, i.e. on rank 0).
int ParseOptions(int argc, char** argv, Coll coll, bool print, Options* opts);
const char* TypeName(braidDataType_t type);
const char* OpName(braidRedOp_t op);
size_t TypeSize(braidDataType_t type);

// ---- exact test data (perf_data.cc) ----
// What one run computes, enough to derive every rank's input and the expected output.
struct Pattern {
  Coll coll;
  braidDataType_t type;
  braidRedOp_t op;
  int nranks;
  int rank;
  int root;
  size_t count;  // per-rank count for allgather/reduce_scatter, else the element count
};

// Fills a buffer of n elements with the 0xA5 poison bytes that no expected value has.
void Poison(void* buf, size_t bytes);
// Writes rank's input elements [offset, offset + n) of pattern p (the global index of the
// first one is offset) to buf.
void FillInput(const Pattern& p, int rank, void* buf, size_t offset, size_t n);
// Counts the elements of the result buffer (as this rank sees it) that differ from expected.
uint64_t CountWrong(const Pattern& p, const void* result, size_t n);

}  // namespace braidperf

#endif  // BRAID_PERF_PERF_COMMON_H_
