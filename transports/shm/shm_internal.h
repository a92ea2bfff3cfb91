// Internal state of the shared-memory transport: requests, messages, peers and the transport
// class. shm_transport.cc holds setup, progress and sleeping; shm_data.cc the send and receive
// paths and tag matching; shm_close.cc goodbyes and failures; handshake.cc connection setup.
//
// Each peer pair has a unix stream socket and two rings (ring.h), one per direction. Data never
// crosses the socket: it carries the hello (with the ring's memfd), one-byte wakeups for a
// sleeping peer, heartbeats, and the goodbye. Its end of stream is how a dead peer is noticed, even while
// nothing is outstanding. Small messages are copied through ring slots; large ones, once the
// consumer proved it may, are read by the receiver straight out of the sender's buffer with
// process_vm_readv (one copy, no staging), and an acknowledgement slot completes the send.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/unique_fd.h"
#include "transports/shm/ring.h"
#include "transports/shm/shm_transport.h"
#include "transports/transport.h"

namespace braid::shm {

// Wake, heartbeat and goodbye bytes on a pair's socket.
inline constexpr char kWakeByte = 'w';
inline constexpr char kHeartbeatByte = 'h';
inline constexpr char kGoodbyeByte = 'g';
// Followed by a 4-byte length and the text of the failure that makes this rank give up.
inline constexpr char kAbandonByte = 'x';

class ShmRequest final : public Request {
 public:
  ShmRequest(void* buf, size_t len, uint64_t tag)
      : buf(static_cast<char*>(buf)), len(len), tag(tag) {}
  void Finish(absl::Status status, size_t bytes) { Complete(std::move(status), bytes); }

  char* buf;
  size_t len;
  uint64_t tag;
};
using ShmRequestPtr = std::shared_ptr<ShmRequest>;

// An incoming message: eager (bytes arrive through slots) or by reference (kRndv).
struct Message {
  uint64_t tag = 0;
  uint64_t total_len = 0;
  uint64_t received = 0;
  bool by_reference = false;
  uint64_t address = 0;  // by reference: the sender's buffer.
  uint64_t send_id = 0;  // by reference: acknowledged once read.
  ShmRequestPtr request;         // the matched receive, if any.
  char* dest = nullptr;          // user buffer, heap buffer, or null (discarding).
  std::unique_ptr<char[]> heap;  // eager and unexpected: bytes wait here for their irecv.
  bool complete() const { return received == total_len; }
};
using MessagePtr = std::shared_ptr<Message>;

// One queued item of a peer's outgoing ring.
struct SendOp {
  SlotKind kind = SlotKind::kEager;
  ShmRequestPtr request;  // null for acknowledgements.
  const char* buf = nullptr;
  uint64_t len = 0;
  uint64_t tag = 0;
  uint64_t done = 0;  // kEager: bytes copied into slots so far.
  uint64_t send_id = 0;
};

struct Peer {
  int rank = -1;
  std::string host;
  pid_t pid = -1;  // from SO_PEERCRED, for process_vm_readv.
  UniqueFd socket;
  void* out_map = nullptr;  // our ring to the peer (we produce).
  void* in_map = nullptr;   // the peer's ring to us (we consume).
  Ring* out() const { return static_cast<Ring*>(out_map); }
  Ring* in() const { return static_cast<Ring*>(in_map); }

  std::deque<SendOp> sendq;
  std::unordered_map<uint64_t, ShmRequestPtr> awaiting_ack;  // by-reference sends, by id.
  uint64_t next_send_id = 1;
  // Posted receives in posting order; the first with a tag is the one its next message
  // matches. A short vector scanned linearly: no allocation per receive once it has grown,
  // and collectives keep few receives posted per peer.
  std::vector<ShmRequestPtr> posted;
  // Removes and returns the first receive posted for `tag`, or null.
  ShmRequestPtr TakePosted(uint64_t tag) {
    for (auto it = posted.begin(); it != posted.end(); ++it) {
      if ((*it)->tag != tag) continue;
      ShmRequestPtr request = std::move(*it);
      posted.erase(it);
      return request;
    }
    return nullptr;
  }
  std::unordered_map<uint64_t, std::deque<MessagePtr>> unexpected;  // arrivals by tag.
  MessagePtr cur;  // the eager message whose segments are arriving.
  std::string inbox;  // socket bytes not parsed yet.
  uint64_t activity = 0;  // reads of socket bytes (heartbeats, wakeups) from this peer.
  bool goodbye = false;
  enum class State { kOpen, kClosed, kFailed } state = State::kOpen;
  absl::Status error;  // why it is closed or failed.
};

class ShmTransport final : public Transport {
 public:
  explicit ShmTransport(const TransportContext& context);
  ~ShmTransport() override;

  std::string name() const override { return "shm"; }
  absl::StatusOr<Blob> listen() override;
  absl::StatusOr<std::vector<std::unique_ptr<Connection>>> connect(
      std::span<const int> peers, std::span<const Blob> blobs, Deadline deadline) override;
  absl::StatusOr<MemoryRegion*> register_memory(void* base, size_t length) override;
  absl::Status deregister_memory(MemoryRegion* region) override;
  absl::Status progress() override;
  int wait_fd() const override { return epoll_fd_.get(); }
  void prepare_to_sleep() override;
  // shm_close.cc: heartbeats on the pairs' sockets (see core/heartbeat.h).
  bool send_heartbeats() override;
  void read_activity(std::span<uint64_t> counters) override;
  void peer_failed(int rank, const absl::Status& why) override;
  std::vector<int> failed_peers() override;
  void Abandon(const absl::Status& why);

  absl::StatusOr<RequestPtr> Send(Peer& peer, const void* buf, size_t len, uint64_t tag);
  absl::StatusOr<RequestPtr> Recv(Peer& peer, void* buf, size_t len, uint64_t tag);

 private:
  // shm_transport.cc
  absl::Status MapPeer(Peer& peer, int in_fd);
  void ProgressLocked();
  void DrainSocket(Peer& peer);
  void ParseInbox(Peer& peer);
  void CheckSockets();
  // shm_data.cc
  void PumpSends(Peer& peer);
  bool PollRing(Peer& peer);  // true if it handled a slot.
  void HandleSlot(Peer& peer, SlotHeader* slot);
  void StartMessage(Peer& peer, const MessagePtr& message);
  void Match(Peer& peer, const MessagePtr& message, const ShmRequestPtr& request);
  void ReadByReference(Peer& peer, const MessagePtr& message);
  void Acknowledge(Peer& peer, uint64_t send_id);
  void Publish(Peer& peer, Ring* ring, uint64_t tail);
  void Wake(Peer& peer);
  // shm_close.cc
  void SendGoodbyes();
  void OnEndOfStream(Peer& peer);
  // blame_peer: record the peer as failed (false when it only relays a failure elsewhere).
  void FailPeer(Peer& peer, absl::Status status, bool fatal, bool blame_peer = true);
  absl::Status PeerError(absl::StatusCode code, const Peer& peer, absl::string_view detail,
                         absl::string_view remedy) const;
  absl::Status PeerDied(const Peer& peer) const;
  absl::Status PeerUnusable(const Peer& peer) const;
  bool HasPending(const Peer& peer) const;

  std::mutex mu_;
  TransportContext ctx_;
  UniqueFd listen_fd_;
  std::string listen_path_;  // unlinked once every peer connected.
  UniqueFd epoll_fd_;        // the wait fd: every peer socket plus wake_fd_.
  UniqueFd wake_fd_;         // eventfd: prepare_to_sleep found work already waiting.
  std::vector<std::unique_ptr<Peer>> peers_;
  std::list<MemoryRegion> regions_;
  absl::Status fatal_;  // first communicator-fatal error; progress() returns it.
  absl::Status abandoned_;  // another transport's failure (AbandonShmPeers).
  std::vector<int> failed_ranks_;  // ranks a fatal error blamed (failed_peers()).
  bool slept_ = false;  // prepare_to_sleep ran: the sockets may have news.
  uint32_t passes_ = 0; // progress passes, to look at the sockets now and then while busy.
};

class ShmConnection final : public Connection {
 public:
  ShmConnection(ShmTransport* transport, Peer* peer) : transport_(transport), peer_(peer) {}
  int peer() const override { return peer_->rank; }
  absl::StatusOr<RequestPtr> isend(const void* buf, size_t len, uint64_t tag,
                                   const MemoryRegion*) override {
    return transport_->Send(*peer_, buf, len, tag);
  }
  absl::StatusOr<RequestPtr> irecv(void* buf, size_t len, uint64_t tag,
                                   const MemoryRegion*) override {
    return transport_->Recv(*peer_, buf, len, tag);
  }

 private:
  ShmTransport* transport_;
  Peer* peer_;
};

}  // namespace braid::shm
