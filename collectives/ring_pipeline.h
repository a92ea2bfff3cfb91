// The engine behind every ring collective: blocks travel around the ring one step at a time,
// split into chunks so that chunk c of step s+1 leaves as soon as chunk c of step s arrived
// (and was reduced). Ring AllReduce, AllGather and ReduceScatter are configurations of it.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "collectives/context.h"
#include "core/datatype.h"

namespace braid {

// A run of n-1 ring steps. At its step s a rank sends block (rank + offset - s) and receives
// block (rank + offset - s - 1) from its left neighbour.
struct RingPhase {
  bool reduce = false;  // received chunks are reduced with the local contribution.
  int offset = 0;
};

struct RingPipelineSpec {
  DataType type = DataType::kFloat32;
  RedOp op = RedOp::kSum;
  std::vector<size_t> block_begin;  // element offsets, size nranks + 1.
  // This rank's contribution to a block (read by the first send and by reductions).
  std::function<const std::byte*(int block)> local;
  // Where a block's partial or final result lives (written by receives and reductions).
  std::function<std::byte*(int block)> result;
  std::vector<RingPhase> phases;
};

absl::Status RunRingPipeline(const CollectiveContext& ctx, const RingPipelineSpec& spec);

// Splits `count` elements into `parts` blocks whose sizes differ by at most one.
std::vector<size_t> BalancedBlocks(size_t count, int parts);
// Blocks of exactly `count` elements each.
std::vector<size_t> UniformBlocks(size_t count, int parts);

// Default pipeline chunk when BRAID_CHUNK_SIZE is unset: big enough to amortize per-message
// cost, small enough that a chunk and its reduction stay in cache.
inline constexpr size_t kDefaultChunkBytes = 512 * 1024;
inline constexpr int kRecvWindow = 4;  // receives kept posted ahead of the reducer.

}  // namespace braid
