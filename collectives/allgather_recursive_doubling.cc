// Recursive-doubling AllGather: log2(p) exchanges that double the gathered range each time.
// Non-powers of two fold: the even rank of each of the first n-p pairs gives its block to its
// odd neighbour before, and receives everything from it after.
#include <cstring>

#include "collectives/collectives.h"
#include "collectives/halving_doubling.h"
#include "core/status.h"

namespace braid {

absl::Status RecursiveDoublingAllGather(const CollectiveContext& ctx, const void* send,
                                        void* recv, size_t count, DataType type) {
  const size_t elem = DataTypeSize(type), block = count * elem;
  auto* out = static_cast<std::byte*>(recv);
  std::byte* own = out + static_cast<size_t>(ctx.rank) * block;
  if (send != own && count) std::memcpy(own, send, block);
  if (ctx.nranks == 1 || count == 0) return absl::OkStatus();
  const VirtualRanks vr = VirtualRanks::For(ctx.nranks, ctx.rank);
  const size_t total = block * static_cast<size_t>(ctx.nranks);
  const uint32_t k = static_cast<uint32_t>(Log2Floor(vr.p));
  if (vr.vrank < 0) {
    BRAID_RETURN_IF_ERROR(SendTo(ctx, ctx.rank + 1, own, block, 0));
    return RecvFrom(ctx, ctx.rank + 1, out, total, k + 1);
  }
  if (ctx.rank < 2 * vr.rem) {
    BRAID_RETURN_IF_ERROR(RecvFrom(ctx, ctx.rank - 1, own - block, block, 0));
  }
  std::vector<size_t> vbegin(static_cast<size_t>(vr.p) + 1);
  for (int v = 0; v <= vr.p; ++v) {
    int first = v == vr.p ? ctx.nranks : vr.FirstRealOf(v);
    vbegin[static_cast<size_t>(v)] = static_cast<size_t>(first) * count;
  }
  BRAID_RETURN_IF_ERROR(RecursiveDoublingGather(ctx, vr, out, vbegin, elem, 1));
  if (ctx.rank < 2 * vr.rem) return SendTo(ctx, ctx.rank - 1, out, total, k + 1);
  return absl::OkStatus();
}

}  // namespace braid
