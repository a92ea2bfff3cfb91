// What an algorithm sees of its communicator: its rank, a connection per peer, the progress
// engine, a sequence number for tags and a deadline. Nothing here names a transport.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/datatype.h"
#include "core/deadline.h"
#include "core/progress.h"
#include "transports/transport.h"

namespace braid {

struct Tuning;  // collectives/algorithms.h

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
  // Check byte of the collective's signature, in every tag (transport.h: a peer in another
  // collective is an error, never a hang). Set by BeginCollective.
  uint8_t check = 0;
  bool agreement_round = false;  // BRAID_DEBUG=CHECK: BeginCollective compares every rank's call.
  const Tuning* tuning = nullptr;  // the selector's model and overrides; null = defaults.

  Connection& peer(int r) const { return *peers[static_cast<size_t>(r)]; }
  absl::string_view host(int r) const {
    return hosts ? absl::string_view((*hosts)[static_cast<size_t>(r)]) : absl::string_view();
  }
  int left() const { return (rank + nranks - 1) % nranks; }
  int right() const { return (rank + 1) % nranks; }
  // Tag of one message of this collective: check byte, sequence, step and chunk, so messages
  // of different collectives or steps can never be matched to each other (transport.h).
  static constexpr size_t kMaxChunksPerStep = size_t{1} << 20;  // chunk bits in a tag.
  static constexpr uint32_t kReservedStep = 0xFFFFF;  // BeginCollective's agreement round.
  // The top bit is never set here: it marks point-to-point tags (PointToPointTag).
  uint64_t tag(uint32_t step, uint32_t chunk) const {
    return (uint64_t{check & kTagCheckMask} << kTagCheckShift) |
           ((sequence & 0xFFFF) << kTagSequenceShift) | (uint64_t{step & 0xFFFFF} << 20) |
           (chunk & 0xFFFFF);
  }
  // Tag of the `order`-th braidSend/braidRecv between two ranks (per direction): point-to-point
  // messages match by (peer, order) and can never match a collective's message.
  static constexpr uint64_t kPointToPointTagBit = kTagPointToPointBit;
  static uint64_t PointToPointTag(uint64_t order) {
    return kPointToPointTagBit | (order & (kPointToPointTagBit - 1));
  }
};

// What every rank must agree on for one collective call. `name` is the collective ("AllReduce");
// op and root are -1 where they do not apply.
struct CollectiveSignature {
  std::string name;
  DataType type = DataType::kUint8;
  uint64_t count = 0;
  int op = -1;
  int root = -1;
};
// "AllReduce(float, 1024 elements, op sum)" for mismatch errors.
std::string DescribeSignature(const CollectiveSignature& signature);
// Called by a collective's body before its first message: stamps the signature's check byte
// into ctx's tags and, with ctx.agreement_round (BRAID_DEBUG=CHECK), exchanges the full
// signature with every peer first and fails, describing both calls, if any rank differs.
absl::Status BeginCollective(CollectiveContext& ctx, const CollectiveSignature& signature);
// The agreement round's wire form (fixed size; exposed for the fuzz targets and tests).
inline constexpr size_t kWireSignatureBytes = 64;
std::array<std::byte, kWireSignatureBytes> EncodeSignature(const CollectiveSignature& signature,
                                                           uint64_t sequence);
// Checks the size and the name's termination; other fields are described, not trusted.
absl::StatusOr<CollectiveSignature> DecodeSignature(std::span<const std::byte> bytes,
                                                    uint64_t* sequence);

// Waits for a request exchanged with `peer`; on failure the error names the operation and peer.
absl::Status WaitWithPeer(const CollectiveContext& ctx, const RequestPtr& request, int peer);
// One pass of the progress engine, for algorithms that advance whichever of several requests
// completes first (the simulated fabric suspends the rank here until something completes).
absl::Status WaitForProgress(const CollectiveContext& ctx);
// Waits for all of `requests`; `peer` is named on failure (-1: several peers).
absl::Status WaitAllWithPeer(const CollectiveContext& ctx, std::span<const RequestPtr> requests,
                             int peer);

}  // namespace braid
