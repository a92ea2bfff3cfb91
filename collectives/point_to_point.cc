#include "collectives/point_to_point.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status.h"

namespace braid {
namespace {

struct Interval {
  uintptr_t begin, end;
};

// Answers "does [begin, end) overlap any receive buffer of the batch?" in O(log n).
class ReceiveBuffers {
 public:
  explicit ReceiveBuffers(std::span<const PeerTransfer> batch) {
    for (const PeerTransfer& t : batch) {
      auto begin = reinterpret_cast<uintptr_t>(t.buffer);
      if (!t.is_send && t.bytes) sorted_.push_back({begin, begin + t.bytes});
    }
    std::sort(sorted_.begin(), sorted_.end(),
              [](const Interval& a, const Interval& b) { return a.begin < b.begin; });
    uintptr_t furthest = 0;
    for (const Interval& i : sorted_) max_end_.push_back(furthest = std::max(furthest, i.end));
  }
  bool Overlaps(const void* buffer, size_t bytes) const {
    auto begin = reinterpret_cast<uintptr_t>(buffer), end = begin + bytes;
    auto after = std::lower_bound(sorted_.begin(), sorted_.end(), end,
                                  [](const Interval& i, uintptr_t e) { return i.begin < e; });
    if (bytes == 0 || after == sorted_.begin()) return false;
    return max_end_[static_cast<size_t>(after - sorted_.begin()) - 1] > begin;
  }

 private:
  std::vector<Interval> sorted_;
  std::vector<uintptr_t> max_end_;  // max_end_[i]: furthest end among sorted_[0..i].
};

}  // namespace

absl::Status CheckSelfTransfers(std::span<const PeerTransfer> batch, int rank) {
  std::vector<size_t> sends, recvs;
  for (const PeerTransfer& t : batch) {
    if (t.peer == rank) (t.is_send ? sends : recvs).push_back(t.bytes);
  }
  if (sends.size() != recvs.size()) {
    return MakeError(absl::StatusCode::kInvalidArgument, "braidSend/braidRecv to self",
                     absl::StrCat("rank ", rank, " posts ", sends.size(), " sends to itself but ",
                                  recvs.size(), " receives from itself"),
                     "pair every send to your own rank with a receive from it inside the same "
                     "braidGroupStart/braidGroupEnd");
  }
  for (size_t i = 0; i < sends.size(); ++i) {
    if (sends[i] != recvs[i]) {
      return MakeError(absl::StatusCode::kInvalidArgument, "braidSend/braidRecv to self",
                       absl::StrCat("rank ", rank, "'s send to itself #", i, " is ", sends[i],
                                    " bytes but its receive #", i, " is ", recvs[i], " bytes"),
                       "give matching sends and receives the same count and datatype");
    }
  }
  return absl::OkStatus();
}

absl::Status RunPointToPoint(const CollectiveContext& ctx, std::span<const PeerTransfer> batch) {
  ReceiveBuffers receives(batch);
  std::vector<std::unique_ptr<std::byte[]>> staged;
  std::vector<const void*> source(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    const PeerTransfer& t = batch[i];
    source[i] = t.buffer;
    if (!t.is_send || !receives.Overlaps(t.buffer, t.bytes)) continue;
    staged.push_back(std::make_unique_for_overwrite<std::byte[]>(t.bytes));
    std::memcpy(staged.back().get(), t.buffer, t.bytes);
    source[i] = staged.back().get();
  }
  std::vector<RequestPtr> requests(batch.size());
  for (bool sends : {false, true}) {
    for (size_t i = 0; i < batch.size(); ++i) {
      const PeerTransfer& t = batch[i];
      if (t.is_send != sends || t.peer == ctx.rank) continue;
      uint64_t tag = CollectiveContext::PointToPointTag(t.order);
      Connection& peer = ctx.peer(t.peer);
      BRAID_ASSIGN_OR_RETURN(requests[i], sends ? peer.isend(source[i], t.bytes, tag)
                                                : peer.irecv(t.buffer, t.bytes, tag));
    }
  }
  // Self transfers pair up in order (CheckSelfTransfers made their counts and sizes agree).
  size_t next_recv = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!batch[i].is_send || batch[i].peer != ctx.rank) continue;
    while (batch[next_recv].is_send || batch[next_recv].peer != ctx.rank) ++next_recv;
    if (batch[i].bytes) std::memcpy(batch[next_recv].buffer, source[i], batch[i].bytes);
    ++next_recv;
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    if (requests[i]) BRAID_RETURN_IF_ERROR(WaitWithPeer(ctx, requests[i], batch[i].peer));
  }
  return absl::OkStatus();
}

}  // namespace braid
