// Pairwise-exchange AllToAll(v): at step k a rank sends its block for rank+k and receives the
// block from rank-k, so every step is a permutation and no rank is flooded by all others at
// once. A few steps stay in flight to hide latency; more would only queue in the transport.
#include <algorithm>
#include <cstring>
#include <vector>

#include "collectives/collectives.h"
#include "core/status.h"

namespace braid {
namespace {

constexpr int kStepsInFlight = 4;

}  // namespace

absl::Status PairwiseAllToAllv(const CollectiveContext& ctx, const void* send,
                               std::span<const size_t> send_counts,
                               std::span<const size_t> send_displs, void* recv,
                               std::span<const size_t> recv_counts,
                               std::span<const size_t> recv_displs, DataType type) {
  const int n = ctx.nranks, rank = ctx.rank;
  const size_t elem = DataTypeSize(type);
  const auto* in = static_cast<const std::byte*>(send);
  auto* out = static_cast<std::byte*>(recv);
  auto at = [elem](auto* base, std::span<const size_t> displs, int r) {
    return base + displs[static_cast<size_t>(r)] * elem;
  };
  auto bytes = [elem](std::span<const size_t> counts, int r) {
    return counts[static_cast<size_t>(r)] * elem;
  };
  // The validation (core/communicator_ops.cc) made sendcounts[rank] == recvcounts[rank].
  if (bytes(send_counts, rank)) {
    std::memcpy(at(out, recv_displs, rank), at(in, send_displs, rank), bytes(send_counts, rank));
  }
  // One message per ordered pair, even when empty, so a count mismatch between two ranks is
  // reported by the transport (it names both lengths) instead of waiting for the timeout.
  std::vector<std::pair<RequestPtr, RequestPtr>> steps(static_cast<size_t>(n));
  for (int k = 1; k < n; ++k) {
    if (k > kStepsInFlight) {
      auto& old = steps[static_cast<size_t>(k - kStepsInFlight)];
      int from = (rank - (k - kStepsInFlight) + n) % n, to = (rank + k - kStepsInFlight) % n;
      BRAID_RETURN_IF_ERROR(WaitWithPeer(ctx, old.first, from));
      BRAID_RETURN_IF_ERROR(WaitWithPeer(ctx, old.second, to));
      old = {};
    }
    const int to = (rank + k) % n, from = (rank - k + n) % n;
    auto& step = steps[static_cast<size_t>(k)];
    BRAID_ASSIGN_OR_RETURN(step.first, ctx.peer(from).irecv(at(out, recv_displs, from),
                                                            bytes(recv_counts, from), ctx.tag(0, 0)));
    BRAID_ASSIGN_OR_RETURN(step.second, ctx.peer(to).isend(at(in, send_displs, to),
                                                           bytes(send_counts, to), ctx.tag(0, 0)));
  }
  for (int k = std::max(1, n - kStepsInFlight); k < n; ++k) {
    auto& step = steps[static_cast<size_t>(k)];
    if (!step.first) continue;
    BRAID_RETURN_IF_ERROR(WaitWithPeer(ctx, step.first, (rank - k + n) % n));
    BRAID_RETURN_IF_ERROR(WaitWithPeer(ctx, step.second, (rank + k) % n));
  }
  return absl::OkStatus();
}

}  // namespace braid
