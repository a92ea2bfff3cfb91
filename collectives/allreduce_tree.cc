// Double binary tree AllReduce (as NCCL): two complementary binary trees each carry half of the
// buffer, reduced up to the root and broadcast back down, pipelined in chunks. Latency grows
// with log2(n) instead of n; a rank that is a leaf in one tree is usually interior in the other,
// so the two halves share every rank's links evenly. Every element is reduced once, at its
// tree's root, and then copied, so all ranks end with bit-identical results.
#include <algorithm>
#include <cstring>

#include "collectives/collectives.h"
#include "collectives/ring_pipeline.h"
#include "collectives/tree.h"
#include "core/reduce.h"
#include "core/status.h"

namespace braid {
namespace {

constexpr size_t kUpWindow = 4;      // chunks received ahead from each child (scratch slots).
constexpr size_t kDownAhead = 64;    // chunks received ahead from the parent (in place).
constexpr int kPollsBeforeBlocking = 1000;

struct TreeHalf {
  TreeLinks links;
  size_t first = 0, elems = 0, chunks = 0;  // this tree's element range and chunk count.
  std::vector<RequestPtr> up[2], down;
};

}  // namespace

absl::Status TreeAllReduce(const CollectiveContext& ctx, const void* send, void* recv,
                           size_t count, DataType type, RedOp op) {
  const size_t elem = DataTypeSize(type);
  if (ctx.nranks == 1 || count == 0) {
    if (send != recv && count) std::memcpy(recv, send, count * elem);
    return absl::OkStatus();
  }
  auto* in = static_cast<const std::byte*>(send);
  auto* out = static_cast<std::byte*>(recv);
  const size_t chunk_bytes = ctx.chunk_bytes ? ctx.chunk_bytes : kDefaultChunkBytes;
  const size_t half = count / 2;
  const size_t chunk_elems =
      std::max({size_t{1}, chunk_bytes / elem,
                (count - half + CollectiveContext::kMaxChunksPerStep - 1) /
                    CollectiveContext::kMaxChunksPerStep});
  TreeHalf trees[2];
  for (int t = 0; t < 2; ++t) {
    TreeHalf& tree = trees[t];
    tree.links = TreeOf(ctx.nranks, ctx.rank, t);
    tree.first = t == 0 ? 0 : half;
    tree.elems = t == 0 ? half : count - half;
    tree.chunks = (tree.elems + chunk_elems - 1) / chunk_elems;
    for (auto& child : tree.up) child.resize(tree.chunks);
    tree.down.resize(tree.chunks);
  }
  const size_t slot_bytes = chunk_elems * elem;
  const size_t scratch_bytes = 2 * 2 * kUpWindow * slot_bytes;
  if (ctx.scratch->size() < scratch_bytes) ctx.scratch->resize(scratch_bytes);
  auto slot = [&](int t, int child, size_t chunk) {
    return ctx.scratch->data() +
           ((static_cast<size_t>(t) * 2 + static_cast<size_t>(child)) * kUpWindow +
            chunk % kUpWindow) * slot_bytes;
  };
  auto range = [&](const TreeHalf& tree, size_t c) {
    size_t first = tree.first + c * chunk_elems;
    return std::pair<size_t, size_t>(first, std::min(chunk_elems, tree.first + tree.elems - first));
  };
  // Tags: step 2t carries tree t's partial results up, 2t+1 its final results down.
  auto post_up = [&](int t, size_t c) -> absl::Status {
    TreeHalf& tree = trees[t];
    if (c >= tree.chunks) return absl::OkStatus();
    for (int k = 0; k < tree.links.nchildren; ++k) {
      BRAID_ASSIGN_OR_RETURN(tree.up[k][c],
                             ctx.peer(tree.links.children[k])
                                 .irecv(slot(t, k, c), range(tree, c).second * elem,
                                        ctx.tag(static_cast<uint32_t>(2 * t),
                                                static_cast<uint32_t>(c))));
    }
    return absl::OkStatus();
  };
  auto post_down = [&](int t, size_t c) -> absl::Status {
    TreeHalf& tree = trees[t];
    if (c >= tree.chunks || tree.links.parent < 0) return absl::OkStatus();
    auto [first, elems] = range(tree, c);
    BRAID_ASSIGN_OR_RETURN(tree.down[c], ctx.peer(tree.links.parent)
                                             .irecv(out + first * elem, elems * elem,
                                                    ctx.tag(static_cast<uint32_t>(2 * t + 1),
                                                            static_cast<uint32_t>(c))));
    return absl::OkStatus();
  };
  std::vector<RequestPtr> sends;
  auto send_to = [&](int peer, const std::byte* buf, size_t bytes, uint32_t step,
                     size_t c) -> absl::Status {
    BRAID_ASSIGN_OR_RETURN(RequestPtr r, ctx.peer(peer).isend(buf, bytes,
                                                              ctx.tag(step, static_cast<uint32_t>(c))));
    sends.push_back(std::move(r));
    if (sends.size() > 64) {
      std::erase_if(sends, [](const RequestPtr& s) { return s->done() && s->status().ok(); });
    }
    return absl::OkStatus();
  };
  auto send_down = [&](int t, size_t c) -> absl::Status {
    auto [first, elems] = range(trees[t], c);
    for (int k = 0; k < trees[t].links.nchildren; ++k) {
      BRAID_RETURN_IF_ERROR(send_to(trees[t].links.children[k], out + first * elem, elems * elem,
                                    static_cast<uint32_t>(2 * t + 1), c));
    }
    return absl::OkStatus();
  };
  // Chunk c of a tree: reduce the children's partials into this rank's contribution and pass it
  // up; at the root the result is final and starts down.
  auto up = [&](int t, size_t c) -> absl::Status {
    TreeHalf& tree = trees[t];
    auto [first, elems] = range(tree, c);
    const std::byte* partial = in + first * elem;
    for (int k = 0; k < tree.links.nchildren; ++k) {
      int child = tree.links.children[k];
      BRAID_RETURN_IF_ERROR(WaitWithPeer(ctx, tree.up[k][c], child));
      tree.up[k][c].reset();
      Reduce(out + first * elem, partial, slot(t, k, c), elems, type, op);
      partial = out + first * elem;
    }
    BRAID_RETURN_IF_ERROR(post_up(t, c + kUpWindow));
    if (tree.links.parent >= 0) {
      return send_to(tree.links.parent, partial, elems * elem, static_cast<uint32_t>(2 * t), c);
    }
    if (partial != out + first * elem) std::memcpy(out + first * elem, partial, elems * elem);
    if (op == RedOp::kAvg) ScaleForAverage(out + first * elem, elems, type, ctx.nranks);
    return send_down(t, c);
  };
  auto down = [&](int t, size_t c) -> absl::Status {
    TreeHalf& tree = trees[t];
    if (tree.links.parent < 0) return absl::OkStatus();  // the root sent it in up().
    BRAID_RETURN_IF_ERROR(WaitWithPeer(ctx, tree.down[c], tree.links.parent));
    tree.down[c].reset();
    BRAID_RETURN_IF_ERROR(post_down(t, c + kDownAhead));
    return send_down(t, c);
  };

  for (int t = 0; t < 2; ++t) {
    for (size_t c = 0; c < kUpWindow; ++c) BRAID_RETURN_IF_ERROR(post_up(t, c));
    for (size_t c = 0; c < kDownAhead; ++c) BRAID_RETURN_IF_ERROR(post_down(t, c));
  }
  // Four streams advance independently, each as soon as its next chunk is ready: the way up
  // and the way down of both trees. A fixed interleaving would couple the trees' different
  // depths and stall the pipeline.
  size_t next_up[2] = {0, 0}, next_down[2] = {0, 0};
  auto up_ready = [&](int t) {
    if (next_up[t] >= trees[t].chunks) return false;
    for (int k = 0; k < trees[t].links.nchildren; ++k) {
      if (!trees[t].up[k][next_up[t]]->done()) return false;
    }
    return true;
  };
  auto down_ready = [&](int t) {
    return trees[t].links.parent >= 0 && next_down[t] < next_up[t] &&
           trees[t].down[next_down[t]]->done();
  };
  auto finished = [&](int t) {
    return next_up[t] == trees[t].chunks &&
           (trees[t].links.parent < 0 || next_down[t] == trees[t].chunks);
  };
  int idle_polls = 0;
  while (!finished(0) || !finished(1)) {
    bool advanced = false;
    for (int t = 0; t < 2; ++t) {
      while (up_ready(t)) {
        BRAID_RETURN_IF_ERROR(up(t, next_up[t]++));
        advanced = true;
      }
      while (down_ready(t)) {
        BRAID_RETURN_IF_ERROR(down(t, next_down[t]++));
        advanced = true;
      }
    }
    if (advanced) {
      idle_polls = 0;
      continue;
    }
    // Nothing ready: poll the transport (the simulated fabric suspends this rank until a
    // completion), and after many fruitless polls block on one awaited request so a long
    // wait sleeps instead of spinning.
    RequestPtr awaited;
    for (int t = 0; t < 2 && !awaited; ++t) {
      if (next_up[t] < trees[t].chunks && trees[t].links.nchildren) {
        for (int k = 0; k < trees[t].links.nchildren && !awaited; ++k) {
          if (!trees[t].up[k][next_up[t]]->done()) awaited = trees[t].up[k][next_up[t]];
        }
      } else if (trees[t].links.parent >= 0 && next_down[t] < next_up[t]) {
        awaited = trees[t].down[next_down[t]];
      }
    }
    if (++idle_polls < kPollsBeforeBlocking || !awaited) {
      BRAID_RETURN_IF_ERROR(WaitForProgress(ctx));
    } else {
      idle_polls = 0;
      BRAID_RETURN_IF_ERROR(WaitWithPeer(ctx, awaited, -1));
    }
  }
  return WaitAllWithPeer(ctx, sends, -1);
}

}  // namespace braid
