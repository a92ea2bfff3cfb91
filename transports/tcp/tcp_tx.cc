// Send path of the TCP transport: a message becomes one segment on stream 0, or is striped over
// every stream when large; each socket sends its queue with one sendmsg at a time (gathering
// many queued segments into one call) so frames stay contiguous on the stream.
#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "transports/tcp/tcp_internal.h"

namespace braid::tcp {

absl::StatusOr<RequestPtr> TcpTransport::Send(Peer& peer, const void* buf, size_t len,
                                              uint64_t tag) {
  std::lock_guard<std::mutex> lock(mu_);
  if (peer.state != Peer::State::kOpen) return PeerUnusable(peer);
  if (buf == nullptr && len > 0) {
    return absl::InvalidArgumentError("tcp transport: isend of a null buffer");
  }
  if (len > kMaxMessageBytes) {
    return absl::InvalidArgumentError(absl::StrCat("tcp transport: isend of ", len, " bytes exceeds ",
                                                   kMaxMessageBytes));
  }
  auto request = std::make_shared<TcpRequest>(TcpRequest::Kind::kSend, const_cast<void*>(buf),
                                              len, tag);
  const uint64_t seq = peer.next_send_seq++;
  size_t nseg = (len > stripe_min_ && nstreams_ > 1) ? static_cast<size_t>(nstreams_) : 1;
  size_t seg = (len + nseg - 1) / nseg;
  if (nseg > 1) seg = (seg + kSegmentAlign - 1) / kSegmentAlign * kSegmentAlign;
  const char* base = static_cast<const char*>(buf);
  size_t offset = 0;
  int stream = 0;
  do {
    size_t n = std::min(seg, len - offset);
    Socket& socket = *peer.sockets[stream];
    SendItem& item = socket.sendq.emplace_back();
    FrameHeader header{static_cast<uint8_t>(stream == 0 ? kFrameStart : 0), seq, tag, len, offset, n};
    EncodeFrameHeader(header, item.header);
    item.payload = base + offset;
    item.payload_len = n;
    item.request = request;
    ++request->segments_left;
    offset += n;
    ++stream;
  } while (offset < len);
  for (int s = 0; s < stream; ++s) PumpSend(*peer.sockets[s]);
  // Hand the sends to the kernel now (inline for small messages): one syscall per isend burst.
  BRAID_RETURN_IF_ERROR(ring_->Submit());
  return RequestPtr(request);
}

void TcpTransport::PumpSend(Socket& socket) {
  bool direct = true;
  while (!socket.send_inflight && !socket.sendq.empty() &&
         socket.peer->state == Peer::State::kOpen) {
    int n = 0;
    size_t want = 0;
    for (SendItem& item : socket.sendq) {
      if (n + 2 > kMaxIov) break;
      if (item.done < kFrameHeaderBytes) {
        socket.iov[n++] = {item.header + item.done, kFrameHeaderBytes - item.done};
      }
      size_t sent_payload = item.done > kFrameHeaderBytes ? item.done - kFrameHeaderBytes : 0;
      if (item.payload_len > sent_payload) {
        socket.iov[n++] = {const_cast<char*>(item.payload) + sent_payload,
                           item.payload_len - sent_payload};
      }
    }
    for (int i = 0; i < n; ++i) want += socket.iov[i].iov_len;
    std::memset(&socket.msg, 0, sizeof(socket.msg));
    socket.msg.msg_iov = socket.iov;
    socket.msg.msg_iovlen = static_cast<size_t>(n);
    // Direct first: when the socket buffer has room (the common case) the kernel takes the
    // frames now, with no io_uring submission, completion or wakeup on the latency path.
    if (direct) {
      ssize_t sent = ::sendmsg(socket.fd.get(), &socket.msg, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (sent < 0 && errno == EINTR) continue;
      if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        SendFailed(socket, errno);
        return;
      }
      if (sent > 0) AdvanceSendQueue(socket, static_cast<size_t>(sent));
      if (sent == static_cast<ssize_t>(want)) continue;  // all gathered; more may be queued.
      // The socket buffer is full: io_uring waits for room and sends the rest (MSG_WAITALL).
      direct = false;
      if (sent > 0) continue;  // rebuild the iovecs past what went out, then hand over.
    }
    io_uring_sqe* sqe = Sqe();
    if (sqe == nullptr) return;
    io_uring_prep_sendmsg(sqe, socket.fd.get(), &socket.msg, MSG_NOSIGNAL | MSG_WAITALL);
    io_uring_sqe_set_data64(sqe, UserData(socket, kOpSend));
    socket.send_inflight = true;
  }
}

void TcpTransport::AdvanceSendQueue(Socket& socket, size_t bytes) {
  while (bytes > 0 && !socket.sendq.empty()) {
    SendItem& item = socket.sendq.front();
    size_t take = std::min(bytes, item.size() - item.done);
    item.done += take;
    bytes -= take;
    if (item.done < item.size()) break;
    TcpRequestPtr request = std::move(item.request);
    socket.sendq.pop_front();
    if (request && --request->segments_left == 0) request->Finish(absl::OkStatus(), request->len);
  }
}

void TcpTransport::SendFailed(Socket& socket, int err) {
  Peer& peer = *socket.peer;
  std::string detail = absl::StrCat("send failed on stream ", socket.stream, ": ",
                                    std::strerror(err));
  if (peer.goodbyes > 0) {
    // The peer is shutting down cleanly (a goodbye arrived) and closed before taking these
    // bytes: only the sends that can no longer be delivered fail.
    FailPeer(peer,
             PeerError(absl::StatusCode::kUnavailable, peer,
                       absl::StrCat("shut down (destroyed its communicator) before receiving "
                                    "everything sent to it; ", detail),
                       "make every rank finish the same operations before destroying its "
                       "communicator"),
             /*fatal=*/false);
    return;
  }
  if (err == ECONNRESET || err == EPIPE) {
    // A peer that gives up because a third rank failed sends its goodbye (naming that rank)
    // and closes; if bytes of ours were still unread there, its close resets the connection
    // and our send fails before we read the goodbye, which the reset leaves in our receive
    // queue. progress() reads what arrived first (ResolveResets), so the verdict names the
    // rank that really failed: the goodbye's, or this peer's once its stream ends without one.
    // (Not read here: this may be the heartbeat thread, which must not complete requests.)
    if (peer.reset.empty()) resets_.push_back(&peer);
    peer.reset = detail;
    return;
  }
  FailPeer(peer, PeerDied(peer, absl::StrCat("broke its connection (", detail, ")")));
}

void TcpTransport::OnSendDone(Socket& socket, int res) {
  socket.send_inflight = false;
  Peer& peer = *socket.peer;
  if (peer.state == Peer::State::kFailing || peer.state == Peer::State::kFailed) return;
  if (res == -EINTR || res == -EAGAIN) {
    PumpSend(socket);
    return;
  }
  if (res < 0) {
    // Bytes we owe the peer cannot be delivered: always an error for the queued sends.
    SendFailed(socket, -res);
    return;
  }
  AdvanceSendQueue(socket, static_cast<size_t>(res));
  // A zero-byte result for a non-empty queue is impossible on a healthy stream: treat it as
  // a disconnect rather than spinning.
  if (res == 0 && !socket.sendq.empty()) {
    FailPeer(peer, PeerDied(peer, "stopped taking data (a send made no progress)"));
    return;
  }
  PumpSend(socket);
}

void TcpTransport::ResolveResets() {
  for (size_t i = 0; i < resets_.size();) {
    Peer& peer = *resets_[i];
    bool receive_pending = false;
    for (Socket* s : peer.sockets) {
      while (peer.state == Peer::State::kOpen && !s->recv_inflight && CanRecv(*s) &&
             PollRecv(*s)) {
      }
      receive_pending |= s->recv_inflight;
    }
    // A receive in flight on a reset connection completes at once, with the rest of what the
    // peer sent or the end of stream: the next pass decides then.
    if (peer.state == Peer::State::kOpen && receive_pending) {
      ++i;
      continue;
    }
    if (peer.state == Peer::State::kOpen) {
      FailPeer(peer, PeerDied(peer, absl::StrCat("broke its connection (", peer.reset, ")")));
    }
    resets_.erase(resets_.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

}  // namespace braid::tcp
