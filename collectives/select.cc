// The selector: picks an algorithm per call from the message size and rank count.
#include "collectives/collectives.h"
#include "collectives/hierarchical.h"

namespace braid {
namespace {

// At or below this many bytes, recursive doubling's log2(n) rounds beat the ring's 2(n-1)
// steps; above it the ring's lower byte count per rank wins (docs/tuning.md).
constexpr size_t kRecursiveDoublingMaxBytes = 64 * 1024;

}  // namespace

absl::Status AllReduce(const CollectiveContext& ctx, const void* send, void* recv, size_t count,
                       DataType type, RedOp op) {
  // Node-aware first: ranks sharing hosts, several hosts (collectives/hierarchical.h).
  if (UseHierarchicalAllReduce(ctx)) return HierarchicalAllReduce(ctx, send, recv, count, type, op);
  if (count * DataTypeSize(type) <= kRecursiveDoublingMaxBytes) {
    return RecursiveDoublingAllReduce(ctx, send, recv, count, type, op);
  }
  return RingAllReduce(ctx, send, recv, count, type, op);
}

}  // namespace braid
