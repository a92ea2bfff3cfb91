// Ring AllGather: n-1 pipelined steps; each rank forwards the block it just received.
#include <cstring>

#include "collectives/collectives.h"
#include "collectives/ring_pipeline.h"

namespace braid {

absl::Status RingAllGather(const CollectiveContext& ctx, const void* send, void* recv,
                           size_t count, DataType type) {
  const size_t elem = DataTypeSize(type);
  auto* out = static_cast<std::byte*>(recv);
  std::byte* own = out + static_cast<size_t>(ctx.rank) * count * elem;
  if (send != own && count) std::memcpy(own, send, count * elem);
  if (ctx.nranks == 1 || count == 0) return absl::OkStatus();
  RingPipelineSpec spec;
  spec.type = type;
  spec.block_begin = UniformBlocks(count, ctx.nranks);
  spec.result = [&](int b) { return out + spec.block_begin[static_cast<size_t>(b)] * elem; };
  spec.local = spec.result;  // the only local block (our own) is already in place.
  spec.phases = {{.reduce = false, .offset = 0}};
  return RunRingPipeline(ctx, spec);
}

}  // namespace braid
