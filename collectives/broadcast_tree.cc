// Pipelined binary-tree Broadcast: the root's data flows down a balanced binary tree in chunks,
// so latency grows with log2(n) rather than n; for small and mid-sized messages on many ranks.
#include <algorithm>
#include <cstring>

#include "collectives/collectives.h"
#include "collectives/ring_pipeline.h"
#include "collectives/tree.h"
#include "core/status.h"

namespace braid {

absl::Status TreeBroadcast(const CollectiveContext& ctx, const void* send, void* recv,
                           size_t count, DataType type, int root) {
  const size_t bytes = count * DataTypeSize(type);
  auto* out = static_cast<std::byte*>(recv);
  if (ctx.rank == root && send != recv && bytes) std::memcpy(out, send, bytes);
  if (ctx.nranks == 1 || bytes == 0) return absl::OkStatus();
  const size_t chunk =
      std::max(ctx.chunk_bytes ? ctx.chunk_bytes : kDefaultChunkBytes,
               (bytes + CollectiveContext::kMaxChunksPerStep - 1) /
                   CollectiveContext::kMaxChunksPerStep);
  const size_t chunks = (bytes + chunk - 1) / chunk;
  const TreeLinks links = TreeOf(ctx.nranks, ctx.rank, ShiftForRoot(ctx.nranks, root));
  const std::byte* source = ctx.rank == root ? static_cast<const std::byte*>(send) : out;
  constexpr size_t kRecvsAhead = 64;
  std::vector<RequestPtr> recvs(chunks), sends;
  auto len_of = [&](size_t c) { return std::min(chunk, bytes - c * chunk); };
  auto post_recv = [&](size_t c) -> absl::Status {
    if (links.parent < 0 || c >= chunks) return absl::OkStatus();
    BRAID_ASSIGN_OR_RETURN(recvs[c], ctx.peer(links.parent)
                                         .irecv(out + c * chunk, len_of(c),
                                                ctx.tag(0, static_cast<uint32_t>(c))));
    return absl::OkStatus();
  };
  for (size_t c = 0; c < kRecvsAhead; ++c) BRAID_RETURN_IF_ERROR(post_recv(c));
  for (size_t c = 0; c < chunks; ++c) {
    if (links.parent >= 0) {
      BRAID_RETURN_IF_ERROR(WaitWithPeer(ctx, recvs[c], links.parent));
      recvs[c].reset();
      BRAID_RETURN_IF_ERROR(post_recv(c + kRecvsAhead));
    }
    for (int k = 0; k < links.nchildren; ++k) {
      BRAID_ASSIGN_OR_RETURN(RequestPtr s, ctx.peer(links.children[k])
                                               .isend(source + c * chunk, len_of(c),
                                                      ctx.tag(0, static_cast<uint32_t>(c))));
      sends.push_back(std::move(s));
    }
    if (sends.size() > 64) {
      std::erase_if(sends, [](const RequestPtr& s) { return s->done() && s->status().ok(); });
    }
  }
  return WaitAllWithPeer(ctx, sends, -1);
}

}  // namespace braid
