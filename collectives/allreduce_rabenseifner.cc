// Rabenseifner AllReduce: recursive-halving reduce-scatter, then recursive-doubling allgather.
// 2 log2(p) messages and 2(p-1)/p of the buffer per rank: for mid-sized messages and many
// ranks. Each range is reduced at exactly one rank and then copied, so every rank ends with
// bit-identical results.
#include <cstring>

#include "collectives/collectives.h"
#include "collectives/halving_doubling.h"
#include "collectives/ring_pipeline.h"
#include "core/reduce.h"
#include "core/status.h"

namespace braid {

absl::Status RabenseifnerAllReduce(const CollectiveContext& ctx, const void* send, void* recv,
                                   size_t count, DataType type, RedOp op) {
  const size_t elem = DataTypeSize(type), bytes = count * elem;
  if (send != recv && count) std::memcpy(recv, send, bytes);
  if (ctx.nranks == 1 || count == 0) return absl::OkStatus();
  auto* data = static_cast<std::byte*>(recv);
  const VirtualRanks vr = VirtualRanks::For(ctx.nranks, ctx.rank);
  const int rank = ctx.rank;
  const uint32_t k = static_cast<uint32_t>(Log2Floor(vr.p));
  // Steps: 0 fold, 1..k halving, k+1..2k doubling, 2k+1 unfold.
  if (vr.vrank < 0) {
    BRAID_RETURN_IF_ERROR(SendTo(ctx, rank + 1, data, bytes, 0));
    return RecvFrom(ctx, rank + 1, data, bytes, 2 * k + 1);
  }
  if (rank < 2 * vr.rem) {
    if (ctx.scratch->size() < bytes) ctx.scratch->resize(bytes);
    BRAID_RETURN_IF_ERROR(RecvFrom(ctx, rank - 1, ctx.scratch->data(), bytes, 0));
    Reduce(data, data, ctx.scratch->data(), count, type, op);
  }
  const std::vector<size_t> vbegin = BalancedBlocks(count, vr.p);
  BRAID_RETURN_IF_ERROR(RecursiveHalving(ctx, vr, data, vbegin, type, op, 1));
  if (op == RedOp::kAvg) {
    size_t first = vbegin[static_cast<size_t>(vr.vrank)];
    ScaleForAverage(data + first * elem, vbegin[static_cast<size_t>(vr.vrank) + 1] - first, type,
                    ctx.nranks);
  }
  BRAID_RETURN_IF_ERROR(RecursiveDoublingGather(ctx, vr, data, vbegin, elem, k + 1));
  if (rank < 2 * vr.rem) return SendTo(ctx, rank - 1, data, bytes, 2 * k + 1);
  return absl::OkStatus();
}

}  // namespace braid
