// How shm connections end. A rank that tears its transport down writes a goodbye byte on
// every pair's socket once everything it sent is in the rings (and every message read by
// reference was acknowledged); the peer's end of stream then means a clean shutdown. An end
// of stream without a goodbye means the process died: the error names its rank and host at
// once, whatever was outstanding. Rings stay mapped after the peer is gone, so everything it
// published before leaving is still delivered.
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/status.h"
#include "transports/shm/shm_internal.h"
#include "transports/transport_errors.h"

namespace braid::shm {
namespace {

// Bound on flushing queued sends before the goodbye: a peer that stopped reading must not
// make teardown hang.
constexpr auto kGoodbyeBudget = std::chrono::milliseconds(250);

}  // namespace

void ShmTransport::SendGoodbyes() {
  auto deadline = Deadline::After(kGoodbyeBudget);
  auto owed = [](const Peer& peer) {
    return peer.state == Peer::State::kOpen && (!peer.sendq.empty() || !peer.awaiting_ack.empty());
  };
  auto any_owed = [&] {
    return std::any_of(peers_.begin(), peers_.end(), [&](const auto& p) { return owed(*p); });
  };
  while (fatal_.ok() && any_owed() && !deadline.expired()) {
    ProgressLocked();
    if (!any_owed()) break;
    mu_.unlock();
    prepare_to_sleep();
    mu_.lock();
    pollfd pfd{epoll_fd_.get(), POLLIN, 0};
    poll(&pfd, 1, deadline.remaining_ms(5));
  }
  // Leaving because of a failure: peers are told which, so their errors name its cause (and
  // fail at once rather than waiting for messages that will never come).
  const absl::Status& failure = !fatal_.ok() ? fatal_ : abandoned_;
  std::string farewell(1, kGoodbyeByte);
  if (!failure.ok()) {
    std::string why(failure.message().substr(0, 2000));
    uint32_t len = static_cast<uint32_t>(why.size());
    farewell.assign(1, kAbandonByte);
    farewell.append(reinterpret_cast<const char*>(&len), 4);
    farewell += why;
  }
  for (auto& peer : peers_) {
    // A peer still owed data (or whose reads of our buffers are unfinished) gets no goodbye:
    // it must see that data was abandoned.
    if (peer->state != Peer::State::kOpen || !peer->socket) continue;
    if (failure.ok() && owed(*peer)) continue;
    [[maybe_unused]] ssize_t n = ::send(peer->socket.get(), farewell.data(), farewell.size(),
                                        MSG_DONTWAIT | MSG_NOSIGNAL);
  }
}

absl::Status ShmTransport::PeerError(absl::StatusCode code, const Peer& peer,
                                     absl::string_view detail, absl::string_view remedy) const {
  return MakeError(code, ConnectionWhat("shm", ctx_.rank, peer.rank, peer.host), detail, remedy);
}

absl::Status ShmTransport::PeerDied(const Peer& peer) const {
  return PeerDiedError("shm", ctx_.rank, peer.rank, peer.host, "closed its connection");
}

absl::Status ShmTransport::PeerUnusable(const Peer& peer) const {
  if (!peer.error.ok()) return peer.error;
  return PeerError(absl::StatusCode::kUnavailable, peer, "closed", "");
}

bool ShmTransport::HasPending(const Peer& peer) const {
  if (!peer.sendq.empty() || !peer.awaiting_ack.empty()) return true;
  if (peer.cur && peer.cur->request) return true;
  return !peer.posted.empty();
}

void ShmTransport::OnEndOfStream(Peer& peer) {
  epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, peer.socket.get(), nullptr);
  peer.socket.reset();
  if (peer.state == Peer::State::kFailed) return;
  // Everything the peer published is still in its ring (our mapping outlives it): take it.
  while (peer.state != Peer::State::kFailed && PollRing(peer)) {
  }
  if (peer.state == Peer::State::kFailed) return;
  if (!peer.goodbye) {
    FailPeer(peer, PeerDied(peer), /*fatal=*/true);
    return;
  }
  if (HasPending(peer)) {
    // It shut down properly, so the communicator goes on; what can never complete fails.
    FailPeer(peer,
             PeerLeftWithPendingError("shm", ctx_.rank, peer.rank, peer.host),
             /*fatal=*/false);
    return;
  }
  peer.state = Peer::State::kClosed;
  peer.error = PeerClosedError("shm", ctx_.rank, peer.rank, peer.host);
  BRAID_LOG(kInfo, peer.error.message());
}

void ShmTransport::FailPeer(Peer& peer, absl::Status status, bool fatal, bool blame_peer) {
  if (peer.state == Peer::State::kFailed) return;
  if (fatal) {
    BRAID_LOG(kWarn, status.message());
    if (blame_peer) NoteFailedRank(failed_ranks_, peer.rank);
    if (fatal_.ok()) fatal_ = status;
  } else {
    BRAID_LOG(kInfo, status.message());
  }
  peer.state = Peer::State::kFailed;
  peer.error = status;
  auto fail = [&](const ShmRequestPtr& request) {
    if (request && !request->done()) request->Finish(status, 0);
  };
  for (auto& request : peer.posted) fail(request);
  peer.posted.clear();
  if (peer.cur) fail(peer.cur->request);
  peer.cur.reset();
  for (auto& op : peer.sendq) fail(op.request);
  peer.sendq.clear();
  for (auto& [id, request] : peer.awaiting_ack) fail(request);
  peer.awaiting_ack.clear();
  // Complete eager messages stay receivable; the rest can never be.
  for (auto it = peer.unexpected.begin(); it != peer.unexpected.end();) {
    std::erase_if(it->second, [](const MessagePtr& m) { return m->by_reference || !m->complete(); });
    it = it->second.empty() ? peer.unexpected.erase(it) : std::next(it);
  }
  if (peer.socket) epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, peer.socket.get(), nullptr);
}

bool ShmTransport::send_heartbeats() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& peer : peers_) {
    if (peer->state != Peer::State::kOpen || !peer->socket) continue;
    // Always sent (data crosses the rings, unseen here): one byte every interval per peer. A
    // full socket buffer means the peer has not read for a while; nothing is lost by dropping.
    [[maybe_unused]] ssize_t n =
        ::send(peer->socket.get(), &kHeartbeatByte, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
  }
  return true;
}

void ShmTransport::read_activity(std::span<uint64_t> counters) {
  std::lock_guard<std::mutex> lock(mu_);
  // A busy rank looks at the sockets only now and then (ProgressLocked): read them now, so
  // heartbeats that arrived count (a few syscalls every sample period, never per message).
  for (auto& peer : peers_) {
    if (peer->state != Peer::State::kFailed) DrainSocket(*peer);
  }
  for (const auto& peer : peers_) {
    if (static_cast<size_t>(peer->rank) < counters.size()) counters[peer->rank] = peer->activity;
  }
}

void ShmTransport::peer_failed(int rank, const absl::Status& why) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& peer : peers_) {
    if (peer->rank == rank) FailPeer(*peer, why, /*fatal=*/true);
  }
}

std::vector<int> ShmTransport::failed_peers() {
  std::lock_guard<std::mutex> lock(mu_);
  return failed_ranks_;
}

}  // namespace braid::shm
