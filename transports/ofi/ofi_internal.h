// Internal state of the ofi transport.
//
// Protocol. Every Braid message starts with a control message (tag class kCtrlTag) carrying
// the sender's rank, a per-direction sequence number, the Braid tag and the length; small
// payloads ride inline (eager). Larger payloads follow as data messages whose libfabric tag
// encodes (sender rank, sequence, segment), striped across the NICs both ranks have and cut
// to the provider's max_msg_size. The receiver orders control messages by sequence, never by
// arrival (EFA's SRD is unordered), and matches them to receives by Braid tag in FIFO order;
// only then does it post the data receives straight into the user's buffer, so the length is
// checked before a byte lands.
//
// Liveness. RDM endpoints are connectionless and shm tells nothing when a peer dies, so each
// pair also keeps one authenticated TCP socket (the tcp transport's handshake: it proves the
// communicator secret) that carries only a goodbye on clean shutdown. Its end without a goodbye
// means the peer died.
//
// Files: fabric.cc (provider, NICs, MRs), ofi_connect.cc (addresses, liveness sockets,
// hello), ofi_transport.cc (setup, progress, sleeping, teardown), ofi_msg.cc
// (send/receive/matching/writes), ofi_peers.cc (goodbyes and failures).
#pragma once

#include <rdma/fi_rma.h>
#include <rdma/fi_tagged.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "absl/status/status.h"
#include "core/unique_fd.h"
#include "transports/ofi/fabric.h"
#include "transports/liveness_socket.h"
#include "transports/ofi/ofi_transport.h"
#include "transports/transport.h"

namespace braid::ofi {

inline constexpr uint64_t kCtrlTag = uint64_t{1} << 62;   // every control message.
inline constexpr uint64_t kDataBit = uint64_t{1} << 63;   // data: | rank:23 | seq:28 | seg:12 |
inline constexpr int kMaxRanks = 1 << 23;
inline constexpr uint32_t kMaxSegments = 1 << 12;
inline constexpr size_t kCtrlBytes = 8192;                // one control buffer (header + eager).
inline constexpr int kCtrlRecvs = 64;                     // control receives kept posted.
inline constexpr int kCtrlSendPool = 64;                  // pre-registered send bounce buffers.
inline constexpr uint64_t kMaxMessageBytes = uint64_t{1} << 40;
// What woke the epoll set behind wait_fd(): epoll_event data.
inline constexpr uint64_t kEventKick = 0, kEventTimer = 1, kEventCq = 2, kEventPeer = 16;

inline uint64_t DataTag(int rank, uint64_t seq, uint32_t segment) {
  return kDataBit | (static_cast<uint64_t>(rank) << 40) | ((seq & 0xFFFFFFF) << 12) | segment;
}

struct CtrlHeader {
  uint32_t magic = 0;
  uint32_t from_rank = 0;
  uint64_t seq = 0;
  uint64_t tag = 0;
  uint64_t len = 0;
  uint32_t nsegs = 0;   // data messages that follow; 0 = payload inline after the header.
  uint32_t version = 0;
};
static_assert(sizeof(CtrlHeader) == 40);
inline constexpr uint32_t kCtrlMagic = 0x4942524f;  // "ORBI"
// First message of each pair, from the lower rank only, before any traffic: libfabric 1.17's
// rxm refuses one of two simultaneous connection requests between a pair and then stalls
// sends queued on it; one side opening every connection avoids that.
inline constexpr uint32_t kHelloMagic = 0x4f4c4548;  // "HELO"
inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr size_t kEagerMax = kCtrlBytes - sizeof(CtrlHeader);
// One-sided writes: fi_writedata carries 4 bytes of remote CQ data, | rank:12 | write seq:20 |,
// per piece, and a control message with nsegs = kWriteNotice (len = pieces << 20 | write
// seq) delivers the tag. The notice is held back, in sequence, until every piece landed.
inline constexpr uint32_t kWriteNotice = 0xFFFFFFFFu;
inline constexpr int kMaxWriteRanks = 1 << 12;
inline uint32_t WriteData(int rank, uint64_t write_seq) {
  return (static_cast<uint32_t>(rank) << 20) | static_cast<uint32_t>(write_seq & 0xFFFFF);
}

class OfiRequest final : public Request {
 public:
  OfiRequest(void* buf, size_t len, uint64_t tag) : buf(static_cast<char*>(buf)), len(len), tag(tag) {}
  void Finish(absl::Status status, size_t bytes) {
    if (!done()) Complete(std::move(status), bytes);
  }
  // One of the request's libfabric operations completed (with `status`).
  void OpDone(const absl::Status& status) {
    if (!status.ok() && error.ok()) error = status;
    if (--ops_left == 0) Finish(error, error.ok() ? len : 0);
  }
  char* buf;
  size_t len;
  uint64_t tag;
  const MemoryRegion* region = nullptr;  // the caller's registration, if any.
  int ops_left = 0;
  absl::Status error;
};
using OfiRequestPtr = std::shared_ptr<OfiRequest>;

struct Peer;

// One libfabric operation; its fi_context2 is the op_context libfabric hands back (FI_CONTEXT
// and FI_CONTEXT2 make that storage ours, so it comes first and lives until the completion).
struct Op {
  fi_context2 ctx;
  enum class Kind { kCtrlRecv, kCtrlSend, kDataSend, kDataRecv, kWrite } kind;
  OfiRequestPtr request;          // null for control receives and discarded payloads.
  Peer* peer = nullptr;
  int rail = 0;
  char* buf = nullptr;
  size_t len = 0;
  fid_mr* mr = nullptr;           // registered for this operation only (closed at completion).
  std::unique_ptr<char[]> owned;  // bounce or discard buffer not from a pool.
  int pool_slot = -1;             // control send buffer from the pre-registered pool.
  // How to (re)post it: -FI_EAGAIN leaves it queued until progress frees room.
  bool send = false;
  void* desc = nullptr;
  fi_addr_t addr = FI_ADDR_UNSPEC;
  uint64_t fabric_tag = 0;         // kWrite: the remote CQ data instead.
  uint64_t remote_addr = 0, remote_key = 0;  // kWrite.
};

struct Message {  // a control message that arrived: an incoming Braid message.
  CtrlHeader header;
  std::unique_ptr<char[]> inline_data;
};

struct Goodbye {
  uint32_t magic = 0;
  uint32_t blame = 0;       // 0, or 1 + the rank whose failure made the sender leave.
  uint64_t sent = 0;        // messages the sender ever sent us: all must arrive first.
};
inline constexpr uint32_t kGoodbyeMagic = 0x45594247;  // "GBYE"
// A heartbeat is a Goodbye-sized record with this magic (and nothing else in it).
inline constexpr uint32_t kHeartbeatMagic = 0x54424248;  // "HBBT"

struct Peer {
  int rank = -1;
  std::string host;
  int index = 0;                      // in the transport's peers_.
  std::vector<fi_addr_t> addr;        // per rail shared with this peer.
  UniqueFd socket;                    // liveness: heartbeats, then the goodbye.
  LivenessWriter writer;
  LivenessReader reader;
  uint64_t activity = 0;              // records that arrived on the socket (heartbeats).
  Goodbye goodbye;
  bool said_goodbye = false;          // its goodbye arrived.
  bool hello_arrived = false;         // its hello (lower ranks only) arrived.
  uint64_t next_send_seq = 0;
  uint64_t next_recv_seq = 0;
  uint64_t next_write_seq = 0;                                      // writes we issued.
  std::unordered_map<uint32_t, int> written;  // its writes' pieces that landed, by write id.
  std::map<uint64_t, Message> arrived;                              // ahead of next_recv_seq.
  std::unordered_map<uint64_t, std::deque<OfiRequestPtr>> posted;   // receives by tag.
  std::unordered_map<uint64_t, std::deque<Message>> unexpected;     // messages by tag.
  enum class State { kOpen, kClosed, kFailed } state = State::kOpen;
  absl::Status error;  // why it is closed or failed.
};

class OfiTransport final : public Transport {
 public:
  OfiTransport(const TransportContext& context, FabricChoice fabric);
  ~OfiTransport() override;
  absl::Status Init();

  std::string name() const override { return "ofi"; }
  absl::StatusOr<Blob> listen() override;
  absl::StatusOr<std::vector<std::unique_ptr<Connection>>> connect(
      std::span<const int> peers, std::span<const Blob> blobs, Deadline deadline) override;
  absl::StatusOr<MemoryRegion*> register_memory(void* base, size_t length) override;
  absl::Status deregister_memory(MemoryRegion* region) override;
  absl::Status progress() override;
  int wait_fd() const override { return epoll_fd_.get(); }
  void prepare_to_sleep() override;
  // ofi_peers.cc: heartbeats on the liveness sockets (see core/heartbeat.h).
  bool send_heartbeats() override;
  void read_activity(std::span<uint64_t> counters) override;
  void peer_failed(int rank, const absl::Status& why) override;
  std::vector<int> failed_peers() override;

  absl::StatusOr<RequestPtr> Send(Peer& peer, const void* buf, size_t len, uint64_t tag,
                                  const MemoryRegion* region);
  absl::StatusOr<RequestPtr> Recv(Peer& peer, void* buf, size_t len, uint64_t tag,
                                  const MemoryRegion* region);
  bool can_write() const { return rails_[0]->can_write && ctx_.nranks <= kMaxWriteRanks; }
  absl::StatusOr<RequestPtr> Write(Peer& peer, const void* buf, size_t len,
                                   const MemoryRegion* region, const RemoteBuffer& dst,
                                   size_t offset, uint64_t tag);

 private:
  // ofi_transport.cc
  // Opens the fabric connections of new peers one side at a time (see kHelloMagic).
  absl::Status SayHello(std::span<Peer* const> peers, Deadline deadline);
  void ProgressLocked();
  void ReadCompletions(Rail& rail);
  void HandleCompletion(Op* op, size_t len);
  void OnRemoteWrite(uint64_t data);
  void HandleError(Rail& rail, const fi_cq_err_entry& err);
  void CheckSockets(int timeout_ms);
  void Kick();
  // ofi_msg.cc
  // Posts (or queues on -FI_EAGAIN) an operation; a hard error is fatal and returned.
  absl::Status Post(Op* op);
  int TryPost(Op* op);
  absl::Status PostFailed(Op* op, int rc);  // fatal: fails the op's request.
  void RetryPending();
  Op* NewOp(Op::Kind kind, Peer* peer, int rail);
  void FreeOp(Op* op);
  absl::Status PostCtrlRecv(Op* op);
  // Sends a control message (inline `payload` of header.len bytes if not null) for `request`.
  absl::Status SendCtrl(Peer& peer, const CtrlHeader& header, const void* payload,
                        const OfiRequestPtr& request);
  absl::StatusOr<void*> Describe(Op* op, const MemoryRegion* region);
  void OnCtrl(Op* op, size_t len);
  void Deliver(Peer& peer);
  void Match(Peer& peer, Message message, const OfiRequestPtr& request);
  // A message that matched no receive: fails a posted receive of the same collective sequence
  // but another signature check (TagsConflict) at once, as the contract asks.
  void FailConflictingReceive(Peer& peer, uint64_t arrived);
  // Posts the data receives of a matched message into `dest` (null: discard them).
  absl::Status PostDataRecvs(Peer& peer, const CtrlHeader& header, char* dest,
                             const OfiRequestPtr& request);
  struct Layout {
    uint32_t nsegs;
    size_t seg_size;
  };
  Layout SegmentsFor(const Peer& peer, size_t len) const;
  // ofi_peers.cc
  void SendGoodbyes();
  void OnSocketReadable(Peer& peer);
  void OnGoodbye(Peer& peer);
  void CloseIfDrained(Peer& peer);
  void FailPeer(Peer& peer, absl::Status status, bool fatal, int blame = -1);
  absl::Status PeerError(absl::StatusCode code, const Peer& peer, absl::string_view detail,
                         absl::string_view remedy) const;
  absl::Status PeerDied(const Peer& peer, absl::string_view how) const;
  Peer* PeerByRank(int rank);

  std::mutex mu_;
  TransportContext ctx_;
  FabricChoice fabric_;
  std::vector<std::unique_ptr<Rail>> rails_;
  UniqueFd listen_fd_;                  // liveness sockets are accepted here.
  UniqueFd epoll_fd_;                   // wait_fd(): CQ wait objects, sockets, kick, timer.
  UniqueFd kick_fd_;                    // eventfd: "progress now" (trywait said not to sleep).
  UniqueFd timer_fd_;                   // brief sleeps for rails without a wait object.
  bool kicked_ = false;
  int idle_sleeps_ = 0;                 // fallback sleeps since something last completed.
  bool check_sockets_ = true;
  std::chrono::steady_clock::time_point last_socket_check_{};
  std::vector<std::unique_ptr<Peer>> peers_;
  std::vector<Peer*> by_rank_;
  std::unordered_map<int, std::map<uint64_t, Message>> early_;  // from ranks not connected yet.
  std::unordered_set<int> early_hellos_;
  std::unordered_set<Op*> ops_;         // every live operation (owned).
  std::deque<Op*> pending_;             // posts refused with -FI_EAGAIN, in order.
  // Control buffers: receives kept posted on rail 0, and a pool of send bounce buffers.
  std::unique_ptr<char[]> ctrl_recv_slab_, ctrl_send_slab_;
  fid_mr* ctrl_recv_mr_ = nullptr;
  fid_mr* ctrl_send_mr_ = nullptr;
  std::vector<int> free_send_slots_;
  size_t max_segment_ = 0;
  std::list<MemoryRegion> regions_;
  absl::Status fatal_;
  int fatal_rank_ = -1;
  std::vector<int> failed_ranks_;  // every rank a fatal error blamed (failed_peers()).
  bool closing_ = false;
};

class OfiConnection final : public Connection {
 public:
  OfiConnection(OfiTransport* transport, Peer* peer) : transport_(transport), peer_(peer) {}
  int peer() const override { return peer_->rank; }
  absl::StatusOr<RequestPtr> isend(const void* buf, size_t len, uint64_t tag,
                                   const MemoryRegion* region) override {
    return transport_->Send(*peer_, buf, len, tag, region);
  }
  absl::StatusOr<RequestPtr> irecv(void* buf, size_t len, uint64_t tag,
                                   const MemoryRegion* region) override {
    return transport_->Recv(*peer_, buf, len, tag, region);
  }
  bool supports_write() const override { return transport_->can_write(); }
  absl::StatusOr<RequestPtr> iwrite(const void* buf, size_t len, const MemoryRegion* region,
                                    const RemoteBuffer& dst, size_t offset,
                                    uint64_t tag) override {
    return transport_->Write(*peer_, buf, len, region, dst, offset, tag);
  }

 private:
  OfiTransport* transport_;
  Peer* peer_;
};

// The MRs of a user-registered region, one per rail (MemoryRegion::native).
struct RegionMrs {
  std::vector<fid_mr*> mrs;
};

}  // namespace braid::ofi
