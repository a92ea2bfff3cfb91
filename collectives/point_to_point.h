// Point-to-point transfers (braidSend/braidRecv) as the collectives layer runs them: a batch is
// one call, or every send and receive a group issued on one communicator.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "collectives/context.h"

namespace braid {

// One braidSend or braidRecv, validated and numbered by its communicator.
struct PeerTransfer {
  bool is_send = false;
  int peer = 0;
  void* buffer = nullptr;  // only read for a send.
  size_t bytes = 0;
  uint64_t order = 0;      // its number among the transfers with `peer` in its direction.
};

// Sends to and receives from this rank itself must pair up inside a batch (k-th with k-th,
// same size), as nothing else could ever match them. The error says which.
absl::Status CheckSelfTransfers(std::span<const PeerTransfer> batch, int rank);

// Posts every receive, then every send, copies self transfers, and waits for all, so a batch
// that sends to and receives from the same peer cannot deadlock. A send whose buffer a receive
// of the batch overwrites is copied first (so in-place exchanges are well defined).
absl::Status RunPointToPoint(const CollectiveContext& ctx, std::span<const PeerTransfer> batch);

}  // namespace braid
