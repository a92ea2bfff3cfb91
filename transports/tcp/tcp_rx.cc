// Receive path of the TCP transport: bytes land in each socket's staging buffer (read directly
// while the engine spins, by an io_uring receive armed before it sleeps); frames are parsed out
// of it and payload is copied to the matched receive (or to a heap buffer when no receive is
// posted yet). The rest of a large segment is received by io_uring straight into its
// destination, so big messages are copied once by the kernel and never by us.
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "transports/tcp/tcp_internal.h"
#include "transports/transport_errors.h"

namespace braid::tcp {

absl::StatusOr<RequestPtr> TcpTransport::Recv(Peer& peer, void* buf, size_t len, uint64_t tag) {
  std::lock_guard<std::mutex> lock(mu_);
  if (buf == nullptr && len > 0) {
    return absl::InvalidArgumentError("tcp transport: irecv into a null buffer");
  }
  auto request = std::make_shared<TcpRequest>(TcpRequest::Kind::kRecv, buf, len, tag);
  auto it = peer.unexpected.find(tag);
  if (it != peer.unexpected.end()) {
    MessagePtr message = std::move(it->second.front());
    it->second.pop_front();
    if (it->second.empty()) peer.unexpected.erase(it);
    Match(peer, message, request);
    return RequestPtr(request);
  }
  for (const auto& [arrived, queue] : peer.unexpected) {
    if (TagsConflict(tag, arrived)) {  // the peer is in a different collective: never wait.
      mismatch_ = true;
      request->Finish(TagConflictError("tcp", ctx_.rank, DescribeRank(peer.rank, peer.host), tag,
                                       arrived),
                      0);
      return RequestPtr(request);
    }
  }
  if (peer.state != Peer::State::kOpen) return PeerUnusable(peer);
  peer.posted[tag].push_back(request);
  return RequestPtr(request);
}

void TcpTransport::Match(Peer& peer, const MessagePtr& message, const TcpRequestPtr& request) {
  if (message->total_len != request->len) {
    request->Finish(SizeMismatchError("tcp", ctx_.rank, peer.rank, peer.host, request->tag,
                                      message->total_len, request->len),
                    0);
    // The bytes still arrive (into the heap buffer, or nowhere) and are dropped.
    if (!message->heap) message->dest = nullptr;
    return;
  }
  if (message->complete()) {
    if (message->total_len > 0) std::memcpy(request->buf, message->heap.get(), message->total_len);
    request->Finish(absl::OkStatus(), request->len);
    return;
  }
  message->request = request;
  if (!message->heap) message->dest = request->buf;
}

void TcpTransport::FailConflictingReceive(Peer& peer, uint64_t arrived) {
  for (auto it = peer.posted.begin(); it != peer.posted.end(); ++it) {
    if (!TagsConflict(it->first, arrived)) continue;
    mismatch_ = true;
    for (const TcpRequestPtr& request : it->second) {
      request->Finish(TagConflictError("tcp", ctx_.rank, DescribeRank(peer.rank, peer.host),
                                       it->first, arrived),
                      0);
    }
    peer.posted.erase(it);
    return;
  }
}

void TcpTransport::CompleteMessage(Peer& peer, const MessagePtr& message) {
  peer.active.erase(message->seq);
  TcpRequestPtr request = std::move(message->request);
  if (!request) return;  // unexpected (waits for its irecv) or discarded.
  if (message->heap && message->total_len > 0) {
    std::memcpy(request->buf, message->heap.get(), message->total_len);
  }
  message->heap.reset();
  request->Finish(absl::OkStatus(), request->len);
}

absl::Status TcpTransport::StartMessage(Peer& peer, const FrameHeader& header, MessagePtr* out) {
  auto message = std::make_shared<Message>();
  message->seq = header.seq;
  message->tag = header.tag;
  message->total_len = header.total_len;
  auto it = peer.posted.find(header.tag);
  if (it != peer.posted.end()) {
    TcpRequestPtr request = std::move(it->second.front());
    it->second.pop_front();
    if (it->second.empty()) peer.posted.erase(it);
    Match(peer, message, request);
  } else {
    if (header.total_len > 0) {
      message->heap.reset(new (std::nothrow) char[header.total_len]);
      if (!message->heap) {
        return PeerError(absl::StatusCode::kResourceExhausted, peer,
                         absl::StrCat("cannot buffer an unexpected message of ", header.total_len,
                                      " bytes (tag ", header.tag, ")"),
                         "post receives before the matching sends arrive, or add memory");
      }
      message->dest = message->heap.get();
    }
    peer.unexpected[header.tag].push_back(message);
    FailConflictingReceive(peer, header.tag);
  }
  if (message->complete()) {
    CompleteMessage(peer, message);
  } else {
    peer.active[message->seq] = message;
  }
  *out = std::move(message);
  return absl::OkStatus();
}

void TcpTransport::Parse(Socket& socket) {
  Peer& peer = *socket.peer;
  socket.stalled = false;
  while (peer.state == Peer::State::kOpen || peer.state == Peer::State::kClosed) {
    if (socket.cur) {
      size_t n = std::min<uint64_t>(socket.tail - socket.head, socket.cur_left);
      if (n == 0 && socket.cur_left > 0) break;
      Message& message = *socket.cur;
      if (message.dest != nullptr && n > 0) {
        std::memcpy(message.dest + socket.cur_offset, socket.staging.get() + socket.head, n);
      }
      socket.head += n;
      socket.cur_offset += n;
      socket.cur_left -= n;
      message.received += n;
      MessagePtr done = socket.cur_left == 0 ? std::move(socket.cur) : nullptr;
      if (message.complete() && n > 0) CompleteMessage(peer, done ? done : socket.cur);
      continue;
    }
    absl::StatusOr<FrameHeader> header = absl::DataLossError("bytes after the goodbye frame");
    if (socket.goodbye) {
      if (socket.head == socket.tail) break;
    } else {
      if (socket.tail - socket.head < kFrameHeaderBytes) break;
      header = DecodeFrameHeader(reinterpret_cast<std::byte*>(socket.staging.get() + socket.head));
    }
    absl::Status bad;
    MessagePtr message;
    if (!header.ok()) {
      bad = header.status();
    } else if (header->flags == kFrameHeartbeat) {
      socket.head += kFrameHeaderBytes;  // counted as activity when its bytes arrived.
      continue;
    } else if (header->flags == kFrameGoodbye) {
      // Last frame of the stream. On stream 0 it also says how many messages were started.
      if (socket.stream == 0 && header->seq != peer.next_recv_seq) {
        bad = absl::DataLossError(absl::StrCat("goodbye after message ", header->seq,
                                               " while expecting the start of message ",
                                               peer.next_recv_seq));
      } else {
        socket.head += kFrameHeaderBytes;
        OnGoodbye(socket, header->tag);
        continue;
      }
    } else if (socket.stream == 0) {
      if (!(header->flags & kFrameStart) || header->seq != peer.next_recv_seq) {
        bad = absl::DataLossError(absl::StrCat("stream 0 frame for message ", header->seq,
                                               " while expecting the start of message ",
                                               peer.next_recv_seq));
      } else {
        ++peer.next_recv_seq;
        bad = StartMessage(peer, *header, &message);
      }
    } else {
      auto it = peer.active.find(header->seq);
      if (header->flags & kFrameStart) {
        bad = absl::DataLossError(absl::StrCat("message start on stream ", socket.stream));
      } else if (it == peer.active.end()) {
        if (header->seq >= peer.next_recv_seq) {
          socket.stalled = true;  // its start is still on its way on stream 0.
          stalled_.push_back(&socket);
          break;
        }
        bad = absl::DataLossError(absl::StrCat("segment for finished message ", header->seq));
      } else if (it->second->tag != header->tag || it->second->total_len != header->total_len) {
        bad = absl::DataLossError(absl::StrCat("segment of message ", header->seq,
                                               " disagrees with its start on tag or length"));
      } else {
        message = it->second;
      }
    }
    if (!bad.ok()) {
      FailPeer(peer, PeerError(bad.code(), peer,
                               absl::StrCat("refused bytes on stream ", socket.stream, ": ",
                                            bad.message()),
                               "mixed Braid versions, memory corruption, or a foreign process "
                               "on the connection; restart the job"));
      return;
    }
    socket.head += kFrameHeaderBytes;
    socket.large_segments = header->seg_len >= kDirectRecvMin;
    if (header->seg_len > 0) {
      socket.cur = std::move(message);
      socket.cur_offset = header->offset;
      socket.cur_left = header->seg_len;
    }
  }
  if (socket.head == socket.tail) {
    socket.head = socket.tail = 0;
  } else if (socket.head > 0 && kStagingBytes - socket.tail < kStagingBytes / 4) {
    std::memmove(socket.staging.get(), socket.staging.get() + socket.head, socket.tail - socket.head);
    socket.tail -= socket.head;
    socket.head = 0;
  }
}

size_t TcpTransport::StagingReadLength(const Socket& socket) {
  const size_t room = kStagingBytes - socket.tail;
  const size_t buffered = socket.tail - socket.head;
  if (socket.large_segments && !socket.cur && buffered < kFrameHeaderBytes) {
    return std::min(room, kFrameHeaderBytes - buffered);  // the header alone; see Socket.
  }
  return room;
}

bool TcpTransport::CanRecv(const Socket& socket) const {
  return !socket.recv_inflight && !socket.eof && !socket.stalled &&
         (socket.peer->state == Peer::State::kOpen || socket.peer->state == Peer::State::kClosed);
}

void TcpTransport::ArmRecv(Socket& socket, bool arm) {
  if (!CanRecv(socket)) return;
  void* dest;
  size_t len;
  int flags = 0;
  socket.direct = socket.cur && socket.cur->dest != nullptr &&
                  socket.cur_left >= kDirectRecvMin && socket.head == socket.tail;
  if (socket.direct) {
    // One MSG_WAITALL receive for the whole rest of the segment: no per-chunk syscalls.
    dest = socket.cur->dest + socket.cur_offset;
    len = std::min<uint64_t>(socket.cur_left, kDirectRecvMax);
    flags = MSG_WAITALL;
  } else {
    if (socket.tail == kStagingBytes) return;  // full of unparsed bytes; Parse frees space.
    if (!arm) {
      // Read directly by progress() until the engine is about to sleep (prepare_to_sleep).
      if (!socket.polled) {
        socket.polled = true;
        polled_.push_back(&socket);
      }
      return;
    }
    // Armed before sleeping: take everything that came, as one completion (no header-only
    // read here, so an idle or closing transport leaves nothing unread in the kernel).
    dest = socket.staging.get() + socket.tail;
    len = kStagingBytes - socket.tail;
  }
  io_uring_sqe* sqe = Sqe();
  if (sqe == nullptr) return;
  io_uring_prep_recv(sqe, socket.fd.get(), dest, len, flags);
  io_uring_sqe_set_data64(sqe, UserData(socket, kOpRecv));
  socket.recv_inflight = true;
}

void TcpTransport::OnRecvDone(Socket& socket, int res) {
  socket.recv_inflight = false;
  Peer& peer = *socket.peer;
  if (peer.state == Peer::State::kFailing || peer.state == Peer::State::kFailed) return;
  if (res == -EINTR || res == -EAGAIN || res == -ENOBUFS) {
    ArmRecv(socket);
    return;
  }
  if (res <= 0) {
    if (socket.direct) socket.direct = false;
    OnDisconnect(socket, -res);
    return;
  }
  size_t n = static_cast<size_t>(res);
  if (socket.direct) {
    ++peer.activity;
    socket.direct = false;
    socket.cur_offset += n;
    socket.cur_left -= n;
    socket.cur->received += n;
    MessagePtr message = socket.cur;
    if (socket.cur_left == 0) socket.cur.reset();
    if (message->complete()) CompleteMessage(peer, message);
    ArmRecv(socket);
  } else {
    Received(socket, n);
  }
}

void TcpTransport::Received(Socket& socket, size_t n) {
  ++socket.peer->activity;
  socket.tail += n;
  Parse(socket);
  // Not re-armed: data just arrived, so more is likely while the caller spins; reading the
  // socket directly saves the io_uring poll, task_work and IPI of an armed receive.
  ArmRecv(socket);
}

bool TcpTransport::PollRecv(Socket& socket) {
  if (socket.tail == kStagingBytes) return false;
  ssize_t n = ::recv(socket.fd.get(), socket.staging.get() + socket.tail,
                     StagingReadLength(socket), MSG_DONTWAIT);
  if (n > 0) {
    Received(socket, static_cast<size_t>(n));
    return true;
  }
  if (n == 0) {
    OnDisconnect(socket, 0);
    return true;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return false;
  OnDisconnect(socket, errno);
  return true;
}

void TcpTransport::PollSockets() {
  for (size_t i = 0; i < polled_.size();) {
    if (!CanRecv(*polled_[i])) {  // armed (large segment), stalled, ended or failed meanwhile.
      polled_[i]->polled = false;
      polled_[i] = polled_.back();
      polled_.pop_back();
      continue;
    }
    ++i;
  }
  if (polled_.empty()) return;
  // Readiness first, with one poll() for all polled sockets: tcp_poll reads the socket state
  // without its lock, whereas an empty recv() takes the lock and collides with the peer's
  // softirq delivering the very bytes we wait for. recv() only runs on sockets with news.
  pollfds_.resize(polled_.size());
  for (size_t i = 0; i < polled_.size(); ++i) pollfds_[i] = {polled_[i]->fd.get(), POLLIN, 0};
  if (::poll(pollfds_.data(), pollfds_.size(), 0) <= 0) return;
  for (size_t i = 0; i < pollfds_.size(); ++i) {
    if (pollfds_[i].revents != 0) PollRecv(*polled_[i]);  // never adds to polled_.
  }
}

void TcpTransport::prepare_to_sleep() {
  std::lock_guard<std::mutex> lock(mu_);
  // Every polled socket gets an io_uring receive, so data arriving from now on posts a
  // completion and makes wait_fd() readable. The receive is issued at once by the submit below:
  // bytes that arrived since the last direct read complete it immediately (fd readable, no
  // sleep), so nothing that lands between the caller's last progress() and its poll() is lost.
  for (Socket* socket : polled_) {  // arming never adds to polled_.
    socket->polled = false;
    ArmRecv(*socket, /*arm=*/true);
  }
  polled_.clear();
  absl::Status submitted = ring_->Submit();
  if (!submitted.ok() && fatal_.ok()) fatal_ = submitted;
}

void TcpTransport::Unstall() {
  // A stalled stream waits for a message start on stream 0; retry after every batch of
  // completions (stream 0 itself never stalls, so this always resolves).
  while (!stalled_.empty()) {
    std::vector<Socket*> stalled;
    stalled.swap(stalled_);
    bool progressed = false;
    for (Socket* socket : stalled) {
      size_t head = socket->head;
      Parse(*socket);
      if (!socket->stalled || socket->head != head) progressed = true;
      ArmRecv(*socket);
    }
    if (!progressed) break;
  }
}

}  // namespace braid::tcp
