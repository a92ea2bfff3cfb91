// How connections of the TCP transport end: the goodbye sent on a clean shutdown, what an end
// of stream means with and without one, and how a failed peer's requests are failed.
//
// A goodbye is per stream: it is the last frame each socket carries. A peer's streams end in
// any order (each is its own TCP connection), so "end of stream without a goodbye" can be
// decided for each socket alone, the moment it happens, with no false alarm when stream 1
// ends before stream 0's goodbye was read. A per-peer goodbye on stream 0 would instead leave
// an early end on stream 1 ambiguous until stream 0 caught up. And since every stream's
// goodbye follows all of that stream's segments, once all of them arrived everything the peer
// ever sent has arrived too.
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/status.h"
#include "transports/tcp/tcp_internal.h"
#include "transports/transport_errors.h"

namespace braid::tcp {
namespace {

// Bound on the whole goodbye (flushing queued sends, then the goodbye frames): destroying a
// transport whose peer stopped reading must not hang.
constexpr auto kGoodbyeBudget = std::chrono::milliseconds(250);

// Writes one goodbye frame on a non-blocking socket, waiting for room until `deadline`.
// Best effort: on failure the peer sees an end of stream without goodbye, i.e. an error.
void WriteGoodbye(int fd, const std::byte* frame, size_t size, Deadline deadline) {
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::send(fd, frame + done, size - done, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && !deadline.expired()) {
      pollfd pfd{fd, POLLOUT, 0};
      poll(&pfd, 1, deadline.remaining_ms(10));
    } else {
      return;
    }
  }
}

}  // namespace

void TcpTransport::SendGoodbyes() {
  auto deadline = Deadline::After(kGoodbyeBudget);
  auto unsent = [&] {
    for (const auto& peer : peers_) {
      if (peer->state != Peer::State::kOpen) continue;
      for (const Socket* socket : peer->sockets) {
        if (!socket->sendq.empty()) return true;
      }
    }
    return false;
  };
  // Sends the caller did not wait for still get to the kernel, so the goodbye can follow them.
  while (unsent() && !deadline.expired()) {
    ProgressLocked();
    if (unsent()) ring_->WaitForCompletion(std::chrono::milliseconds(5));
  }
  std::byte frame[kFrameHeaderBytes];
  for (const auto& peer : peers_) {
    if (peer->state != Peer::State::kOpen) continue;  // gone already, or broken.
    // Leaving because a peer failed: say which, so nobody blames us for its failure.
    uint64_t blame = fatal_rank_ >= 0 ? static_cast<uint64_t>(fatal_rank_) + 1
                     : mismatch_      ? kGoodbyeMismatch
                                      : 0;
    EncodeFrameHeader(FrameHeader{kFrameGoodbye, peer->next_send_seq, blame, 0, 0, 0}, frame);
    for (Socket* socket : peer->sockets) {
      // A stream with bytes still owed gets no goodbye: the peer must see that data was
      // abandoned, and a goodbye in the middle of a frame would be garbage anyway.
      if (!socket->sendq.empty()) continue;
      WriteGoodbye(socket->fd.get(), frame, sizeof(frame), deadline);
    }
  }
}

absl::Status TcpTransport::PeerError(absl::StatusCode code, const Peer& peer,
                                     absl::string_view detail, absl::string_view remedy) const {
  return MakeError(code, ConnectionWhat("tcp", ctx_.rank, peer.rank, peer.host), detail, remedy);
}

absl::Status TcpTransport::PeerDied(const Peer& peer, absl::string_view how) const {
  return PeerDiedError("tcp", ctx_.rank, peer.rank, peer.host, how);
}

absl::Status TcpTransport::PeerUnusable(const Peer& peer) const {
  if (!peer.error.ok()) return peer.error;
  return PeerError(absl::StatusCode::kUnavailable, peer, "closed", "");
}

bool TcpTransport::HasPending(const Peer& peer) const {
  if (!peer.active.empty()) return true;
  for (const auto& [tag, queue] : peer.posted) {
    if (!queue.empty()) return true;
  }
  for (const Socket* socket : peer.sockets) {
    if (!socket->sendq.empty()) return true;
  }
  return false;
}

void TcpTransport::OnGoodbye(Socket& socket, uint64_t blame) {
  Peer& peer = *socket.peer;
  socket.goodbye = true;
  ++peer.goodbyes;
  if (blame == kGoodbyeMismatch && peer.state == Peer::State::kOpen) {
    FailPeer(peer, PeerLeftAfterMismatchError("tcp", ctx_.rank, peer.rank, peer.host),
             /*fatal=*/true, kNoCulprit);
    mismatch_ = true;  // passed on in our own goodbyes.
    return;
  }
  if (blame != 0 && peer.state == Peer::State::kOpen) {
    // The peer gave up because another rank failed: the communicator is broken, and the
    // error names the rank that failed first (its own end of stream may still be on its way).
    int failed = static_cast<int>(blame - 1);
    if (failed >= ctx_.nranks) failed = peer.rank;  // nonsense blame: the messenger it is.
    std::string host = static_cast<size_t>(failed) < ctx_.hosts.size() ? ctx_.hosts[failed] : "";
    FailPeer(peer,
             PeerLeftAfterFailureError("tcp", ctx_.rank, peer.rank, peer.host, failed, host),
             /*fatal=*/true, failed);
    return;
  }
  if (peer.goodbyes < static_cast<int>(peer.sockets.size())) return;
  // Everything the peer sent has arrived. Receives still posted (or sends still queued) can
  // never complete: they fail, but the peer shut down properly, so the communicator goes on.
  if (HasPending(peer)) {
    FailPeer(peer,
             PeerLeftWithPendingError("tcp", ctx_.rank, peer.rank, peer.host),
             /*fatal=*/false);
    return;
  }
  peer.state = Peer::State::kClosed;
  peer.error = PeerClosedError("tcp", ctx_.rank, peer.rank, peer.host);
  BRAID_LOG(kInfo, peer.error.message());
}

void TcpTransport::OnDisconnect(Socket& socket, int err) {
  Peer& peer = *socket.peer;
  socket.eof = true;
  if (socket.goodbye) return;  // clean: the goodbye said nothing more comes on this stream.
  if (peer.state == Peer::State::kFailing || peer.state == Peer::State::kFailed) return;
  // No goodbye: the peer did not shut down, so its process is gone (or it abandoned data
  // mid-stream). Fatal at once, even with nothing outstanding here, so the error names the
  // rank that died rather than whichever rank gives up next because of it.
  std::string how = err == 0 ? std::string("closed its connection")
                             : absl::StrCat("reset its connection (", std::strerror(err), ")");
  FailPeer(peer, PeerDied(peer, how));
}

void TcpTransport::FailPeer(Peer& peer, absl::Status status, bool fatal, int blame) {
  if (peer.state == Peer::State::kFailing || peer.state == Peer::State::kFailed) return;
  if (fatal) {
    int culprit = blame >= 0 ? blame : blame == kNoCulprit ? -1 : peer.rank;
    if (culprit >= 0) NoteFailedRank(failed_ranks_, culprit);
    BRAID_LOG(kWarn, status.message());
    if (fatal_.ok()) {
      fatal_ = status;
      fatal_rank_ = culprit;
    }
  } else {
    BRAID_LOG(kInfo, status.message());
  }
  peer.state = Peer::State::kFailing;
  peer.error = status;
  // Requests may only fail once no operation still writes into or reads from their buffers:
  // shut the sockets down so in-flight operations complete, then FinishFailures() fails them.
  for (Socket* socket : peer.sockets) {
    if (socket->inflight()) ::shutdown(socket->fd.get(), SHUT_RDWR);
  }
  failing_.push_back(&peer);
}

void TcpTransport::FinishFailures() {
  for (size_t i = 0; i < failing_.size();) {
    Peer& peer = *failing_[i];
    bool quiet = std::none_of(peer.sockets.begin(), peer.sockets.end(),
                              [](const Socket* s) { return s->inflight(); });
    if (!quiet) {
      ++i;
      continue;
    }
    auto fail = [&](const TcpRequestPtr& request) {
      if (request && !request->done()) request->Finish(peer.error, 0);
    };
    for (auto& [tag, queue] : peer.posted) {
      for (auto& request : queue) fail(request);
    }
    peer.posted.clear();
    for (auto& [seq, message] : peer.active) fail(message->request);
    peer.active.clear();
    for (auto& [tag, queue] : peer.unexpected) {
      std::erase_if(queue, [](const MessagePtr& m) { return !m->complete(); });
    }
    for (Socket* socket : peer.sockets) {
      for (auto& item : socket->sendq) fail(item.request);
      socket->sendq.clear();
      socket->cur.reset();
      socket->head = socket->tail = 0;
      socket->stalled = false;
    }
    peer.state = Peer::State::kFailed;
    failing_.erase(failing_.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

bool TcpTransport::send_heartbeats() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& peer : peers_) {
    if (peer->state != Peer::State::kOpen || peer->sockets.empty()) continue;
    Socket& socket = *peer->sockets[0];
    // Anything queued is proof of life already, and a heartbeat must not wait behind it.
    if (!socket.sendq.empty() || socket.send_inflight) continue;
    SendItem& item = socket.sendq.emplace_back();
    EncodeFrameHeader(FrameHeader{kFrameHeartbeat, peer->next_send_seq, 0, 0, 0, 0}, item.header);
    PumpSend(socket);
  }
  absl::Status submitted = ring_->Submit();
  if (!submitted.ok() && fatal_.ok()) fatal_ = submitted;
  return true;
}

void TcpTransport::read_activity(std::span<uint64_t> counters) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& peer : peers_) {
    if (static_cast<size_t>(peer->rank) < counters.size()) counters[peer->rank] = peer->activity;
  }
}

void TcpTransport::peer_failed(int rank, const absl::Status& why) {
  std::lock_guard<std::mutex> lock(mu_);
  bool ours = false;
  for (auto& peer : peers_) {
    if (peer->rank != rank) continue;
    FailPeer(*peer, why);
    ours = true;
  }
  if (!ours) NoteForeignFailure(rank, why, failed_ranks_, fatal_, fatal_rank_);
}

std::vector<int> TcpTransport::failed_peers() {
  std::lock_guard<std::mutex> lock(mu_);
  return failed_ranks_;
}

}  // namespace braid::tcp
