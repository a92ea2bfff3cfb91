// How peers of the ofi transport leave: the goodbye sent on a clean shutdown over the liveness
// socket, what its end means with and without one, and how a failed peer's requests fail.
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/status.h"
#include "transports/ofi/ofi_internal.h"
#include "transports/transport_errors.h"

namespace braid::ofi {
namespace {

// Bound on flushing sends and saying goodbye: destroying a transport whose peer stopped
// receiving must not hang.
constexpr auto kGoodbyeBudget = std::chrono::milliseconds(250);

}  // namespace

void OfiTransport::SendGoodbyes() {
  auto deadline = Deadline::After(kGoodbyeBudget);
  auto sending = [&] {
    if (!pending_.empty()) return true;
    for (const Op* op : ops_) {
      if (op->send && op->peer && op->peer->state == Peer::State::kOpen) return true;
    }
    return false;
  };
  // Sends the caller did not wait for still get out, so the goodbye follows them.
  while (fatal_.ok() && sending() && !deadline.expired()) ProgressLocked();
  uint32_t blame = fatal_rank_ >= 0 ? static_cast<uint32_t>(fatal_rank_) + 1 : 0;
  for (auto& peer : peers_) {
    if (peer->state == Peer::State::kFailed || !peer->socket) continue;
    Goodbye goodbye{kGoodbyeMagic, blame, peer->next_send_seq};
    // Best effort: a peer that stopped reading sees no goodbye, i.e. an error.
    peer->writer.Write(peer->socket.get(), &goodbye, sizeof(goodbye), deadline);
  }
}

void OfiTransport::OnSocketReadable(Peer& peer) {
  if (!peer.socket) return;
  int err = 0;
  bool garbage = false;
  auto result = peer.reader.Read(peer.socket.get(), sizeof(Goodbye), &err, [&](const char* bytes) {
    ++peer.activity;
    if (peer.said_goodbye) return true;  // anything after the goodbye is ignored until the end.
    Goodbye record;
    std::memcpy(&record, bytes, sizeof(record));
    if (record.magic == kHeartbeatMagic) return true;
    if (record.magic != kGoodbyeMagic) {
      garbage = true;
      return false;
    }
    peer.goodbye = record;
    OnGoodbye(peer);
    return true;
  });
  if (result == LivenessReader::Result::kWouldBlock) return;
  epoll_ctl(epoll_fd_.get(), EPOLL_CTL_DEL, peer.socket.get(), nullptr);
  peer.socket.reset();
  if (garbage) {
    FailPeer(peer, PeerError(absl::StatusCode::kDataLoss, peer,
                             "sent garbage on its liveness socket", ""), true);
    return;
  }
  if (peer.said_goodbye || peer.state == Peer::State::kFailed) return;
  // No goodbye: the peer did not shut down, so its process is gone. Fatal at once, even with
  // nothing outstanding, so the error names the rank that died.
  std::string how = err == 0 ? std::string("closed its connection")
                             : absl::StrCat("reset its connection (", std::strerror(err), ")");
  FailPeer(peer, PeerDied(peer, how), /*fatal=*/true);
}

void OfiTransport::OnGoodbye(Peer& peer) {
  peer.said_goodbye = true;
  if (peer.goodbye.blame != 0 && peer.state == Peer::State::kOpen) {
    // The peer gave up because another rank failed: name the rank that failed first.
    int failed = static_cast<int>(peer.goodbye.blame - 1);
    std::string host = static_cast<size_t>(failed) < ctx_.hosts.size() ? ctx_.hosts[failed] : "";
    FailPeer(peer,
             PeerLeftAfterFailureError("ofi", ctx_.rank, peer.rank, peer.host, failed, host),
             /*fatal=*/true, failed);
    return;
  }
  CloseIfDrained(peer);
}

void OfiTransport::CloseIfDrained(Peer& peer) {
  if (peer.state != Peer::State::kOpen) return;
  // Control messages travel apart from the goodbye: wait until all it sent have arrived.
  if (peer.next_recv_seq < peer.goodbye.sent) return;
  // Receives still posted can never complete. Sends already with the provider are left to it:
  // the peer may have taken their data before leaving, and their completion is still on its
  // way here (if not, the provider reports an error for them, see HandleError).
  if (!peer.posted.empty()) {
    FailPeer(peer,
             PeerLeftWithPendingError("ofi", ctx_.rank, peer.rank, peer.host),
             /*fatal=*/false);
    return;
  }
  peer.state = Peer::State::kClosed;
  peer.error = PeerClosedError("ofi", ctx_.rank, peer.rank, peer.host);
  BRAID_LOG(kInfo, peer.error.message());
}

void OfiTransport::FailPeer(Peer& peer, absl::Status status, bool fatal, int blame) {
  if (peer.state == Peer::State::kFailed) return;
  if (fatal) {
    BRAID_LOG(kWarn, status.message());
    int culprit = blame >= 0 ? blame : peer.rank;
    NoteFailedRank(failed_ranks_, culprit);
    if (fatal_.ok()) {
      fatal_ = status;
      fatal_rank_ = culprit;
    }
  } else {
    BRAID_LOG(kInfo, status.message());
  }
  peer.state = Peer::State::kFailed;
  peer.error = status;
  for (auto& [tag, queue] : peer.posted) {
    for (auto& request : queue) request->Finish(status, 0);
  }
  peer.posted.clear();
  peer.arrived.clear();
  // Operations still with the provider: cancel them (their completions free them) and fail
  // their requests now; queued ones never reach the provider.
  std::erase_if(pending_, [&](Op* op) {
    if (op->peer != &peer) return false;
    if (op->request) op->request->Finish(status, 0);
    FreeOp(op);
    return true;
  });
  for (Op* op : ops_) {
    if (op->peer != &peer) continue;
    if (op->request) op->request->Finish(status, 0);
    op->request.reset();
    if (!op->send) fi_cancel(&rails_[op->rail]->ep->fid, &op->ctx);
  }
}

absl::Status OfiTransport::PeerError(absl::StatusCode code, const Peer& peer,
                                     absl::string_view detail, absl::string_view remedy) const {
  return MakeError(code, ConnectionWhat("ofi", ctx_.rank, peer.rank, peer.host), detail, remedy);
}

absl::Status OfiTransport::PeerDied(const Peer& peer, absl::string_view how) const {
  return PeerDiedError("ofi", ctx_.rank, peer.rank, peer.host, how);
}

bool OfiTransport::send_heartbeats() {
  std::lock_guard<std::mutex> lock(mu_);
  const Goodbye beat{kHeartbeatMagic, 0, 0};
  for (auto& peer : peers_) {
    if (peer->state != Peer::State::kOpen || !peer->socket) continue;
    peer->writer.Heartbeat(peer->socket.get(), &beat, sizeof(beat));
  }
  return true;
}

void OfiTransport::read_activity(std::span<uint64_t> counters) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& peer : peers_) {
    if (static_cast<size_t>(peer->rank) < counters.size()) counters[peer->rank] = peer->activity;
  }
}

void OfiTransport::peer_failed(int rank, const absl::Status& why) {
  std::lock_guard<std::mutex> lock(mu_);
  Peer* peer = PeerByRank(rank);
  bool ours = peer != nullptr;
  if (ours) FailPeer(*peer, why, /*fatal=*/true);
  if (!ours) NoteForeignFailure(rank, why, failed_ranks_, fatal_, fatal_rank_);
}

std::vector<int> OfiTransport::failed_peers() {
  std::lock_guard<std::mutex> lock(mu_);
  return failed_ranks_;
}

}  // namespace braid::ofi
