// The collective algorithms, written once against the transport interface. Buffers are raw
// bytes plus a datatype; in-place calls pass the same pointer (or the rank's slice, as NCCL).
#pragma once

#include <cstddef>
#include <span>

#include "absl/status/status.h"
#include "collectives/context.h"
#include "core/datatype.h"

namespace braid {

// AllReduce with the algorithm the selector picks for this size and rank count.
absl::Status AllReduce(const CollectiveContext& ctx, const void* send, void* recv, size_t count,
                       DataType type, RedOp op);
// Ring: reduce-scatter then allgather, chunked and pipelined so chunks stay cache-resident.
absl::Status RingAllReduce(const CollectiveContext& ctx, const void* send, void* recv,
                           size_t count, DataType type, RedOp op);
// Recursive doubling: log2 n exchanges of the whole buffer; for small messages.
absl::Status RecursiveDoublingAllReduce(const CollectiveContext& ctx, const void* send,
                                        void* recv, size_t count, DataType type, RedOp op);
// Ring; `recv` holds nranks * count elements, rank r's contribution at r * count.
absl::Status RingAllGather(const CollectiveContext& ctx, const void* send, void* recv,
                           size_t count, DataType type);
// Ring; `send` holds nranks * count elements, rank r receives the reduction of block r.
absl::Status RingReduceScatter(const CollectiveContext& ctx, const void* send, void* recv,
                               size_t count, DataType type, RedOp op);
// Pipelined chain from `root`.
absl::Status ChainBroadcast(const CollectiveContext& ctx, const void* send, void* recv,
                            size_t count, DataType type, int root);
// Dissemination barrier: ceil(log2 n) rounds of zero-byte messages.
absl::Status DisseminationBarrier(const CollectiveContext& ctx);

// ---- Reduce and AllToAll (reduce_tree.cc, alltoall_pairwise.cc) ----
// Reduce to `root` (`recv` is written only there): binary tree for small messages, pipelined
// chain for large ones.
absl::Status ReduceToRoot(const CollectiveContext& ctx, const void* send, void* recv,
                          size_t count, DataType type, RedOp op, int root);
// Binary tree rooted at `root`, pipelined in chunks: log2(n) hops for small messages.
absl::Status TreeReduce(const CollectiveContext& ctx, const void* send, void* recv, size_t count,
                        DataType type, RedOp op, int root);
// Chain root-1 -> root-2 -> ... -> root+1 -> root, pipelined in chunks: every link busy at once.
absl::Status ChainReduce(const CollectiveContext& ctx, const void* send, void* recv,
                         size_t count, DataType type, RedOp op, int root);
// Pairwise exchange: at step k send to rank+k and receive from rank-k, a bounded number of
// steps in flight. Counts and displacements are in elements, indexed by peer; `send` must not
// overlap `recv` (callers stage in-place calls).
absl::Status PairwiseAllToAllv(const CollectiveContext& ctx, const void* send,
                               std::span<const size_t> send_counts,
                               std::span<const size_t> send_displs, void* recv,
                               std::span<const size_t> recv_counts,
                               std::span<const size_t> recv_displs, DataType type);

}  // namespace braid
