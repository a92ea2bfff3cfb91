// Reduce to a root over a tree of ranks, pipelined in chunks: a rank reduces chunk c of its
// children's partial results into its own contribution and passes it to its parent while
// chunk c+1 is still arriving. A chain (one child each) and a binary tree are two shapes of it.
#include <algorithm>
#include <cstring>
#include <vector>

#include "collectives/collectives.h"
#include "collectives/ring_pipeline.h"
#include "core/reduce.h"
#include "core/status.h"

namespace braid {
namespace {

// At or below this many bytes the tree's log2(n) hops beat the chain's n-1; above it the chain
// wins, because a tree node receives twice its data per chunk (docs/architecture.md).
constexpr size_t kTreeReduceMaxBytes = 64 * 1024;
// Chunks of a child kept posted ahead of the reducer, and sends in flight to the parent.
constexpr size_t kReduceWindow = 4;

// Where a rank sits: its parent (-1 at the root) and children, as real ranks.
struct TreeShape {
  int parent = -1;
  std::vector<int> children;
};

absl::Status RunReduceTree(const CollectiveContext& ctx, const TreeShape& shape, const void* send,
                           void* recv, size_t count, DataType type, RedOp op) {
  const size_t elem = DataTypeSize(type), bytes = count * elem;
  const bool root = shape.parent < 0;
  const auto* in = static_cast<const std::byte*>(send);
  if (bytes == 0 || (shape.children.empty() && root)) {
    if (root && send != recv && bytes) std::memcpy(recv, send, bytes);
    if (root && op == RedOp::kAvg) ScaleForAverage(recv, count, type, ctx.nranks);
    return absl::OkStatus();
  }
  const size_t chunk_elems =
      std::max({size_t{1}, (ctx.chunk_bytes ? ctx.chunk_bytes : kDefaultChunkBytes) / elem,
                (count + CollectiveContext::kMaxChunksPerStep - 1) /
                    CollectiveContext::kMaxChunksPerStep});
  const size_t chunks = (count + chunk_elems - 1) / chunk_elems;
  const size_t window = std::min(kReduceWindow, chunks), slot = chunk_elems * elem;
  const size_t nchildren = shape.children.size();
  // Scratch: `window` receive slots per child, then (below the root, when there is anything
  // to reduce) `window` slots for partial results in flight to the parent.
  const bool stage_partials = !root && nchildren > 0;
  const size_t need = (nchildren + (stage_partials ? 1 : 0)) * window * slot;
  if (ctx.scratch->size() < need) ctx.scratch->resize(need);
  std::byte* scratch = ctx.scratch->data();
  auto incoming = [&](size_t child, size_t c) { return scratch + (child * window + c % window) * slot; };
  // Where chunk c's partial result is reduced (a leaf has none: it sends its own data).
  auto partial = [&](size_t c) -> std::byte* {
    if (root) return static_cast<std::byte*>(recv) + c * slot;
    return stage_partials ? scratch + (nchildren * window + c % window) * slot : nullptr;
  };
  auto elems_of = [&](size_t c) { return std::min(chunk_elems, count - c * chunk_elems); };

  std::vector<std::vector<RequestPtr>> recvs(nchildren, std::vector<RequestPtr>(chunks));
  auto post_recv = [&](size_t child, size_t c) -> absl::Status {
    BRAID_ASSIGN_OR_RETURN(recvs[child][c],
                           ctx.peer(shape.children[child]).irecv(incoming(child, c),
                                                                 elems_of(c) * elem,
                                                                 ctx.tag(0, static_cast<uint32_t>(c))));
    return absl::OkStatus();
  };
  for (size_t child = 0; child < nchildren; ++child)
    for (size_t c = 0; c < window; ++c) BRAID_RETURN_IF_ERROR(post_recv(child, c));

  std::vector<RequestPtr> sends(chunks);
  for (size_t c = 0; c < chunks; ++c) {
    const size_t n = elems_of(c);
    std::byte* acc = partial(c);
    // A partial-result slot is reused only once the send that last used it has completed.
    if (!root && c >= window) {
      BRAID_RETURN_IF_ERROR(WaitWithPeer(ctx, sends[c - window], shape.parent));
      sends[c - window].reset();
    }
    const std::byte* own = in + c * slot;
    for (size_t child = 0; child < nchildren; ++child) {
      BRAID_RETURN_IF_ERROR(WaitWithPeer(ctx, recvs[child][c], shape.children[child]));
      Reduce(acc, child == 0 ? own : acc, incoming(child, c), n, type, op);
      recvs[child][c].reset();
      if (c + window < chunks) BRAID_RETURN_IF_ERROR(post_recv(child, c + window));
    }
    if (root) {
      if (op == RedOp::kAvg) ScaleForAverage(acc, n, type, ctx.nranks);
      continue;
    }
    BRAID_ASSIGN_OR_RETURN(sends[c], ctx.peer(shape.parent).isend(nchildren ? acc : own, n * elem,
                                                                  ctx.tag(0, static_cast<uint32_t>(c))));
  }
  if (root) return absl::OkStatus();
  std::erase(sends, nullptr);
  return WaitAllWithPeer(ctx, sends, shape.parent);
}

int RealRank(const CollectiveContext& ctx, int virtual_rank, int root) {
  return (virtual_rank + root) % ctx.nranks;
}

}  // namespace

absl::Status TreeReduce(const CollectiveContext& ctx, const void* send, void* recv, size_t count,
                        DataType type, RedOp op, int root) {
  // Heap numbering relative to the root: virtual rank v has children 2v+1 and 2v+2.
  const int v = (ctx.rank - root + ctx.nranks) % ctx.nranks;
  TreeShape shape;
  if (v > 0) shape.parent = RealRank(ctx, (v - 1) / 2, root);
  for (int child : {2 * v + 1, 2 * v + 2}) {
    if (child < ctx.nranks) shape.children.push_back(RealRank(ctx, child, root));
  }
  return RunReduceTree(ctx, shape, send, recv, count, type, op);
}

absl::Status ChainReduce(const CollectiveContext& ctx, const void* send, void* recv,
                         size_t count, DataType type, RedOp op, int root) {
  // Position p (0 at the root) receives from p+1 and sends to p-1.
  const int p = (ctx.rank - root + ctx.nranks) % ctx.nranks;
  TreeShape shape;
  if (p > 0) shape.parent = RealRank(ctx, p - 1, root);
  if (p + 1 < ctx.nranks) shape.children.push_back(RealRank(ctx, p + 1, root));
  return RunReduceTree(ctx, shape, send, recv, count, type, op);
}

absl::Status ReduceToRoot(const CollectiveContext& ctx, const void* send, void* recv,
                          size_t count, DataType type, RedOp op, int root) {
  if (count * DataTypeSize(type) <= kTreeReduceMaxBytes) {
    return TreeReduce(ctx, send, recv, count, type, op, root);
  }
  return ChainReduce(ctx, send, recv, count, type, op, root);
}

}  // namespace braid
