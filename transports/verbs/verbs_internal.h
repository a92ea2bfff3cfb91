// Internal state of the verbs transport. verbs_transport.cc: setup, connection establishment,
// registration, progress and teardown; verbs_data.cc: the message protocol (tag matching,
// eager/rendezvous, credits); verbs_failure.cc: error completions, async events, peers that
// die or shut down.
//
// Protocol, per peer, over QP 0 (ordered): every message is a SEND of a WireHeader (plus
// payload for eager data) into one of the peer's kRecvSlots pre-posted receive slots.
//   EAGER(tag, len, data)      len <= kEagerMax: copied out of the slot on arrival.
//   RTS(tag, len, send id)     larger: the receiver matches it to an irecv, registers the
//   CTS(send id, recv id, addr, rkey)   buffer and answers with its address; the sender
//   RDMA WRITEs (striped over all QPs), then
//   FIN(recv id)               completes the receive. When every write went on QP 0 the FIN is
//                              posted right behind them (RC places the data before delivering
//                              it); writes striped over several QPs send it once all completed.
//   REFUSE(send id, len)       length mismatch (or unregistrable buffer): both sides fail.
//   CREDIT                     returns receive slots when there is nothing to piggyback on.
// Credits: a sender may have at most kRecvSlots messages unconsumed at the peer; each header
// returns the slots the sender has reposted since its last message. One credit is reserved for
// CREDIT messages so two peers that both ran out can always tell each other.
// Liveness: one TCP socket per peer carries nothing but the goodbye (with the rank to blame, if
// any) at a clean shutdown; its end without a goodbye means the peer process died.
#pragma once

#include <infiniband/verbs.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "core/reg_cache.h"
#include "core/staging_pool.h"
#include "core/unique_fd.h"
#include "transports/liveness_socket.h"
#include "transports/transport.h"
#include "transports/verbs/verbs_device.h"
#include "transports/verbs/verbs_transport.h"

namespace braid::verbs {

inline constexpr size_t kSlotBytes = 8192;       // one eager message (header + payload).
inline constexpr int kRecvSlots = 64;            // receive slots posted per peer on QP 0.
inline constexpr int kSendSlots = 512;           // staging slots shared by all peers.
inline constexpr int kSendQueueDepth = 256;      // send WRs per QP.
inline constexpr size_t kWriteChunk = 4u << 20;  // largest single RDMA WRITE.
inline constexpr size_t kMinStripe = 256u << 10; // below this, writes use one QP.
inline constexpr uint32_t kInlineWanted = 256;
// Goodbye blame value: we left because the ranks called different collectives (no rank failed).
inline constexpr int32_t kGoodbyeMismatch = -2;
// Records on a liveness socket are 8 bytes: {magic, blame}. Heartbeats carry this magic.
inline constexpr uint32_t kHeartbeatMagic = 0x42525648;  // "HVRB"
inline constexpr size_t kLivenessRecordBytes = 8;

enum class MsgType : uint8_t { kEager = 1, kRts, kCts, kFin, kRefuse, kCredit };

struct WireHeader {
  MsgType type;
  uint8_t refused_unregistrable;  // REFUSE: the receiver could not register its buffer.
  uint16_t reserved;
  uint32_t credits;  // receive slots the sender reposted since its last message.
  uint64_t tag;
  uint64_t length;
  uint64_t id;       // RTS/CTS/REFUSE: send op; FIN: recv op.
  uint64_t addr;     // CTS: receive buffer.
  uint32_t rkey;     // CTS.
  uint32_t recv_id;  // CTS: receiver's op id, echoed in FIN.
};
static_assert(sizeof(WireHeader) == 48);
inline constexpr size_t kEagerMax = kSlotBytes - sizeof(WireHeader);

class VerbsRequest final : public Request {
 public:
  void Finish(absl::Status status, size_t bytes) {
    if (!done()) Complete(std::move(status), bytes);
  }
};
using VerbsRequestPtr = std::shared_ptr<VerbsRequest>;

struct Peer;

// A registration an operation uses: the caller's region, or one from the cache.
struct Registration {
  ibv_mr* mr = nullptr;
  RegistrationCache::Entry* cached = nullptr;  // to release; null for the caller's region.
};

struct PostedRecv {
  VerbsRequestPtr request;
  char* buf = nullptr;
  size_t len = 0;
  const MemoryRegion* region = nullptr;
  uint64_t tag = 0;
};

// A message that arrived before its irecv.
struct Arrival {
  MsgType type;          // kEager or kRts.
  uint64_t length = 0;
  uint64_t send_id = 0;  // kRts.
  std::unique_ptr<char[]> data;  // kEager.
};

struct OutMsg {
  WireHeader header{};
  const char* payload = nullptr;
  VerbsRequestPtr request;  // completed when the SEND completes (eager data only).
};

// A rendezvous send (or iwrite) waiting for its CTS or its writes.
struct SendOp {
  Peer* peer = nullptr;
  VerbsRequestPtr request;
  const char* buf = nullptr;
  size_t len = 0;
  uint64_t tag = 0;
  Registration reg;
  int writes_left = 0;
  uint32_t recv_id = 0;
  bool iwrite = false;
  // The FIN (or iwrite's tag) was queued right behind the writes on QP 0: RC delivers it after
  // the data is placed, so the receiver need not wait for our write completion's round trip.
  bool announced = false;
};

struct RecvOp {
  Peer* peer = nullptr;
  VerbsRequestPtr request;
  size_t len = 0;
  Registration reg;
};

// A send work request waiting for room in its QP's send queue.
struct PendingWr {
  ibv_send_wr wr{};
  ibv_sge sge{};
};

struct Qp {
  ibv_qp* qp = nullptr;
  int outstanding = 0;  // send WRs posted and not completed.
  std::deque<PendingWr> backlog;
};

struct Peer {
  int rank = -1;
  int index = 0;  // in peers_.
  std::string host;
  std::vector<Qp> qps;
  UniqueFd socket;  // liveness: heartbeats, then the goodbye.
  LivenessWriter writer;
  LivenessReader reader;
  uint64_t activity = 0;  // records that arrived on the socket (heartbeats).
  bool connected = false;
  int send_credits = kRecvSlots;
  int credits_to_return = 0;
  std::deque<OutMsg> outq;
  std::unordered_map<uint64_t, std::deque<PostedRecv>> posted;
  std::unordered_map<uint64_t, std::deque<Arrival>> unexpected;
  int ops = 0;  // rendezvous/iwrite ops in flight with this peer.
  enum class State { kOpen, kClosed, kFailed } state = State::kOpen;
  absl::Status error;
  bool goodbye = false;
};

// wr_id layout: kind (8 bits) | peer index (24) | slot or op id (32).
enum class WrKind : uint64_t { kRecv = 1, kSend = 2, kWrite = 3 };
inline uint64_t MakeWrId(WrKind kind, int peer, uint64_t id, int qp) {
  return (static_cast<uint64_t>(kind) << 56) | (static_cast<uint64_t>(qp & 0xff) << 48) |
         (static_cast<uint64_t>(peer & 0xffff) << 32) | (id & 0xffffffffu);
}
inline WrKind WrIdKind(uint64_t wr) { return static_cast<WrKind>(wr >> 56); }
inline int WrIdQp(uint64_t wr) { return static_cast<int>((wr >> 48) & 0xff); }
inline int WrIdPeer(uint64_t wr) { return static_cast<int>((wr >> 32) & 0xffff); }
inline uint32_t WrIdIndex(uint64_t wr) { return static_cast<uint32_t>(wr); }

class VerbsTransport final : public Transport {
 public:
  explicit VerbsTransport(const TransportContext& context);
  ~VerbsTransport() override;
  absl::Status Init();

  std::string name() const override { return "verbs"; }
  absl::StatusOr<Blob> listen() override;
  absl::StatusOr<std::vector<std::unique_ptr<Connection>>> connect(
      std::span<const int> peers, std::span<const Blob> blobs, Deadline deadline) override;
  absl::StatusOr<MemoryRegion*> register_memory(void* base, size_t length) override;
  absl::Status deregister_memory(MemoryRegion* region) override;
  absl::Status progress() override;
  int wait_fd() const override { return epoll_.get(); }
  void prepare_to_sleep() override;
  // verbs_failure.cc: heartbeats on the liveness sockets (see core/heartbeat.h).
  bool send_heartbeats() override;
  void read_activity(std::span<uint64_t> counters) override;
  void peer_failed(int rank, const absl::Status& why) override;
  std::vector<int> failed_peers() override;
  absl::Status Silence();  // SilenceVerbsTransportForTesting.

  // verbs_data.cc
  absl::StatusOr<RequestPtr> Send(Peer& peer, const void* buf, size_t len, uint64_t tag,
                                  const MemoryRegion* region);
  absl::StatusOr<RequestPtr> Recv(Peer& peer, void* buf, size_t len, uint64_t tag,
                                  const MemoryRegion* region);
  absl::StatusOr<RequestPtr> Write(Peer& peer, const void* buf, size_t len,
                                   const MemoryRegion* region, const RemoteBuffer& dst,
                                   size_t offset, uint64_t tag);

 private:
  // verbs_transport.cc
  absl::Status CreateQps(Peer& peer);
  absl::Status ConnectQp(Peer& peer, int q, uint32_t remote_qpn, uint32_t remote_psn,
                         const ibv_gid& remote_gid, uint16_t remote_lid, int remote_mtu);
  absl::Status PostRecvSlot(Peer& peer, int slot);
  absl::Status ConnectSockets(std::span<const int> peers, std::span<const Blob> blobs,
                              Deadline deadline);
  void PollCq();
  void CheckEvents();
  void Shutdown();
  absl::Status Verbs(absl::string_view what, int err, absl::string_view remedy = {}) const;
  // verbs_data.cc
  void OnCompletion(const ibv_wc& wc);
  void OnMessage(Peer& peer, int slot, size_t bytes);
  void Enqueue(Peer& peer, OutMsg msg);
  void Pump(Peer& peer);
  void PumpAll();
  bool PostControl(Peer& peer, OutMsg& msg);
  enum class PostResult { kPosted, kQueued, kFailed };  // kQueued: in the QP's backlog.
  PostResult PostSend(Peer& peer, int q, const ibv_send_wr& wr, const ibv_sge* sge);
  // Registers the source and records a rendezvous send or iwrite; returns its id.
  absl::StatusOr<uint32_t> NewSendOp(Peer& peer, const VerbsRequestPtr& request, const void* buf,
                                     size_t len, uint64_t tag, const MemoryRegion* region,
                                     bool iwrite);
  void StartWrites(SendOp& op, uint64_t id, uint64_t addr, uint32_t rkey);
  // What tells the peer that an op's writes are placed: FIN, or iwrite's zero-byte tag message.
  OutMsg WritesDoneMessage(SendOp& op);
  void AnnounceWrites(SendOp& op);
  void MatchRts(Peer& peer, PostedRecv recv, uint64_t send_id, uint64_t length);
  // A message with no posted receive arrived: fails the receives whose tags conflict with it.
  void FailConflictingReceives(Peer& peer, uint64_t arrived);
  absl::StatusOr<Registration> Register(const void* buf, size_t len, const MemoryRegion* region);
  void Unregister(Registration& reg);
  absl::Status Mismatch(const Peer& peer, uint64_t tag, size_t posted, size_t sent) const;
  // verbs_failure.cc
  void OnError(const ibv_wc& wc);
  void ReadAsyncEvents();
  void OnAsyncEvent(const ibv_async_event& event);
  void OnSocket(Peer& peer);
  // blame: the rank that failed (default: this peer), or kGoodbyeMismatch for nobody.
  void FailPeer(Peer& peer, absl::Status status, bool fatal, int blame = -1);
  void FailAll(absl::Status status);
  void ClosePeer(Peer& peer);
  absl::Status PeerDied(const Peer& peer) const;
  absl::Status PeerError(const Peer& peer, absl::string_view detail,
                         absl::string_view remedy) const;
  bool HasPending(const Peer& peer) const;

  friend class VerbsConnection;

  std::recursive_mutex mu_;
  TransportContext ctx_;
  ibv_context* device_ = nullptr;
  PortChoice port_;
  ibv_pd* pd_ = nullptr;
  ibv_comp_channel* channel_ = nullptr;
  ibv_cq* cq_ = nullptr;
  int cq_size_ = 0;
  unsigned unacked_cq_events_ = 0;
  uint32_t max_inline_ = 0;
  size_t max_write_ = kWriteChunk;
  int nqps_ = 1;
  uint32_t psn_ = 0;
  std::unique_ptr<StagingPool> send_pool_, recv_pool_;
  ibv_mr* send_mr_ = nullptr;
  ibv_mr* recv_mr_ = nullptr;
  std::vector<VerbsRequestPtr> send_slot_request_;  // by send slot.
  std::unique_ptr<RegistrationCache> cache_;
  std::list<MemoryRegion> regions_;

  UniqueFd listen_fd_;
  std::string listen_ip_;
  uint16_t listen_port_ = 0;
  UniqueFd epoll_;
  UniqueFd kick_;  // eventfd: makes wait_fd() readable when prepare_to_sleep found work.
  std::vector<std::unique_ptr<Peer>> peers_;  // by index; peer_of_rank_ maps ranks.
  std::vector<int> peer_of_rank_;
  std::unordered_map<uint32_t, Peer*> peer_of_qpn_;
  uint32_t next_op_ = 1;
  std::unordered_map<uint32_t, SendOp> sends_;
  std::unordered_map<uint32_t, RecvOp> recvs_;
  absl::Status fatal_;
  int fatal_rank_ = -1;     // the rank our fatal error blames; -1: none.
  std::vector<int> failed_ranks_;  // every other rank a fatal error blamed (failed_peers()).
  bool mismatch_ = false;   // a tag conflict was found: our goodbyes say so.
  std::chrono::steady_clock::time_point next_event_check_{};
  unsigned progress_calls_ = 0;  // progress() reads the clock only every 32nd call.
};

class VerbsConnection final : public Connection {
 public:
  VerbsConnection(VerbsTransport* transport, Peer* peer) : transport_(transport), peer_(peer) {}
  int peer() const override { return peer_->rank; }
  absl::StatusOr<RequestPtr> isend(const void* buf, size_t len, uint64_t tag,
                                   const MemoryRegion* region) override {
    return transport_->Send(*peer_, buf, len, tag, region);
  }
  absl::StatusOr<RequestPtr> irecv(void* buf, size_t len, uint64_t tag,
                                   const MemoryRegion* region) override {
    return transport_->Recv(*peer_, buf, len, tag, region);
  }
  bool supports_write() const override { return true; }
  absl::StatusOr<RequestPtr> iwrite(const void* buf, size_t len, const MemoryRegion* region,
                                    const RemoteBuffer& dst, size_t offset,
                                    uint64_t tag) override {
    return transport_->Write(*peer_, buf, len, region, dst, offset, tag);
  }

 private:
  VerbsTransport* transport_;
  Peer* peer_;
};

}  // namespace braid::verbs
