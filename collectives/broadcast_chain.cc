// Chain Broadcast: root -> root+1 -> ... -> root-1, pipelined in chunks so every link of the
// chain is busy at once; time ~ (size + (n-2) * chunk) / bandwidth.
#include <algorithm>
#include <cstring>

#include "collectives/collectives.h"
#include "collectives/ring_pipeline.h"
#include "core/status.h"

namespace braid {

absl::Status ChainBroadcast(const CollectiveContext& ctx, const void* send, void* recv,
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
  const int position = (ctx.rank - root + ctx.nranks) % ctx.nranks;
  const bool receives = position != 0, forwards = position != ctx.nranks - 1;
  // The root sends from the user's send buffer so the copy above overlaps the transfer.
  const std::byte* source = ctx.rank == root ? static_cast<const std::byte*>(send) : out;

  // Receives land straight in the user's buffer, so many can be posted ahead at no memory cost;
  // a receive posted before its data arrives spares the transport a heap copy.
  constexpr size_t kRecvsAhead = 64;
  std::vector<RequestPtr> recvs(chunks), sends;
  auto post_recv = [&](size_t c) -> absl::Status {
    size_t len = std::min(chunk, bytes - c * chunk);
    BRAID_ASSIGN_OR_RETURN(recvs[c], ctx.peer(ctx.left()).irecv(out + c * chunk, len,
                                                                ctx.tag(0, static_cast<uint32_t>(c))));
    return absl::OkStatus();
  };
  if (receives) {
    for (size_t c = 0; c < std::min<size_t>(chunks, kRecvsAhead); ++c) {
      BRAID_RETURN_IF_ERROR(post_recv(c));
    }
  }
  for (size_t c = 0; c < chunks; ++c) {
    if (receives) {
      BRAID_RETURN_IF_ERROR(WaitWithPeer(ctx, recvs[c], ctx.left()));
      if (c + kRecvsAhead < chunks) BRAID_RETURN_IF_ERROR(post_recv(c + kRecvsAhead));
    }
    if (forwards) {
      size_t len = std::min(chunk, bytes - c * chunk);
      BRAID_ASSIGN_OR_RETURN(RequestPtr s,
                             ctx.peer(ctx.right()).isend(source + c * chunk, len,
                                                         ctx.tag(0, static_cast<uint32_t>(c))));
      sends.push_back(std::move(s));
    }
  }
  return WaitAllWithPeer(ctx, sends, ctx.right());
}

}  // namespace braid
