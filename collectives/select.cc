// The selector: every collective call asks the cost model (collectives/cost_model.cc) for the
// cheapest algorithm and chunk at this size and rank count, unless BRAID_ALGO forces one.
#include "absl/strings/str_cat.h"
#include "collectives/algorithms.h"
#include "collectives/collectives.h"
#include "collectives/hierarchical.h"
#include "core/log.h"

namespace braid {
namespace {

const Tuning& TuningOf(const CollectiveContext& ctx) {
  static const Tuning defaults;
  return ctx.tuning ? *ctx.tuning : defaults;
}

// The context the chosen algorithm runs with: the model's chunk unless BRAID_CHUNK_SIZE is set.
CollectiveContext WithChoice(const CollectiveContext& ctx, Collective c, size_t bytes,
                             Choice* choice) {
  const Tuning& tuning = TuningOf(ctx);
  *choice = Select(c, ctx.nranks, bytes, tuning);
  CollectiveContext chosen = ctx;
  if (!chosen.chunk_bytes) chosen.chunk_bytes = choice->chunk_bytes;
  auto& last = tuning.last_logged[static_cast<size_t>(c)];
  std::pair<Algorithm, size_t> now{choice->algorithm, chosen.chunk_bytes};
  if (last == now && !LogEnabled(LogLevel::kTrace)) return chosen;
  last = now;
  BRAID_LOG(kInfo, ctx.operation, ": ", AlgorithmName(choice->algorithm),
            tuning.overrides.For(c) != Algorithm::kAuto ? " (BRAID_ALGO)" : "", ", chunk ",
            chosen.chunk_bytes, " B, predicted ", choice->predicted_s * 1e6, " us (",
            tuning.source, ")");
  return chosen;
}

}  // namespace

Choice ChooseAlgorithm(const CollectiveContext& ctx, Collective c, size_t bytes) {
  return Select(c, ctx.nranks, bytes, TuningOf(ctx));
}

absl::Status AllReduce(const CollectiveContext& ctx, const void* send, void* recv, size_t count,
                       DataType type, RedOp op) {
  // Node-aware first, unless BRAID_ALGO forces an algorithm: ranks sharing hosts, several hosts
  // (collectives/hierarchical.h); its leaders' AllReduce comes back here and is selected.
  if (TuningOf(ctx).overrides.For(Collective::kAllReduce) == Algorithm::kAuto &&
      UseHierarchicalAllReduce(ctx)) {
    return HierarchicalAllReduce(ctx, send, recv, count, type, op);
  }
  Choice choice;
  CollectiveContext run = WithChoice(ctx, Collective::kAllReduce, count * DataTypeSize(type), &choice);
  return RunAllReduce(run, choice.algorithm, send, recv, count, type, op);
}

absl::Status RunAllReduce(const CollectiveContext& ctx, Algorithm algorithm, const void* send,
                          void* recv, size_t count, DataType type, RedOp op) {
  switch (algorithm) {
    case Algorithm::kRecursiveDoubling:
      return RecursiveDoublingAllReduce(ctx, send, recv, count, type, op);
    case Algorithm::kRabenseifner:
      return RabenseifnerAllReduce(ctx, send, recv, count, type, op);
    case Algorithm::kTree: return TreeAllReduce(ctx, send, recv, count, type, op);
    default: return RingAllReduce(ctx, send, recv, count, type, op);
  }
}

absl::Status AllGather(const CollectiveContext& ctx, const void* send, void* recv, size_t count,
                       DataType type) {
  Choice choice;
  size_t total = count * DataTypeSize(type) * static_cast<size_t>(ctx.nranks);
  CollectiveContext run = WithChoice(ctx, Collective::kAllGather, total, &choice);
  return RunAllGather(run, choice.algorithm, send, recv, count, type);
}

absl::Status RunAllGather(const CollectiveContext& ctx, Algorithm algorithm, const void* send,
                          void* recv, size_t count, DataType type) {
  switch (algorithm) {
    case Algorithm::kBruck: return BruckAllGather(ctx, send, recv, count, type);
    case Algorithm::kRecursiveDoubling:
      return RecursiveDoublingAllGather(ctx, send, recv, count, type);
    default: return RingAllGather(ctx, send, recv, count, type);
  }
}

absl::Status ReduceScatter(const CollectiveContext& ctx, const void* send, void* recv,
                           size_t count, DataType type, RedOp op) {
  Choice choice;
  size_t total = count * DataTypeSize(type) * static_cast<size_t>(ctx.nranks);
  CollectiveContext run = WithChoice(ctx, Collective::kReduceScatter, total, &choice);
  return RunReduceScatter(run, choice.algorithm, send, recv, count, type, op);
}

absl::Status RunReduceScatter(const CollectiveContext& ctx, Algorithm algorithm,
                              const void* send, void* recv, size_t count, DataType type,
                              RedOp op) {
  if (algorithm == Algorithm::kRecursiveHalving) {
    return RecursiveHalvingReduceScatter(ctx, send, recv, count, type, op);
  }
  return RingReduceScatter(ctx, send, recv, count, type, op);
}

absl::Status Broadcast(const CollectiveContext& ctx, const void* send, void* recv, size_t count,
                       DataType type, int root) {
  Choice choice;
  CollectiveContext run = WithChoice(ctx, Collective::kBroadcast, count * DataTypeSize(type), &choice);
  return RunBroadcast(run, choice.algorithm, send, recv, count, type, root);
}

absl::Status RunBroadcast(const CollectiveContext& ctx, Algorithm algorithm, const void* send,
                          void* recv, size_t count, DataType type, int root) {
  if (algorithm == Algorithm::kTree) return TreeBroadcast(ctx, send, recv, count, type, root);
  return ChainBroadcast(ctx, send, recv, count, type, root);
}

}  // namespace braid
