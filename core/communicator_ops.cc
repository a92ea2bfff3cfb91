// The collectives of Communicator: argument validation (so bad input is an error, never a
// crash) and the body each one runs, shared by the blocking and nonblocking forms.
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "collectives/collectives.h"
#include "core/communicator.h"
#include "core/status.h"

namespace braid {
namespace {

absl::Status Invalid(absl::string_view operation, absl::string_view detail) {
  return MakeError(absl::StatusCode::kInvalidArgument, operation, detail);
}

// Checks a buffer of `count` elements of `type` (times `multiplier` for gathered buffers).
absl::Status CheckBuffer(absl::string_view operation, absl::string_view name, const void* buffer,
                         size_t count, size_t multiplier, DataType type) {
  size_t elems = 0, bytes = 0;
  if (__builtin_mul_overflow(count, multiplier, &elems) ||
      __builtin_mul_overflow(elems, DataTypeSize(type), &bytes) ||
      bytes > static_cast<size_t>(std::numeric_limits<ptrdiff_t>::max())) {
    return Invalid(operation, absl::StrCat("count ", count, " overflows the buffer size"));
  }
  if (buffer == nullptr && bytes != 0) {
    return Invalid(operation, absl::StrCat(name, " is null but count is ", count));
  }
  return absl::OkStatus();
}

// In-place calls pass exactly the in-place pointer; any other overlap between the buffers
// would let a later step read data an earlier step already overwrote.
absl::Status CheckOverlap(absl::string_view operation, const void* send, size_t send_bytes,
                          const void* recv, size_t recv_bytes, const void* inplace_send) {
  auto s = reinterpret_cast<uintptr_t>(send), r = reinterpret_cast<uintptr_t>(recv);
  bool disjoint = send_bytes == 0 || recv_bytes == 0 || s + send_bytes <= r || r + recv_bytes <= s;
  if (disjoint || send == inplace_send) return absl::OkStatus();
  return MakeError(absl::StatusCode::kInvalidArgument, operation,
                   "sendbuff and recvbuff overlap but the call is not in-place",
                   "use disjoint buffers, or the in-place layout of include/braid/braid.h");
}

}  // namespace

std::string DescribeCollective(absl::string_view name, DataType type, size_t count) {
  return absl::StrCat(name, " (", std::string(DataTypeName(type)), ", ", count, " elements)");
}

absl::StatusOr<Communicator::Body> Communicator::AllReduceBody(const void* send, void* recv,
                                                               size_t count, DataType t,
                                                               RedOp op) {
  BRAID_RETURN_IF_ERROR(CheckBuffer("AllReduce", "sendbuff", send, count, 1, t));
  BRAID_RETURN_IF_ERROR(CheckBuffer("AllReduce", "recvbuff", recv, count, 1, t));
  size_t bytes = count * DataTypeSize(t);
  BRAID_RETURN_IF_ERROR(CheckOverlap("AllReduce", send, bytes, recv, bytes, recv));
  return Body([=](CollectiveContext& ctx) {
    BRAID_RETURN_IF_ERROR(BeginCollective(ctx, {"AllReduce", t, count, static_cast<int>(op), -1}));
    return braid::AllReduce(ctx, send, recv, count, t, op);
  });
}

absl::StatusOr<Communicator::Body> Communicator::AllGatherBody(const void* send, void* recv,
                                                               size_t count, DataType t) {
  BRAID_RETURN_IF_ERROR(CheckBuffer("AllGather", "sendbuff", send, count, 1, t));
  BRAID_RETURN_IF_ERROR(
      CheckBuffer("AllGather", "recvbuff", recv, count, static_cast<size_t>(nranks_), t));
  size_t bytes = count * DataTypeSize(t);
  BRAID_RETURN_IF_ERROR(CheckOverlap("AllGather", send, bytes, recv,
                                     bytes * static_cast<size_t>(nranks_),
                                     static_cast<const std::byte*>(recv) + bytes * rank_));
  return Body([=](CollectiveContext& ctx) {
    BRAID_RETURN_IF_ERROR(BeginCollective(ctx, {"AllGather", t, count, -1, -1}));
    return braid::AllGather(ctx, send, recv, count, t);
  });
}

absl::StatusOr<Communicator::Body> Communicator::ReduceScatterBody(const void* send, void* recv,
                                                                   size_t count, DataType t,
                                                                   RedOp op) {
  BRAID_RETURN_IF_ERROR(
      CheckBuffer("ReduceScatter", "sendbuff", send, count, static_cast<size_t>(nranks_), t));
  BRAID_RETURN_IF_ERROR(CheckBuffer("ReduceScatter", "recvbuff", recv, count, 1, t));
  size_t bytes = count * DataTypeSize(t);
  // In-place here means recvbuff == sendbuff + rank * recvcount.
  if (recv != static_cast<const std::byte*>(send) + bytes * rank_) {
    BRAID_RETURN_IF_ERROR(CheckOverlap("ReduceScatter", send,
                                       bytes * static_cast<size_t>(nranks_), recv, bytes, nullptr));
  }
  return Body([=](CollectiveContext& ctx) {
    BRAID_RETURN_IF_ERROR(
        BeginCollective(ctx, {"ReduceScatter", t, count, static_cast<int>(op), -1}));
    return braid::ReduceScatter(ctx, send, recv, count, t, op);
  });
}

absl::StatusOr<Communicator::Body> Communicator::BroadcastBody(const void* send, void* recv,
                                                               size_t count, DataType t,
                                                               int root) {
  if (root < 0 || root >= nranks_) {
    return Invalid("Broadcast", absl::StrCat("root ", root, " is out of range for ", nranks_,
                                             " ranks"));
  }
  BRAID_RETURN_IF_ERROR(CheckBuffer("Broadcast", "recvbuff", recv, count, 1, t));
  if (rank_ == root) {
    BRAID_RETURN_IF_ERROR(CheckBuffer("Broadcast", "sendbuff", send, count, 1, t));
    size_t bytes = count * DataTypeSize(t);
    BRAID_RETURN_IF_ERROR(CheckOverlap("Broadcast", send, bytes, recv, bytes, recv));
  }
  return Body([=](CollectiveContext& ctx) {
    BRAID_RETURN_IF_ERROR(BeginCollective(ctx, {"Broadcast", t, count, -1, root}));
    return braid::Broadcast(ctx, send, recv, count, t, root);
  });
}

Communicator::Body Communicator::BarrierBody() {
  return [](CollectiveContext& ctx) {
    BRAID_RETURN_IF_ERROR(BeginCollective(ctx, {"Barrier", DataType::kUint8, 0, -1, -1}));
    return DisseminationBarrier(ctx);
  };
}

absl::Status Communicator::AllReduce(const void* send, void* recv, size_t count, DataType t,
                                     RedOp op) {
  BRAID_ASSIGN_OR_RETURN(Body body, AllReduceBody(send, recv, count, t, op));
  return Run(DescribeCollective("AllReduce", t, count), body);
}

absl::Status Communicator::AllGather(const void* send, void* recv, size_t count, DataType t) {
  BRAID_ASSIGN_OR_RETURN(Body body, AllGatherBody(send, recv, count, t));
  return Run(DescribeCollective("AllGather", t, count), body);
}

absl::Status Communicator::ReduceScatter(const void* send, void* recv, size_t count, DataType t,
                                         RedOp op) {
  BRAID_ASSIGN_OR_RETURN(Body body, ReduceScatterBody(send, recv, count, t, op));
  return Run(DescribeCollective("ReduceScatter", t, count), body);
}

absl::Status Communicator::Broadcast(const void* send, void* recv, size_t count, DataType t,
                                     int root) {
  BRAID_ASSIGN_OR_RETURN(Body body, BroadcastBody(send, recv, count, t, root));
  return Run(DescribeCollective("Broadcast", t, count), body);
}

absl::Status Communicator::Barrier() { return Run("Barrier", BarrierBody()); }

}  // namespace braid

// ---- Reduce and AllToAll(v) ----

namespace braid {

absl::StatusOr<Communicator::Body> Communicator::ReduceBody(const void* send, void* recv,
                                                            size_t count, DataType t, RedOp op,
                                                            int root) {
  if (root < 0 || root >= nranks_) {
    return Invalid("Reduce", absl::StrCat("root ", root, " is out of range for ", nranks_, " ranks"));
  }
  BRAID_RETURN_IF_ERROR(CheckBuffer("Reduce", "sendbuff", send, count, 1, t));
  if (rank_ == root) {  // recvbuff is significant only at the root, as in NCCL.
    BRAID_RETURN_IF_ERROR(CheckBuffer("Reduce", "recvbuff", recv, count, 1, t));
    size_t bytes = count * DataTypeSize(t);
    BRAID_RETURN_IF_ERROR(CheckOverlap("Reduce", send, bytes, recv, bytes, recv));
  }
  return Body([=](CollectiveContext& ctx) {
    BRAID_RETURN_IF_ERROR(BeginCollective(ctx, {"Reduce", t, count, static_cast<int>(op), root}));
    return ReduceToRoot(ctx, send, recv, count, t, op, root);
  });
}

namespace {

// A send-side copy for in-place AllToAll(v): blocks are overwritten as others are still sent.
struct Staged {
  const void* send;
  std::shared_ptr<std::vector<std::byte>> copy;
};
Staged StageIfInPlace(const void* send, const void* recv, size_t bytes) {
  if (send != recv || bytes == 0) return {send, nullptr};
  return {nullptr, std::make_shared<std::vector<std::byte>>(bytes)};
}

}  // namespace

absl::StatusOr<Communicator::Body> Communicator::AllToAllBody(const void* send, void* recv,
                                                              size_t count, DataType t) {
  const size_t n = static_cast<size_t>(nranks_);
  BRAID_RETURN_IF_ERROR(CheckBuffer("AllToAll", "sendbuff", send, count, n, t));
  BRAID_RETURN_IF_ERROR(CheckBuffer("AllToAll", "recvbuff", recv, count, n, t));
  size_t total = count * n * DataTypeSize(t);
  BRAID_RETURN_IF_ERROR(CheckOverlap("AllToAll", send, total, recv, total, recv));
  Staged staged = StageIfInPlace(send, recv, total);
  auto layout = std::make_shared<std::vector<size_t>>(2 * n);
  for (size_t r = 0; r < n; ++r) (*layout)[r] = count, (*layout)[n + r] = r * count;
  return Body([=](CollectiveContext& ctx) {
    BRAID_RETURN_IF_ERROR(BeginCollective(ctx, {"AllToAll", t, count, -1, -1}));
    const void* from = staged.send;
    if (staged.copy) from = std::memcpy(staged.copy->data(), recv, total);
    std::span<const size_t> counts(layout->data(), n), displs(layout->data() + n, n);
    return PairwiseAllToAllv(ctx, from, counts, displs, recv, counts, displs, t);
  });
}

absl::StatusOr<Communicator::Body> Communicator::AllToAllvBody(
    const void* send, const size_t* send_counts, const size_t* send_displs, void* recv,
    const size_t* recv_counts, const size_t* recv_displs, DataType t) {
  const size_t n = static_cast<size_t>(nranks_), elem = DataTypeSize(t);
  if (!send_counts || !send_displs || !recv_counts || !recv_displs) {
    return Invalid("AllToAllv", "sendcounts, sdispls, recvcounts and rdispls must not be null");
  }
  // Extent of each side in elements: the end of its furthest block.
  auto extent = [&](const size_t* counts, const size_t* displs, const char* name,
                    size_t* out) -> absl::Status {
    *out = 0;
    for (size_t r = 0; r < n; ++r) {
      size_t end = 0;
      if (__builtin_add_overflow(counts[r], displs[r], &end)) {
        return Invalid("AllToAllv", absl::StrCat(name, " block ", r, " overflows"));
      }
      if (counts[r]) *out = std::max(*out, end);
    }
    return absl::OkStatus();
  };
  size_t send_extent = 0, recv_extent = 0;
  BRAID_RETURN_IF_ERROR(extent(send_counts, send_displs, "sendbuff", &send_extent));
  BRAID_RETURN_IF_ERROR(extent(recv_counts, recv_displs, "recvbuff", &recv_extent));
  BRAID_RETURN_IF_ERROR(CheckBuffer("AllToAllv", "sendbuff", send, send_extent, 1, t));
  BRAID_RETURN_IF_ERROR(CheckBuffer("AllToAllv", "recvbuff", recv, recv_extent, 1, t));
  const size_t me = static_cast<size_t>(rank_);
  if (send_counts[me] != recv_counts[me]) {
    return MakeError(absl::StatusCode::kInvalidArgument, "AllToAllv",
                     absl::StrCat("rank ", rank_, " sends ", send_counts[me],
                                  " elements to itself but expects to receive ", recv_counts[me]),
                     "make sendcounts[rank] equal recvcounts[rank]");
  }
  // Receive blocks that overlap would make the result depend on arrival order.
  std::vector<std::pair<size_t, size_t>> blocks;
  for (size_t r = 0; r < n; ++r)
    if (recv_counts[r]) blocks.push_back({recv_displs[r], r});
  std::sort(blocks.begin(), blocks.end());
  for (size_t i = 1; i < blocks.size(); ++i) {
    size_t prev = blocks[i - 1].second, cur = blocks[i].second;
    if (recv_displs[prev] + recv_counts[prev] > recv_displs[cur]) {
      return MakeError(absl::StatusCode::kInvalidArgument, "AllToAllv",
                       absl::StrCat("the receive blocks from rank ", prev, " and rank ", cur,
                                    " overlap in recvbuff"),
                       "give every peer its own range of recvbuff (rdispls/recvcounts)");
    }
  }
  BRAID_RETURN_IF_ERROR(CheckOverlap("AllToAllv", send, send_extent * elem, recv,
                                     recv_extent * elem, recv));
  Staged staged = StageIfInPlace(send, recv, send_extent * elem);
  auto layout = std::make_shared<std::vector<size_t>>(4 * n);
  std::copy(send_counts, send_counts + n, layout->begin());
  std::copy(send_displs, send_displs + n, layout->begin() + static_cast<ptrdiff_t>(n));
  std::copy(recv_counts, recv_counts + n, layout->begin() + static_cast<ptrdiff_t>(2 * n));
  std::copy(recv_displs, recv_displs + n, layout->begin() + static_cast<ptrdiff_t>(3 * n));
  return Body([=](CollectiveContext& ctx) {
    // Counts differ per rank by design: only the collective and datatype must agree.
    BRAID_RETURN_IF_ERROR(BeginCollective(ctx, {"AllToAllv", t, 0, -1, -1}));
    const void* from = staged.send;
    if (staged.copy) from = std::memcpy(staged.copy->data(), recv, staged.copy->size());
    auto part = [&](size_t i) { return std::span<const size_t>(layout->data() + i * n, n); };
    return PairwiseAllToAllv(ctx, from, part(0), part(1), recv, part(2), part(3), t);
  });
}

}  // namespace braid
