// What an algorithm sees of its communicator: its rank, a connection per peer, the progress
// engine, a sequence number for tags and a deadline. Nothing here names a transport.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/deadline.h"
#include "core/progress.h"
#include "transports/transport.h"

namespace braid {

struct CollectiveContext {
  int rank = 0;
  int nranks = 1;
  std::span<Connection* const> peers;  // indexed by rank; nullptr at `rank`.
  const std::vector<std::string>* hosts = nullptr;
  ProgressEngine* engine = nullptr;
  uint64_t sequence = 0;   // the collective's number on this communicator, same on all ranks
                           // (point-to-point batches take none: only their peer sees them).
  Deadline deadline = Deadline::Never();
  size_t chunk_bytes = 0;  // 0 = the algorithm's default.
  std::string operation;   // e.g. "AllReduce #12 (float32 sum, 1024 elements)" for errors.
  std::vector<std::byte>* scratch = nullptr;  // reusable staging memory owned by the comm.

  Connection& peer(int r) const { return *peers[static_cast<size_t>(r)]; }
  absl::string_view host(int r) const {
    return hosts ? absl::string_view((*hosts)[static_cast<size_t>(r)]) : absl::string_view();
  }
  int left() const { return (rank + nranks - 1) % nranks; }
  int right() const { return (rank + 1) % nranks; }
  // Tag of one message of this collective: sequence, step and chunk, so messages of different
  // collectives or steps can never be matched to each other.
  static constexpr size_t kMaxChunksPerStep = size_t{1} << 20;  // chunk bits in a tag.
  // The top bit is never set here: it marks point-to-point tags (PointToPointTag).
  uint64_t tag(uint32_t step, uint32_t chunk) const {
    return ((sequence & 0x7FFFFF) << 40) | (uint64_t{step & 0xFFFFF} << 20) | (chunk & 0xFFFFF);
  }
  // Tag of the `order`-th braidSend/braidRecv between two ranks (per direction): point-to-point
  // messages match by (peer, order) and can never match a collective's message.
  static constexpr uint64_t kPointToPointTagBit = uint64_t{1} << 63;
  static uint64_t PointToPointTag(uint64_t order) {
    return kPointToPointTagBit | (order & (kPointToPointTagBit - 1));
  }
};

// Waits for a request exchanged with `peer`; on failure the error names the operation and peer.
absl::Status WaitWithPeer(const CollectiveContext& ctx, const RequestPtr& request, int peer);
// Waits for all of `requests`; `peer` is named on failure (-1: several peers).
absl::Status WaitAllWithPeer(const CollectiveContext& ctx, std::span<const RequestPtr> requests,
                             int peer);

}  // namespace braid
