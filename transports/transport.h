// The one transport interface every transport implements (tcp, verbs, ofi, shm). Collectives
// are written against it only; a transport never knows which collective it serves.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/config.h"
#include "core/deadline.h"
#include "core/status.h"
#include "absl/strings/str_cat.h"

namespace braid {

// Opaque bytes a transport hands to bootstrap and receives back for each peer.
using Blob = std::vector<std::byte>;

// What a transport needs to know about the communicator it serves.
struct TransportContext {
  int rank = 0;
  int nranks = 1;
  uint64_t comm_id = 0;               // random per communicator; checked on every connection.
  std::vector<std::byte> secret;      // from the unique id; authenticates connections.
  std::vector<std::string> hosts;     // hostname of each rank, for error messages.
  // Numeric address of the interface chosen for the data path (BRAID_SOCKET_IFNAME, else the
  // one that routes to the bootstrap root); empty lets a transport choose.
  std::string local_address;
  Config config;
};

// Result of probe(): whether the transport can run here, and if not, why.
struct ProbeResult {
  bool usable = false;
  std::string reason;  // why not (or a one-line description of what was found).
};

// A registered memory region. Transports with pinned memory (verbs, ofi) keep their keys in
// `native`; for TCP registration is bookkeeping only. Owned by the transport.
struct MemoryRegion {
  void* base = nullptr;
  size_t length = 0;
  uint64_t remote_key = 0;  // what a peer needs to iwrite into it (0 if not applicable).
  void* native = nullptr;   // transport-private.
};

// One outstanding send, receive or write. Shared between the caller and the transport so that
// dropping it early (abort) never leaves the transport pointing at freed state. Completion may
// happen in any order relative to posting; the caller matches by object, never by position.
class Request {
 public:
  virtual ~Request() = default;
  bool done() const { return done_; }
  const absl::Status& status() const { return status_; }
  size_t bytes() const { return bytes_; }  // bytes transferred once done.

 protected:
  void Complete(absl::Status status, size_t bytes) {
    status_ = std::move(status);
    bytes_ = bytes;
    done_ = true;
  }

 private:
  bool done_ = false;
  absl::Status status_;
  size_t bytes_ = 0;
};
using RequestPtr = std::shared_ptr<Request>;

// A remote buffer a peer advertised for one-sided writes.
struct RemoteBuffer {
  uint64_t address = 0;
  uint64_t remote_key = 0;
  size_t length = 0;
};

// A reliable connection to one peer. Messages are matched by (connection, tag): a receive
// completes with the message sent under the same tag, whatever the arrival order. A receive
// posted with a length different from the matching send fails with InvalidArgument naming both.
class Connection {
 public:
  virtual ~Connection() = default;
  virtual int peer() const = 0;

  // `region` is optional: the registered region containing the buffer, if the caller has one.
  // The buffer must stay valid until the request is done.
  virtual absl::StatusOr<RequestPtr> isend(const void* buf, size_t len, uint64_t tag,
                                           const MemoryRegion* region = nullptr) = 0;
  virtual absl::StatusOr<RequestPtr> irecv(void* buf, size_t len, uint64_t tag,
                                           const MemoryRegion* region = nullptr) = 0;

  // Optional one-sided write (verbs, EFA RMA): writes `len` bytes into the peer's advertised
  // buffer at `offset` and delivers `tag` as a completion on the peer's matching irecv of 0 bytes.
  virtual bool supports_write() const { return false; }
  virtual absl::StatusOr<RequestPtr> iwrite(const void* /*buf*/, size_t /*len*/,
                                            const MemoryRegion* /*region*/,
                                            const RemoteBuffer& /*dst*/, size_t /*offset*/,
                                            uint64_t /*tag*/) {
    return absl::UnimplementedError("this transport has no one-sided writes");
  }
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual std::string name() const = 0;

  // Starts listening and returns this rank's address blob, to be exchanged through bootstrap.
  virtual absl::StatusOr<Blob> listen() = 0;

  // Connects to every rank in `peers` given all ranks' blobs (indexed by rank). Every rank calls
  // this with the peers it wants; the transport decides which side dials. Fails with a clear
  // error naming the unreachable rank and host by `deadline`.
  virtual absl::StatusOr<std::vector<std::unique_ptr<Connection>>> connect(
      std::span<const int> peers, std::span<const Blob> blobs, Deadline deadline) = 0;

  virtual absl::StatusOr<MemoryRegion*> register_memory(void* base, size_t length) = 0;
  virtual absl::Status deregister_memory(MemoryRegion* region) = 0;

  // Makes progress without blocking: reaps completions, resubmits partial work, completes
  // requests. An error here is fatal for the communicator (a peer died, a decoder refused bytes).
  virtual absl::Status progress() = 0;

  // A file descriptor that becomes readable when progress() may complete something. The
  // progress engine polls it after a short spin; progress() re-arms it.
  virtual int wait_fd() const = 0;

  // Called right before sleeping on wait_fd() (after a progress() that completed nothing). A
  // transport that polls cheaply while the caller spins (e.g. direct non-blocking receives)
  // arms its wakeup sources here, so wait_fd() becomes readable for anything that arrives from
  // now on. Whoever sleeps on wait_fd() must call it first.
  virtual void prepare_to_sleep() {}

  // ---- Liveness (optional; see core/heartbeat.h). A transport that implements these lets the
  // communicator detect a peer that stops without closing its connections (SIGSTOP, a cut
  // link) within BRAID_HEARTBEAT_TIMEOUT, with no per-message cost.
  // Sends a tiny heartbeat to every open peer (skipping peers with data queued: that data is
  // the heartbeat). Called from the communicator's heartbeat thread, concurrently with
  // progress(): must be thread-safe. Returns false if the transport has no heartbeats.
  virtual bool send_heartbeats() { return false; }
  // Adds to counters[r] (indexed by rank) a number that grows whenever anything (data or a
  // heartbeat) arrived from rank r during progress(). Thread-safe.
  virtual void read_activity(std::span<uint64_t> /*counters*/) {}
  // The communicator decided `rank` failed (e.g. silent past the heartbeat timeout): fail it
  // as if its connection had broken, so peers told of our shutdown blame the right rank. For a
  // rank it has no connection to (hybrid: a peer of the other part) a transport only records
  // it as the failure to name in its goodbyes.
  virtual void peer_failed(int /*rank*/, const absl::Status& /*why*/) {}
  // Ranks this transport saw fail (connection closed or reset without a clean shutdown,
  // refused bytes, or named as the first failure by a peer that gave up). Thread-safe.
  virtual std::vector<int> failed_peers() { return {}; }
};

// ---- Tags and the operation check byte (mismatch detection). Bits 56..63 of a tag carry a
// check byte of the collective's signature (operation, datatype, count, root, reduction),
// bits 40..55 its sequence number, the rest are the algorithm's (step, chunk). Receives match
// messages by the whole tag. When a message and a posted receive on one connection have the
// same sequence bits but different check bytes, the ranks called different collectives at the
// same point: a transport must fail that receive with TagConflictError, never let it wait
// until the timeout (TagsConflict tells; conformance tests check it).
// Layout of a collective's tag: [point-to-point 1][check 7][sequence 16][step 20][chunk 20].
// Point-to-point tags (top bit set) are numbered per peer and never conflict with anything.
inline constexpr int kTagCheckShift = 56;
inline constexpr uint64_t kTagCheckMask = 0x7F;
inline constexpr int kTagSequenceShift = 40;
inline constexpr uint64_t kTagPointToPointBit = uint64_t{1} << 63;
inline bool TagsConflict(uint64_t a, uint64_t b) {
  if ((a | b) & kTagPointToPointBit) return false;
  return ((a >> kTagSequenceShift) & 0xFFFF) == ((b >> kTagSequenceShift) & 0xFFFF) &&
         ((a >> kTagCheckShift) & kTagCheckMask) != ((b >> kTagCheckShift) & kTagCheckMask);
}
// The error for a conflict: names both check bytes; `peer` describes the sender.
inline absl::Status TagConflictError(absl::string_view transport, int rank,
                                     absl::string_view peer, uint64_t ours, uint64_t theirs) {
  return MakeError(
      absl::StatusCode::kInvalidArgument,
      absl::StrCat(transport, " transport (rank ", rank, "): collective mismatch with ", peer),
      absl::StrCat("for collective #", (ours >> kTagSequenceShift) & 0xFFFF, " it sent a message ",
                   "of an operation with signature check 0x", absl::Hex((theirs >> kTagCheckShift) & kTagCheckMask),
                   " but this rank called one with check 0x", absl::Hex((ours >> kTagCheckShift) & kTagCheckMask),
                   ": the ranks called different collectives, datatypes, counts, reduction ops ",
                   "or roots at the same point"),
      "make every rank issue the same collectives with the same arguments in the same order; "
      "run with BRAID_DEBUG=CHECK to have each rank print both calls");
}

// One row of the transport registry: a name, a probe and a factory. A new transport is one
// folder and one line in transports/registry.cc.
struct TransportEntry {
  std::string name;
  int preference;  // higher wins when BRAID_TRANSPORT is unset.
  ProbeResult (*probe)(const Config& config);
  absl::StatusOr<std::unique_ptr<Transport>> (*create)(const TransportContext& context);
};

const std::vector<TransportEntry>& TransportRegistry();

// Picks the transport: the forced one (BRAID_TRANSPORT, an error that says why if unusable) or
// the usable one with the highest preference. `hosts` (each rank's host name, from bootstrap)
// enables the host-local transports, which have a negative preference: "shm" when every rank
// is on one host, "hybrid" (shm within hosts, the best network transport between them) when
// some ranks share a host and others do not. Without `hosts` they are never picked.
absl::StatusOr<const TransportEntry*> ChooseTransport(const Config& config,
                                                      std::span<const std::string> hosts = {});

}  // namespace braid
