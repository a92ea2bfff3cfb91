// Recursive doubling AllReduce: log2(n) exchanges of the whole buffer, for small messages
// where latency, not bandwidth, is the cost. Every rank combines the same pairs, so all ranks
// end with bit-identical results.
#include <cstring>

#include "collectives/collectives.h"
#include "core/reduce.h"
#include "core/status.h"

namespace braid {

// With n not a power of two, the first 2*(n-p) ranks pair up: even ones hand their data to
// their odd neighbour and wait for the result (the usual folding), odd ones join the doubling.
absl::Status RecursiveDoublingAllReduce(const CollectiveContext& ctx, const void* send,
                                        void* recv, size_t count, DataType type, RedOp op) {
  if (send != recv && count) std::memcpy(recv, send, count * DataTypeSize(type));
  if (ctx.nranks == 1 || count == 0) return absl::OkStatus();
  const int n = ctx.nranks, rank = ctx.rank;
  const size_t bytes = count * DataTypeSize(type);
  int p = 1;
  while (p * 2 <= n) p *= 2;
  const int rem = n - p;
  if (ctx.scratch->size() < bytes) ctx.scratch->resize(bytes);
  std::byte* incoming = ctx.scratch->data();
  auto* data = static_cast<std::byte*>(recv);
  uint32_t step = 0;

  auto exchange_reduce = [&](int peer) -> absl::Status {
    uint32_t tag_step = step++;
    BRAID_ASSIGN_OR_RETURN(RequestPtr r, ctx.peer(peer).irecv(incoming, bytes, ctx.tag(tag_step, 0)));
    BRAID_ASSIGN_OR_RETURN(RequestPtr s, ctx.peer(peer).isend(data, bytes, ctx.tag(tag_step, 0)));
    RequestPtr both[] = {r, s};
    BRAID_RETURN_IF_ERROR(WaitAllWithPeer(ctx, both, peer));
    Reduce(data, data, incoming, count, type, op);
    return absl::OkStatus();
  };

  int new_rank;
  if (rank < 2 * rem) {
    if (rank % 2 == 0) {  // folds into rank + 1, then receives the result.
      BRAID_ASSIGN_OR_RETURN(RequestPtr s, ctx.peer(rank + 1).isend(data, bytes, ctx.tag(0, 0)));
      BRAID_RETURN_IF_ERROR(WaitWithPeer(ctx, s, rank + 1));
      BRAID_ASSIGN_OR_RETURN(RequestPtr r, ctx.peer(rank + 1).irecv(data, bytes, ctx.tag(0, 1)));
      return WaitWithPeer(ctx, r, rank + 1);
    }
    BRAID_ASSIGN_OR_RETURN(RequestPtr r, ctx.peer(rank - 1).irecv(incoming, bytes, ctx.tag(0, 0)));
    BRAID_RETURN_IF_ERROR(WaitWithPeer(ctx, r, rank - 1));
    Reduce(data, incoming, data, count, type, op);
    new_rank = rank / 2;
  } else {
    new_rank = rank - rem;
  }
  step = 1;
  for (int mask = 1; mask < p; mask <<= 1) {
    int new_peer = new_rank ^ mask;
    int peer = new_peer < rem ? new_peer * 2 + 1 : new_peer + rem;
    BRAID_RETURN_IF_ERROR(exchange_reduce(peer));
  }
  if (op == RedOp::kAvg) ScaleForAverage(data, count, type, n);
  if (rank < 2 * rem) {  // odd rank: hand the result back to the folded even rank.
    BRAID_ASSIGN_OR_RETURN(RequestPtr s, ctx.peer(rank - 1).isend(data, bytes, ctx.tag(0, 1)));
    BRAID_RETURN_IF_ERROR(WaitWithPeer(ctx, s, rank - 1));
  }
  return absl::OkStatus();
}

}  // namespace braid
