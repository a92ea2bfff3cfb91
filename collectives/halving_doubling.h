// Building blocks of the recursive halving/doubling collectives (Rabenseifner AllReduce,
// recursive-halving ReduceScatter, recursive-doubling AllGather). Non-powers of two fold: the
// first 2*rem ranks pair up, the even one of each pair hands its data to the odd one, and the
// remaining p = 2^k "virtual" ranks run the power-of-two schedule.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "collectives/context.h"
#include "core/datatype.h"

namespace braid {

struct VirtualRanks {
  int p = 1;       // largest power of two <= n.
  int rem = 0;     // n - p: number of folded pairs.
  int vrank = -1;  // this rank's virtual rank; -1 for the even rank of a folded pair.
  static VirtualRanks For(int n, int rank);
  int Real(int v) const { return v < rem ? 2 * v + 1 : v + rem; }
  // First real rank whose data virtual rank v holds (2v for a folded pair, else v + rem).
  int FirstRealOf(int v) const { return v < rem ? 2 * v : v + rem; }
};

// Sends/receives `len` bytes with `peer` under `step` (both directions at once); zero-length
// transfers are skipped on both sides, which compute the same lengths.
absl::Status Exchange(const CollectiveContext& ctx, int peer, const void* send, size_t send_len,
                      void* recv, size_t recv_len, uint32_t step);
// Sends to `to` and receives from `from` at once (a shift), waiting for both.
absl::Status SendRecv(const CollectiveContext& ctx, int to, const void* send, size_t send_len,
                      int from, void* recv, size_t recv_len, uint32_t step);
absl::Status SendTo(const CollectiveContext& ctx, int peer, const void* buf, size_t len,
                    uint32_t step);
absl::Status RecvFrom(const CollectiveContext& ctx, int peer, void* buf, size_t len,
                      uint32_t step);

// Virtual ranks own consecutive element ranges [vbegin[v], vbegin[v+1]) of `work`. Recursive
// halving: log2(p) exchanges of half the remaining range; on return this virtual rank's range
// holds the reduction over all virtual ranks. Uses steps first_step .. first_step + log2(p) - 1.
absl::Status RecursiveHalving(const CollectiveContext& ctx, const VirtualRanks& vr,
                              std::byte* work, const std::vector<size_t>& vbegin, DataType type,
                              RedOp op, uint32_t first_step);
// Recursive doubling gather: each virtual rank's range is final at that rank; on return every
// range is everywhere. Same step usage as above.
absl::Status RecursiveDoublingGather(const CollectiveContext& ctx, const VirtualRanks& vr,
                                     std::byte* work, const std::vector<size_t>& vbegin,
                                     size_t elem, uint32_t first_step);

int Log2Floor(int n);

}  // namespace braid
