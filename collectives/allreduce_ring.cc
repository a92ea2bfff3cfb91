// Ring AllReduce: reduce-scatter then allgather over the ring pipeline. Bandwidth-optimal:
// every rank sends and receives 2(n-1)/n of the buffer.
#include <cstring>

#include "collectives/collectives.h"
#include "collectives/ring_pipeline.h"

namespace braid {

absl::Status RingAllReduce(const CollectiveContext& ctx, const void* send, void* recv,
                           size_t count, DataType type, RedOp op) {
  const size_t elem = DataTypeSize(type);
  if (ctx.nranks == 1 || count == 0) {
    if (send != recv && count) std::memcpy(recv, send, count * elem);
    return absl::OkStatus();
  }
  RingPipelineSpec spec;
  spec.type = type;
  spec.op = op;
  spec.block_begin = BalancedBlocks(count, ctx.nranks);
  auto* in = static_cast<const std::byte*>(send);
  auto* out = static_cast<std::byte*>(recv);
  spec.local = [&](int b) { return in + spec.block_begin[static_cast<size_t>(b)] * elem; };
  spec.result = [&](int b) { return out + spec.block_begin[static_cast<size_t>(b)] * elem; };
  // Reduce-scatter leaves block rank+1 complete here; the allgather starts by sending it.
  spec.phases = {{.reduce = true, .offset = 0}, {.reduce = false, .offset = 1}};
  return RunRingPipeline(ctx, spec);
}

}  // namespace braid
