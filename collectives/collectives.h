// The collective algorithms, written once against the transport interface. Buffers are raw
// bytes plus a datatype; in-place calls pass the same pointer (or the rank's slice, as NCCL).
#pragma once

#include <cstddef>
#include <span>

#include "absl/status/status.h"
#include "collectives/algorithms.h"
#include "collectives/context.h"
#include "core/datatype.h"

namespace braid {

// Each collective with the algorithm the selector picks (collectives/select.cc), and the same
// with a given algorithm (kAuto/unknown runs the ring or chain).
absl::Status AllReduce(const CollectiveContext& ctx, const void* send, void* recv, size_t count,
                       DataType type, RedOp op);
absl::Status AllGather(const CollectiveContext& ctx, const void* send, void* recv, size_t count,
                       DataType type);
absl::Status ReduceScatter(const CollectiveContext& ctx, const void* send, void* recv,
                           size_t count, DataType type, RedOp op);
absl::Status Broadcast(const CollectiveContext& ctx, const void* send, void* recv, size_t count,
                       DataType type, int root);
absl::Status RunAllReduce(const CollectiveContext& ctx, Algorithm algorithm, const void* send,
                          void* recv, size_t count, DataType type, RedOp op);
absl::Status RunAllGather(const CollectiveContext& ctx, Algorithm algorithm, const void* send,
                          void* recv, size_t count, DataType type);
absl::Status RunReduceScatter(const CollectiveContext& ctx, Algorithm algorithm,
                              const void* send, void* recv, size_t count, DataType type,
                              RedOp op);
absl::Status RunBroadcast(const CollectiveContext& ctx, Algorithm algorithm, const void* send,
                          void* recv, size_t count, DataType type, int root);
// What the selector would pick for `bytes` (the nccl-tests size) on this communicator.
Choice ChooseAlgorithm(const CollectiveContext& ctx, Collective c, size_t bytes);

// AllReduce: ring (reduce-scatter then allgather, chunked and pipelined), recursive doubling
// (log2 n whole-buffer exchanges, for tiny messages), Rabenseifner (recursive halving then
// doubling) and the double binary tree (two pipelined trees, each with half the data).
absl::Status RingAllReduce(const CollectiveContext& ctx, const void* send, void* recv,
                           size_t count, DataType type, RedOp op);
absl::Status RecursiveDoublingAllReduce(const CollectiveContext& ctx, const void* send,
                                        void* recv, size_t count, DataType type, RedOp op);
absl::Status RabenseifnerAllReduce(const CollectiveContext& ctx, const void* send, void* recv,
                                   size_t count, DataType type, RedOp op);
absl::Status TreeAllReduce(const CollectiveContext& ctx, const void* send, void* recv,
                           size_t count, DataType type, RedOp op);
// AllGather; `recv` holds nranks * count elements, rank r's contribution at r * count.
absl::Status RingAllGather(const CollectiveContext& ctx, const void* send, void* recv,
                           size_t count, DataType type);
absl::Status BruckAllGather(const CollectiveContext& ctx, const void* send, void* recv,
                            size_t count, DataType type);
absl::Status RecursiveDoublingAllGather(const CollectiveContext& ctx, const void* send,
                                        void* recv, size_t count, DataType type);
// ReduceScatter; `send` holds nranks * count elements, rank r receives the reduction of block r.
absl::Status RingReduceScatter(const CollectiveContext& ctx, const void* send, void* recv,
                               size_t count, DataType type, RedOp op);
absl::Status RecursiveHalvingReduceScatter(const CollectiveContext& ctx, const void* send,
                                           void* recv, size_t count, DataType type, RedOp op);
// Broadcast from `root`: pipelined chain or pipelined binary tree.
absl::Status ChainBroadcast(const CollectiveContext& ctx, const void* send, void* recv,
                            size_t count, DataType type, int root);
absl::Status TreeBroadcast(const CollectiveContext& ctx, const void* send, void* recv,
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
