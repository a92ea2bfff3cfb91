#include "transports/tcp/tcp_transport.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/status.h"
#include "transports/tcp/handshake.h"
#include "transports/tcp/tcp_internal.h"

namespace braid {

ProbeResult ProbeTcpTransport(const Config& /*config*/) {
  ProbeResult result;
  result.usable = tcp::Uring::Probe(&result.reason);
  return result;
}

absl::StatusOr<std::unique_ptr<Transport>> CreateTcpTransport(const TransportContext& context) {
  return CreateTcpTransport(context, TcpTransportOptions{});
}

absl::StatusOr<std::unique_ptr<Transport>> CreateTcpTransport(const TransportContext& context,
                                                              const TcpTransportOptions& options) {
  BRAID_ASSIGN_OR_RETURN(auto ring, tcp::Uring::Create(256));
  return std::unique_ptr<Transport>(new tcp::TcpTransport(context, options, std::move(ring)));
}

namespace tcp {

TcpTransport::TcpTransport(const TransportContext& context, const TcpTransportOptions& options,
                           std::unique_ptr<Uring> ring)
    : ctx_(context), options_(options), ring_(std::move(ring)) {
  nstreams_ = ctx_.config.tcp_streams > 0 ? std::min(ctx_.config.tcp_streams, kMaxStreams)
                                          : kTcpDefaultStreams;
  stripe_min_ = std::max<size_t>(ctx_.config.tcp_min_stripe_bytes, 1);
  if (ctx_.config.tcp_send_zc) {
    BRAID_LOG(kInfo, "tcp transport: BRAID_TCP_SEND_ZC is not implemented yet; copying sends");
  }
}

TcpTransport::~TcpTransport() {
  std::lock_guard<std::mutex> lock(mu_);
  SendGoodbyes();  // tells every open peer this is a clean shutdown, not a crash.
  // In-flight operations reference our buffers and users' buffers: wake them (shutdown makes a
  // pending recv return 0 and a pending send fail) and wait for their completions before the
  // ring and the buffers go away.
  bool any = false;
  for (auto& socket : sockets_) {
    if (socket->inflight()) {
      ::shutdown(socket->fd.get(), SHUT_RDWR);
      any = true;
    }
  }
  auto deadline = Deadline::After(std::chrono::seconds(10));
  while (any && !deadline.expired()) {
    ring_->WaitForCompletion(std::chrono::milliseconds(100));
    ring_->Reap([&](io_uring_cqe* cqe) {
      uint64_t id = cqe->user_data >> 2;
      if (id >= sockets_.size()) return;
      if ((cqe->user_data & 3) == kOpSend) sockets_[id]->send_inflight = false;
      if ((cqe->user_data & 3) == kOpRecv) sockets_[id]->recv_inflight = false;
    });
    any = std::any_of(sockets_.begin(), sockets_.end(),
                      [](const auto& s) { return s->inflight(); });
  }
  if (any) BRAID_LOG(kWarn, "tcp transport: operations still in flight at teardown");
  ring_.reset();  // io_uring_queue_exit before the buffers are freed.
  // Closing a TCP socket with unread bytes in its receive queue makes the kernel send a reset
  // and drop what we still had queued for the peer: the tail of our last sends and the
  // goodbye, which the peer would then report as our crash. Read and drop whatever arrived
  // (heartbeats, goodbyes, frames of a collective we are leaving) before the sockets close.
  std::unique_ptr<char[]> sink(new char[kStagingBytes]);
  for (auto& socket : sockets_) {
    for (int reads = 0; reads < 64; ++reads) {
      if (::recv(socket->fd.get(), sink.get(), kStagingBytes, MSG_DONTWAIT) <= 0) break;
    }
  }
}

absl::StatusOr<Blob> TcpTransport::listen() {
  std::lock_guard<std::mutex> lock(mu_);
  if (listen_fd_) return absl::FailedPreconditionError("tcp transport: listen() called twice");
  std::string ip = options_.listen_address;
  if (ip.empty()) ip = ctx_.local_address;  // the data-path address the communicator chose.
  if (ip.empty()) {
    BRAID_ASSIGN_OR_RETURN(ip, SelectListenAddress(ctx_.config.socket_ifname));
  }
  BRAID_ASSIGN_OR_RETURN(SocketAddress address, MakeSocketAddress(ip, 0));
  BRAID_ASSIGN_OR_RETURN(listen_fd_, NewTcpSocket(address.family()));
  int one = 1;
  setsockopt(listen_fd_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(listen_fd_.get(), reinterpret_cast<const sockaddr*>(&address.storage),
             address.length) != 0) {
    return SystemError(absl::StrCat("tcp transport: bind to ", ip), errno,
                       "choose another interface with BRAID_SOCKET_IFNAME");
  }
  if (::listen(listen_fd_.get(), 1024) != 0) return SystemError("tcp transport: listen", errno);
  address.length = sizeof(address.storage);
  if (getsockname(listen_fd_.get(), reinterpret_cast<sockaddr*>(&address.storage),
                  &address.length) != 0) {
    return SystemError("tcp transport: getsockname", errno);
  }
  BRAID_LOG(kInfo, "tcp transport: listening on ", AddressToString(address), ", ", nstreams_,
            " stream(s) per peer");
  return EncodeListenBlob({ip, AddressPort(address)});
}

absl::StatusOr<std::vector<std::unique_ptr<Connection>>> TcpTransport::connect(
    std::span<const int> peers, std::span<const Blob> blobs, Deadline deadline) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!listen_fd_) return absl::FailedPreconditionError("tcp transport: connect() before listen()");
  for (int rank : peers) {
    for (auto& peer : peers_) {
      if (peer->rank == rank) {
        return absl::InvalidArgumentError(absl::StrCat("tcp transport: already connected to rank ", rank));
      }
    }
  }
  HandshakeParams params{ctx_.rank, ctx_.comm_id, ctx_.secret, ctx_.hosts, nstreams_};
  BRAID_ASSIGN_OR_RETURN(auto fds, EstablishSockets(params, listen_fd_.get(), peers, blobs, deadline));
  std::vector<std::unique_ptr<Connection>> connections;
  for (size_t i = 0; i < peers.size(); ++i) {
    auto peer = std::make_unique<Peer>();
    peer->rank = peers[i];
    if (static_cast<size_t>(peer->rank) < ctx_.hosts.size()) peer->host = ctx_.hosts[peer->rank];
    for (int s = 0; s < nstreams_; ++s) {
      BRAID_RETURN_IF_ERROR(TuneConnectedSocket(fds[i][s].get()));
      auto socket = std::make_unique<Socket>();
      socket->fd = std::move(fds[i][s]);
      socket->peer = peer.get();
      socket->stream = s;
      socket->id = static_cast<uint32_t>(sockets_.size());
      socket->staging.reset(new char[kStagingBytes]);
      peer->sockets.push_back(socket.get());
      sockets_.push_back(std::move(socket));
    }
    // Armed, not polled: an idle connection must still wake a sleeper (data, or a crash).
    for (Socket* socket : peer->sockets) ArmRecv(*socket, /*arm=*/true);
    connections.push_back(std::make_unique<TcpConnection>(this, peer.get()));
    peers_.push_back(std::move(peer));
  }
  BRAID_RETURN_IF_ERROR(ring_->Submit());
  return connections;
}

absl::StatusOr<MemoryRegion*> TcpTransport::register_memory(void* base, size_t length) {
  std::lock_guard<std::mutex> lock(mu_);
  regions_.push_back(MemoryRegion{base, length, 0, nullptr});
  return &regions_.back();
}

absl::Status TcpTransport::deregister_memory(MemoryRegion* region) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = regions_.begin(); it != regions_.end(); ++it) {
    if (&*it == region) {
      regions_.erase(it);
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError("tcp transport: deregister_memory of an unknown region");
}

io_uring_sqe* TcpTransport::Sqe() {
  io_uring_sqe* sqe = ring_->GetSqe();
  if (sqe == nullptr && fatal_.ok()) {
    fatal_ = absl::InternalError("tcp transport: io_uring submission failed");
  }
  return sqe;
}

absl::Status TcpTransport::progress() {
  std::lock_guard<std::mutex> lock(mu_);
  ProgressLocked();
  return fatal_;
}

void TcpTransport::ProgressLocked() {
  auto handle = [&](io_uring_cqe* cqe) {
    uint64_t id = cqe->user_data >> 2;
    if (id >= sockets_.size()) return;
    Socket& socket = *sockets_[id];
    if ((cqe->user_data & 3) == kOpSend) OnSendDone(socket, cqe->res);
    if ((cqe->user_data & 3) == kOpRecv) OnRecvDone(socket, cqe->res);
  };
  auto submit = [&] {
    absl::Status submitted = ring_->Submit();
    if (!submitted.ok() && fatal_.ok()) fatal_ = submitted;
    return submitted.ok();
  };
  if (!submit()) return;
  PollSockets();
  for (int round = 0; round < 8; ++round) {
    unsigned reaped = ring_->Reap(handle);
    if (reaped == 0 && round == 0 && eventfd_dirty_) {
      // Idle pass (the engine may sleep next): drain the eventfd, then reap again. Anything
      // posted after the drain is reaped here or leaves the fd readable, so no wakeup is lost.
      // Busy passes skip the drain: a stale count costs one spurious wakeup, not a syscall
      // per completion. Polled sockets post no completions, so the spinning small-message
      // path never pays for this read.
      ring_->DrainEventFd();
      eventfd_dirty_ = false;
      reaped = ring_->Reap(handle);
    }
    if (reaped > 0) eventfd_dirty_ = true;
    Unstall();
    ResolveResets();
    FinishFailures();
    if (!ring_->HasUnsubmitted()) break;
    if (!submit()) return;
  }
}

}  // namespace tcp
}  // namespace braid
