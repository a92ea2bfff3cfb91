// Internal state of the io_uring TCP transport: requests, in-flight messages, sockets (one per
// stream) and peers, and the transport class. tcp_transport.cc holds setup and progress;
// tcp_close.cc goodbyes, disconnects and failures; tcp_tx.cc the send path; tcp_rx.cc the
// receive path and tag matching.
//
// Latency design: while the progress engine spins, small frames go out with a direct
// non-blocking sendmsg() and come in with a direct non-blocking recv() ("polled" sockets); no
// io_uring operation, completion, task_work, IPI or eventfd write is on that path. io_uring
// carries what would block: sends the socket buffer cannot take, large receives straight into
// user buffers, and a receive armed on every socket when the engine is about to sleep
// (prepare_to_sleep), which is what makes wait_fd() readable when data arrives.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

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
#include "transports/tcp/socket_util.h"
#include "transports/tcp/tcp_transport.h"
#include "transports/tcp/uring.h"
#include "transports/tcp/wire.h"
#include "transports/transport.h"

namespace braid::tcp {

inline constexpr size_t kStagingBytes = 256 << 10;  // per-socket receive staging buffer.
inline constexpr size_t kDirectRecvMin = 64 << 10;  // receive straight into the user buffer above.
// At most this much per direct receive: each completion is proof of life for the heartbeat
// monitor, so a long transfer must complete in pieces (8 MiB: one syscall per 8 MiB costs
// nothing measurable).
inline constexpr size_t kDirectRecvMax = 8 << 20;
inline constexpr size_t kSegmentAlign = 4096;       // stripe boundaries.
inline constexpr int kMaxIov = 64;                  // iovecs gathered into one sendmsg.
inline constexpr int kMaxStreams = 16;

class TcpRequest final : public Request {
 public:
  enum class Kind { kSend, kRecv };
  TcpRequest(Kind kind, void* buf, size_t len, uint64_t tag)
      : kind(kind), buf(static_cast<char*>(buf)), len(len), tag(tag) {}
  void Finish(absl::Status status, size_t bytes) { Complete(std::move(status), bytes); }

  Kind kind;
  char* buf;
  size_t len;
  uint64_t tag;
  int segments_left = 0;  // sends: segments not yet fully handed to the kernel.
};
using TcpRequestPtr = std::shared_ptr<TcpRequest>;

// An incoming message, from its first header until its last byte arrived.
struct Message {
  uint64_t seq = 0;
  uint64_t tag = 0;
  uint64_t total_len = 0;
  uint64_t received = 0;
  TcpRequestPtr request;          // the matched receive, if any.
  char* dest = nullptr;           // user buffer, heap buffer, or null (discarding).
  std::unique_ptr<char[]> heap;   // unexpected message: bytes wait here for their irecv.
  bool complete() const { return received == total_len; }
};
using MessagePtr = std::shared_ptr<Message>;

struct SendItem {
  std::byte header[kFrameHeaderBytes];
  const char* payload = nullptr;
  size_t payload_len = 0;
  size_t done = 0;  // of header + payload.
  TcpRequestPtr request;
  size_t size() const { return kFrameHeaderBytes + payload_len; }
};

struct Peer;

// One TCP socket (one stream of a peer) with at most one send and one receive in flight. A
// socket with no receive in flight that can take bytes is "polled": progress() reads it directly.
struct Socket {
  UniqueFd fd;
  Peer* peer = nullptr;
  int stream = 0;
  uint32_t id = 0;  // index in the transport's socket table; goes into user_data.

  std::deque<SendItem> sendq;
  bool send_inflight = false;
  msghdr msg{};
  iovec iov[kMaxIov];

  std::unique_ptr<char[]> staging;
  size_t head = 0, tail = 0;  // unparsed bytes are staging[head, tail).
  bool recv_inflight = false;
  bool direct = false;        // the in-flight receive writes into cur->dest.
  MessagePtr cur;             // message whose segment payload is being received.
  uint64_t cur_offset = 0;    // next byte's offset in that message.
  uint64_t cur_left = 0;      // payload bytes of the segment still to come.
  bool stalled = false;       // waiting for the segment's message to start on stream 0.
  // The last segment was large (>= kDirectRecvMin): the next is likely large too, so a staging
  // read takes just its header and the payload goes straight to its destination, instead of
  // up to kStagingBytes of it landing in staging and being copied again (StagingReadLength).
  bool large_segments = false;
  bool polled = false;        // listed in the transport's polled_ (read directly by progress()).
  bool goodbye = false;       // the peer's goodbye arrived: its end of stream is a clean close.
  bool eof = false;
  bool inflight() const { return send_inflight || recv_inflight; }
};

struct Peer {
  int rank = -1;
  std::string host;
  std::vector<Socket*> sockets;  // by stream.
  uint64_t next_send_seq = 0;
  uint64_t next_recv_seq = 0;
  std::unordered_map<uint64_t, std::deque<TcpRequestPtr>> posted;     // receives by tag.
  std::unordered_map<uint64_t, std::deque<MessagePtr>> unexpected;    // arrivals by tag.
  std::unordered_map<uint64_t, MessagePtr> active;                    // incomplete, by seq.
  uint64_t activity = 0;  // receives that brought bytes: the heartbeat monitor samples it.
  int goodbyes = 0;  // streams whose goodbye arrived; all of them = the peer shut down cleanly.
  enum class State { kOpen, kClosed, kFailing, kFailed } state = State::kOpen;
  absl::Status error;  // why it is closed or failed.
  std::string reset;   // a send failed on a reset: progress() reads the rest, then decides.
};

class TcpTransport final : public Transport {
 public:
  TcpTransport(const TransportContext& context, const TcpTransportOptions& options,
               std::unique_ptr<Uring> ring);
  ~TcpTransport() override;

  std::string name() const override { return "tcp"; }
  absl::StatusOr<Blob> listen() override;
  absl::StatusOr<std::vector<std::unique_ptr<Connection>>> connect(
      std::span<const int> peers, std::span<const Blob> blobs, Deadline deadline) override;
  absl::StatusOr<MemoryRegion*> register_memory(void* base, size_t length) override;
  absl::Status deregister_memory(MemoryRegion* region) override;
  absl::Status progress() override;
  int wait_fd() const override { return ring_->event_fd(); }
  void prepare_to_sleep() override;
  // tcp_close.cc: liveness.
  bool send_heartbeats() override;
  void read_activity(std::span<uint64_t> counters) override;
  void peer_failed(int rank, const absl::Status& why) override;
  std::vector<int> failed_peers() override;

  absl::StatusOr<RequestPtr> Send(Peer& peer, const void* buf, size_t len, uint64_t tag);
  absl::StatusOr<RequestPtr> Recv(Peer& peer, void* buf, size_t len, uint64_t tag);

 private:
  // tcp_tx.cc
  void PumpSend(Socket& socket);
  void OnSendDone(Socket& socket, int res);
  void AdvanceSendQueue(Socket& socket, size_t bytes);
  void SendFailed(Socket& socket, int err);
  void ResolveResets();
  // tcp_rx.cc
  // Makes the socket receive: a large segment payload is received by io_uring straight into
  // the user buffer; otherwise the socket is polled, or (`arm`, before sleeping) gets an
  // io_uring receive into its staging buffer.
  void ArmRecv(Socket& socket, bool arm = false);
  void OnRecvDone(Socket& socket, int res);
  bool PollRecv(Socket& socket);
  void PollSockets();
  bool CanRecv(const Socket& socket) const;
  static size_t StagingReadLength(const Socket& socket);
  void Received(Socket& socket, size_t n);
  void Parse(Socket& socket);
  absl::Status StartMessage(Peer& peer, const FrameHeader& header, MessagePtr* out);
  void Match(Peer& peer, const MessagePtr& message, const TcpRequestPtr& request);
  void CompleteMessage(Peer& peer, const MessagePtr& message);
  // A message with tag `arrived` matched no receive: fail the receives of the same collective
  // sequence posted under another operation's check byte (transport.h, TagsConflict).
  void FailConflictingReceive(Peer& peer, uint64_t arrived);
  void Unstall();
  // tcp_transport.cc
  void ProgressLocked();
  // tcp_close.cc
  void SendGoodbyes();
  void OnGoodbye(Socket& socket, uint64_t blame);
  void OnDisconnect(Socket& socket, int err);
  absl::Status PeerDied(const Peer& peer, absl::string_view how) const;
  // `fatal`: the communicator cannot go on (progress() returns it); otherwise only the requests
  // that can no longer complete on this peer fail with `status`. `blame`: the rank whose
  // failure this is, when not `peer` itself.
  // kNoCulprit: fatal, yet nobody failed (the peer left over a collective mismatch).
  static constexpr int kNoCulprit = -2;
  void FailPeer(Peer& peer, absl::Status status, bool fatal = true, int blame = -1);
  void FinishFailures();
  absl::Status PeerError(absl::StatusCode code, const Peer& peer, absl::string_view detail,
                         absl::string_view remedy) const;
  absl::Status PeerUnusable(const Peer& peer) const;
  bool HasPending(const Peer& peer) const;
  io_uring_sqe* Sqe();

  std::mutex mu_;
  TransportContext ctx_;
  TcpTransportOptions options_;
  std::unique_ptr<Uring> ring_;
  UniqueFd listen_fd_;
  int nstreams_ = 1;
  size_t stripe_min_ = 0;
  std::vector<std::unique_ptr<Socket>> sockets_;
  std::vector<std::unique_ptr<Peer>> peers_;
  std::vector<Peer*> failing_;
  std::vector<Socket*> stalled_;
  std::vector<Socket*> polled_;  // sockets read directly by progress(); see Socket::polled.
  std::vector<Peer*> resets_;    // peers with Peer::reset set, for ResolveResets().
  std::vector<pollfd> pollfds_;  // scratch for PollSockets.
  std::list<MemoryRegion> regions_;
  absl::Status fatal_;         // first communicator-fatal error; progress() returns it.
  int fatal_rank_ = -1;
  std::vector<int> failed_ranks_;
  bool mismatch_ = false;  // a tag conflict was found: our goodbyes say so.  // every rank a fatal failure blamed, in order, no repeats.        // the rank that error blames (sent along with our goodbyes).
  bool eventfd_dirty_ = true;  // completions were reaped since the eventfd was last drained.
};

// The handle a collective holds: forwards to the transport, which owns all the state.
class TcpConnection final : public Connection {
 public:
  TcpConnection(TcpTransport* transport, Peer* peer) : transport_(transport), peer_(peer) {}
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
  TcpTransport* transport_;
  Peer* peer_;
};

// user_data of a socket operation: socket id and which of its two operations.
inline constexpr uint64_t kOpSend = 1, kOpRecv = 2;
inline uint64_t UserData(const Socket& socket, uint64_t op) {
  return (static_cast<uint64_t>(socket.id) << 2) | op;
}

}  // namespace braid::tcp
