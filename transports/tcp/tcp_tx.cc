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
  if (socket.send_inflight || socket.sendq.empty() || socket.peer->state != Peer::State::kOpen) {
    return;
  }
  int n = 0;
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
  io_uring_sqe* sqe = Sqe();
  if (sqe == nullptr) return;
  std::memset(&socket.msg, 0, sizeof(socket.msg));
  socket.msg.msg_iov = socket.iov;
  socket.msg.msg_iovlen = static_cast<size_t>(n);
  io_uring_prep_sendmsg(sqe, socket.fd.get(), &socket.msg, MSG_NOSIGNAL | MSG_WAITALL);
  io_uring_sqe_set_data64(sqe, UserData(socket, kOpSend));
  socket.send_inflight = true;
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
    FailPeer(peer, PeerError(absl::StatusCode::kUnavailable, peer,
                             absl::StrCat("send failed on stream ", socket.stream, ": ",
                                          std::strerror(-res)),
                             absl::StrCat("check that rank ", peer.rank,
                                          " is alive and did not crash; see its log")));
    return;
  }
  size_t left = static_cast<size_t>(res);
  while (left > 0 && !socket.sendq.empty()) {
    SendItem& item = socket.sendq.front();
    size_t take = std::min(left, item.size() - item.done);
    item.done += take;
    left -= take;
    if (item.done < item.size()) break;
    TcpRequestPtr request = std::move(item.request);
    socket.sendq.pop_front();
    if (--request->segments_left == 0) request->Finish(absl::OkStatus(), request->len);
  }
  // A zero-byte result for a non-empty queue is impossible on a healthy stream: treat it as
  // a disconnect rather than spinning.
  if (res == 0 && !socket.sendq.empty()) {
    FailPeer(peer, PeerError(absl::StatusCode::kUnavailable, peer, "send made no progress",
                             "check that the peer is alive"));
    return;
  }
  PumpSend(socket);
}

}  // namespace braid::tcp
