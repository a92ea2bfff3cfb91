// Ring ReduceScatter: n-1 pipelined reduce steps arranged so rank r ends holding block r.
#include <cstring>
#include <memory>

#include "collectives/collectives.h"
#include "collectives/ring_pipeline.h"

namespace braid {

absl::Status RingReduceScatter(const CollectiveContext& ctx, const void* send, void* recv,
                               size_t count, DataType type, RedOp op) {
  const size_t elem = DataTypeSize(type);
  auto* in = static_cast<const std::byte*>(send);
  auto* out = static_cast<std::byte*>(recv);
  if (ctx.nranks == 1 || count == 0) {
    if (in != out && count) std::memmove(out, in, count * elem);
    return absl::OkStatus();
  }
  // Partial sums of the blocks this rank only forwards live in a temporary buffer; its own
  // block is reduced straight into `recv`.
  auto partial = std::make_unique_for_overwrite<std::byte[]>(count * static_cast<size_t>(ctx.nranks) * elem);
  RingPipelineSpec spec;
  spec.type = type;
  spec.op = op;
  spec.block_begin = UniformBlocks(count, ctx.nranks);
  spec.local = [&](int b) { return in + spec.block_begin[static_cast<size_t>(b)] * elem; };
  spec.result = [&](int b) {
    return b == ctx.rank ? out : partial.get() + spec.block_begin[static_cast<size_t>(b)] * elem;
  };
  spec.phases = {{.reduce = true, .offset = -1}};
  return RunRingPipeline(ctx, spec);
}

}  // namespace braid
