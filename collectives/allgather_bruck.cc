// Bruck AllGather: ceil(log2 n) steps for any n. At distance d a rank sends the first
// min(d, n-d) blocks it holds (its own and those of the next ranks) to rank - d and appends
// what rank + d sends; a final rotation puts the blocks in rank order.
#include <algorithm>
#include <cstring>

#include "collectives/collectives.h"
#include "collectives/halving_doubling.h"
#include "core/status.h"

namespace braid {

absl::Status BruckAllGather(const CollectiveContext& ctx, const void* send, void* recv,
                            size_t count, DataType type) {
  const size_t block = count * DataTypeSize(type);
  const int n = ctx.nranks, rank = ctx.rank;
  auto* out = static_cast<std::byte*>(recv);
  std::byte* own = out + static_cast<size_t>(rank) * block;
  if (n == 1 || count == 0) {
    if (send != own && count) std::memcpy(own, send, block);
    return absl::OkStatus();
  }
  // Blocks in rotated order: slot i holds rank (rank + i) % n's block.
  const size_t total = block * static_cast<size_t>(n);
  if (ctx.scratch->size() < total) ctx.scratch->resize(total);
  std::byte* rotated = ctx.scratch->data();
  std::memcpy(rotated, send, block);
  uint32_t step = 0;
  for (int d = 1; d < n; d *= 2, ++step) {
    size_t blocks = static_cast<size_t>(std::min(d, n - d));
    BRAID_RETURN_IF_ERROR(SendRecv(ctx, (rank - d + n) % n, rotated, blocks * block,
                                   (rank + d) % n, rotated + static_cast<size_t>(d) * block,
                                   blocks * block, step));
  }
  for (int i = 0; i < n; ++i) {
    size_t to = static_cast<size_t>((rank + i) % n);
    if (i == 0 && send == own) continue;
    std::memcpy(out + to * block, rotated + static_cast<size_t>(i) * block, block);
  }
  return absl::OkStatus();
}

}  // namespace braid
