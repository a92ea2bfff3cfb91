// braidSend/braidRecv on a Communicator: validation, numbering (a transfer matches the peer's
// transfer of the same order in the opposite direction) and the body that runs a batch.
#include "absl/strings/str_cat.h"
#include "core/communicator.h"
#include "core/status.h"

namespace braid {

absl::StatusOr<PeerTransfer> Communicator::PrepareTransfer(bool is_send, const void* buffer,
                                                           size_t count, DataType t, int peer) {
  const char* what = is_send ? "Send" : "Recv";
  if (peer < 0 || peer >= nranks_) {
    return MakeError(absl::StatusCode::kInvalidArgument, what,
                     absl::StrCat("peer ", peer, " is out of range for ", nranks_, " ranks"),
                     absl::StrCat("pass 0 <= peer < ", nranks_));
  }
  size_t bytes = 0;
  if (__builtin_mul_overflow(count, DataTypeSize(t), &bytes) ||
      bytes > static_cast<size_t>(std::numeric_limits<ptrdiff_t>::max())) {
    return MakeError(absl::StatusCode::kInvalidArgument, what,
                     absl::StrCat("count ", count, " overflows the buffer size"));
  }
  if (buffer == nullptr && bytes != 0) {
    return MakeError(absl::StatusCode::kInvalidArgument, what,
                     absl::StrCat(is_send ? "sendbuff" : "recvbuff", " is null but count is ",
                                  count));
  }
  PeerTransfer transfer{is_send, peer, const_cast<void*>(buffer), bytes, 0};
  if (peer != rank_) {
    std::lock_guard<std::mutex> lock(transfer_mutex_);
    uint64_t& issued = (is_send ? sends_issued_ : recvs_issued_)[static_cast<size_t>(peer)];
    transfer.order = issued++;
  }
  return transfer;
}

absl::StatusOr<Communicator::Body> Communicator::PointToPointBody(
    std::vector<PeerTransfer> batch) {
  BRAID_RETURN_IF_ERROR(CheckSelfTransfers(batch, rank_));
  return Body([batch = std::move(batch)](CollectiveContext& ctx) {
    return RunPointToPoint(ctx, batch);
  });
}

}  // namespace braid
