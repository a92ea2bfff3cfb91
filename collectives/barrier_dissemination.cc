// Dissemination barrier: in round k every rank signals rank+2^k and waits for rank-2^k, so
// after ceil(log2 n) rounds every rank has heard, transitively, from every other.
#include "collectives/collectives.h"
#include "core/status.h"

namespace braid {

absl::Status DisseminationBarrier(const CollectiveContext& ctx) {
  const int n = ctx.nranks;
  uint32_t round = 0;
  for (int distance = 1; distance < n; distance *= 2, ++round) {
    int to = (ctx.rank + distance) % n, from = (ctx.rank - distance + n) % n;
    BRAID_ASSIGN_OR_RETURN(RequestPtr r, ctx.peer(from).irecv(nullptr, 0, ctx.tag(round, 0)));
    BRAID_ASSIGN_OR_RETURN(RequestPtr s, ctx.peer(to).isend(nullptr, 0, ctx.tag(round, 0)));
    BRAID_RETURN_IF_ERROR(WaitWithPeer(ctx, r, from));
    BRAID_RETURN_IF_ERROR(WaitWithPeer(ctx, s, to));
  }
  return absl::OkStatus();
}

}  // namespace braid
