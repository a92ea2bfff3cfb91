#include "collectives/ring_pipeline.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/reduce.h"
#include "core/status.h"

namespace braid {
namespace {

int Mod(int a, int n) { return ((a % n) + n) % n; }

// One message of the pipeline: chunk `chunk` of the block received at global step `step`.
struct Unit {
  int step;
  uint32_t chunk;
  int block;
  size_t first;  // element offset inside the block.
  size_t elems;
  bool reduce;
  bool last_of_phase;
};

}  // namespace

std::vector<size_t> BalancedBlocks(size_t count, int parts) {
  std::vector<size_t> begin(static_cast<size_t>(parts) + 1, 0);
  size_t base = count / static_cast<size_t>(parts), extra = count % static_cast<size_t>(parts);
  for (int b = 0; b < parts; ++b) {
    begin[static_cast<size_t>(b) + 1] =
        begin[static_cast<size_t>(b)] + base + (static_cast<size_t>(b) < extra ? 1 : 0);
  }
  return begin;
}

std::vector<size_t> UniformBlocks(size_t count, int parts) {
  std::vector<size_t> begin(static_cast<size_t>(parts) + 1, 0);
  for (int b = 0; b <= parts; ++b) begin[static_cast<size_t>(b)] = count * static_cast<size_t>(b);
  return begin;
}

absl::Status RunRingPipeline(const CollectiveContext& ctx, const RingPipelineSpec& spec) {
  const int n = ctx.nranks;
  const size_t elem = DataTypeSize(spec.type);
  const size_t chunk_bytes = ctx.chunk_bytes ? ctx.chunk_bytes : kDefaultChunkBytes;
  auto block_len = [&](int b) {
    return spec.block_begin[static_cast<size_t>(b) + 1] - spec.block_begin[static_cast<size_t>(b)];
  };
  size_t longest = 0;
  for (int b = 0; b < n; ++b) longest = std::max(longest, block_len(b));
  // Chunks must stay countable in a tag's chunk bits, whatever BRAID_CHUNK_SIZE says.
  const size_t chunk_elems =
      std::max({size_t{1}, chunk_bytes / elem,
                (longest + CollectiveContext::kMaxChunksPerStep - 1) /
                    CollectiveContext::kMaxChunksPerStep});
  auto chunks_of = [&](int b) { return (block_len(b) + chunk_elems - 1) / chunk_elems; };

  // The send/receive schedule, in the order this rank will process receives.
  std::vector<Unit> units;
  std::vector<int> send_block;  // per global step
  int step = 0;
  for (const RingPhase& phase : spec.phases) {
    for (int s = 0; s < n - 1; ++s, ++step) {
      send_block.push_back(Mod(ctx.rank + phase.offset - s, n));
      int block = Mod(ctx.rank + phase.offset - s - 1, n);
      size_t chunks = chunks_of(block);
      for (size_t c = 0; c < chunks; ++c) {
        size_t first = c * chunk_elems;
        units.push_back({step, static_cast<uint32_t>(c), block, first,
                         std::min(chunk_elems, block_len(block) - first), phase.reduce,
                         s == n - 2});
      }
    }
  }
  const int total_steps = step;

  Connection& left = ctx.peer(ctx.left());
  Connection& right = ctx.peer(ctx.right());
  std::vector<RequestPtr> sends;
  auto post_send = [&](int g, uint32_t c, const std::byte* base) -> absl::Status {
    int block = send_block[static_cast<size_t>(g)];
    size_t first = c * chunk_elems;
    size_t elems = std::min(chunk_elems, block_len(block) - first);
    BRAID_ASSIGN_OR_RETURN(RequestPtr r, right.isend(base + first * elem, elems * elem,
                                                     ctx.tag(static_cast<uint32_t>(g), c)));
    sends.push_back(std::move(r));
    return absl::OkStatus();
  };

  // Receives that reduce land in a scratch slot; the others land in place.
  const size_t window = std::min<size_t>(kRecvWindow, units.size());
  size_t slot_elems = 0;
  for (const Unit& unit : units) slot_elems = std::max(slot_elems, unit.elems);
  if (ctx.scratch->size() < window * slot_elems * elem) ctx.scratch->resize(window * slot_elems * elem);
  std::byte* scratch = ctx.scratch->data();
  std::vector<RequestPtr> recvs(units.size());
  auto post_recv = [&](size_t u) -> absl::Status {
    const Unit& unit = units[u];
    std::byte* dst = unit.reduce ? scratch + (u % window) * slot_elems * elem
                                 : spec.result(unit.block) + unit.first * elem;
    BRAID_ASSIGN_OR_RETURN(recvs[u], left.irecv(dst, unit.elems * elem,
                                                ctx.tag(static_cast<uint32_t>(unit.step),
                                                        unit.chunk)));
    return absl::OkStatus();
  };

  for (size_t u = 0; u < window; ++u) BRAID_RETURN_IF_ERROR(post_recv(u));
  if (total_steps > 0) {
    int block = send_block[0];
    for (size_t c = 0; c < chunks_of(block); ++c) {
      BRAID_RETURN_IF_ERROR(post_send(0, static_cast<uint32_t>(c), spec.local(block)));
    }
  }
  for (size_t u = 0; u < units.size(); ++u) {
    const Unit& unit = units[u];
    BRAID_RETURN_IF_ERROR(WaitWithPeer(ctx, recvs[u], ctx.left()));
    std::byte* dst = spec.result(unit.block) + unit.first * elem;
    if (unit.reduce) {
      const std::byte* incoming = scratch + (u % window) * slot_elems * elem;
      Reduce(dst, spec.local(unit.block) + unit.first * elem, incoming, unit.elems, spec.type,
             spec.op);
      if (unit.last_of_phase && spec.op == RedOp::kAvg) {
        ScaleForAverage(dst, unit.elems, spec.type, n);
      }
    }
    recvs[u].reset();
    if (u + window < units.size()) BRAID_RETURN_IF_ERROR(post_recv(u + window));
    if (unit.step + 1 < total_steps) {
      BRAID_RETURN_IF_ERROR(post_send(unit.step + 1, unit.chunk, spec.result(unit.block)));
    }
    // Keep the list of sends short on long pipelines.
    if (sends.size() > 64) {
      std::erase_if(sends, [](const RequestPtr& r) { return r->done() && r->status().ok(); });
    }
  }
  return WaitAllWithPeer(ctx, sends, ctx.right());
}

}  // namespace braid
