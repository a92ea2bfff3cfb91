// Recursive-halving ReduceScatter: log2(p) exchanges, each of half the remaining range, so
// every rank sends (p-1)/p of the buffer in log2(p) messages. Non-powers of two fold the first
// 2(n-p) ranks in pairs; the odd rank of a pair returns the even rank's block at the end.
#include <cstring>
#include <memory>

#include "collectives/collectives.h"
#include "collectives/halving_doubling.h"
#include "core/reduce.h"
#include "core/status.h"

namespace braid {

absl::Status RecursiveHalvingReduceScatter(const CollectiveContext& ctx, const void* send,
                                           void* recv, size_t count, DataType type, RedOp op) {
  const size_t elem = DataTypeSize(type), block = count * elem;
  auto* in = static_cast<const std::byte*>(send);
  auto* out = static_cast<std::byte*>(recv);
  if (ctx.nranks == 1 || count == 0) {
    if (in != out && count) std::memmove(out, in, block);
    return absl::OkStatus();
  }
  const int rank = ctx.rank;
  const VirtualRanks vr = VirtualRanks::For(ctx.nranks, rank);
  const size_t total = block * static_cast<size_t>(ctx.nranks);
  const uint32_t k = static_cast<uint32_t>(Log2Floor(vr.p));
  if (vr.vrank < 0) {  // hand everything to the odd neighbour, get this rank's block back.
    BRAID_RETURN_IF_ERROR(SendTo(ctx, rank + 1, in, total, 0));
    BRAID_RETURN_IF_ERROR(RecvFrom(ctx, rank + 1, out, block, k + 1));
    if (op == RedOp::kAvg) ScaleForAverage(out, count, type, ctx.nranks);
    return absl::OkStatus();
  }
  // The send buffer is read-only: reduce in a private copy of it.
  auto work = std::make_unique_for_overwrite<std::byte[]>(total);
  std::memcpy(work.get(), in, total);
  if (rank < 2 * vr.rem) {
    if (ctx.scratch->size() < total) ctx.scratch->resize(total);
    BRAID_RETURN_IF_ERROR(RecvFrom(ctx, rank - 1, ctx.scratch->data(), total, 0));
    Reduce(work.get(), work.get(), ctx.scratch->data(), count * static_cast<size_t>(ctx.nranks),
           type, op);
  }
  std::vector<size_t> vbegin(static_cast<size_t>(vr.p) + 1);
  for (int v = 0; v <= vr.p; ++v) {
    int first = v == vr.p ? ctx.nranks : vr.FirstRealOf(v);
    vbegin[static_cast<size_t>(v)] = static_cast<size_t>(first) * count;
  }
  BRAID_RETURN_IF_ERROR(RecursiveHalving(ctx, vr, work.get(), vbegin, type, op, 1));
  if (rank < 2 * vr.rem) {
    BRAID_RETURN_IF_ERROR(SendTo(ctx, rank - 1, work.get() + (rank - 1) * block, block, k + 1));
  }
  std::memcpy(out, work.get() + rank * block, block);
  if (op == RedOp::kAvg) ScaleForAverage(out, count, type, ctx.nranks);
  return absl::OkStatus();
}

}  // namespace braid
