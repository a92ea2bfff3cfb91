// The collectives of Communicator: argument validation (so bad input is an error, never a
// crash) and the body each one runs, shared by the blocking and nonblocking forms.
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
  return Body([=](CollectiveContext& ctx) { return braid::AllReduce(ctx, send, recv, count, t, op); });
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
  return Body([=](CollectiveContext& ctx) { return braid::AllGather(ctx, send, recv, count, t); });
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
  return Body([=](CollectiveContext& ctx) { return braid::Broadcast(ctx, send, recv, count, t, root); });
}

Communicator::Body Communicator::BarrierBody() {
  return [](CollectiveContext& ctx) { return DisseminationBarrier(ctx); };
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
