// Failures of the verbs transport: error completions, asynchronous device events, and peers
// that die (liveness socket ends without a goodbye) or shut down cleanly (goodbye). Errors name
// the peer rank and host and say what to check.
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/status.h"
#include "transports/transport_errors.h"
#include "transports/verbs/verbs_internal.h"

namespace braid::verbs {
namespace {

constexpr uint32_t kGoodbyeMagic = 0x42525647;

}  // namespace

absl::Status VerbsTransport::PeerError(const Peer& peer, absl::string_view detail,
                                       absl::string_view remedy) const {
  return MakeError(absl::StatusCode::kUnavailable,
                   ConnectionWhat("verbs", ctx_.rank, peer.rank, peer.host), detail, remedy);
}

absl::Status VerbsTransport::PeerDied(const Peer& peer) const {
  return PeerDiedError("verbs", ctx_.rank, peer.rank, peer.host, "closed its connection");
}

bool VerbsTransport::HasPending(const Peer& peer) const {
  if (peer.ops > 0) return true;
  for (const auto& [tag, queue] : peer.posted) {
    if (!queue.empty()) return true;
  }
  for (const OutMsg& msg : peer.outq) {
    if (msg.request) return true;
  }
  return false;
}

void VerbsTransport::OnError(const ibv_wc& wc) {
  int index = WrIdPeer(wc.wr_id);
  if (index >= static_cast<int>(peers_.size())) return;
  Peer& peer = *peers_[index];
  WrKind kind = WrIdKind(wc.wr_id);
  VerbsRequestPtr request;  // of a failed send: fails with the peer's error, once it is known.
  if (kind != WrKind::kRecv) {
    --peer.qps[WrIdQp(wc.wr_id)].outstanding;
    if (kind == WrKind::kSend) {
      int slot = static_cast<int>(WrIdIndex(wc.wr_id));
      request = std::move(send_slot_request_[slot]);
      send_pool_->Put(slot);
    }
  }
  auto finish_request = [&] {
    if (request) request->Finish(peer.error.ok() ? absl::UnavailableError("flushed") : peer.error, 0);
  };
  // Flushes follow a failure already reported (the QP is in the error state).
  if (wc.status == IBV_WC_WR_FLUSH_ERR || peer.state == Peer::State::kFailed) return finish_request();
  // A port that went down fails the work requests in flight (e.g. with a local QP operation
  // error) before its event is read: the event is the error to report.
  ReadAsyncEvents();
  if (peer.state == Peer::State::kFailed) return finish_request();
  std::string detail, remedy;
  const char* what = ibv_wc_status_str(wc.status);
  switch (wc.status) {
    case IBV_WC_RETRY_EXC_ERR:
      detail = absl::StrCat("peer rank ", peer.rank, " on host ", peer.host.empty() ? "?" : peer.host,
                            " unreachable (", what, ": no acknowledgement after ",
                            ctx_.config.ib_retry_cnt, " retransmissions)");
      remedy = absl::StrCat("check that rank ", peer.rank, " is alive and its port is ACTIVE "
                            "(ibv_devinfo), the links and switches between the hosts, the GID "
                            "(BRAID_IB_GID_INDEX) and, on RoCE, PFC/ECN; a congested fabric may "
                            "need a larger BRAID_IB_TIMEOUT or BRAID_IB_RETRY_CNT");
      break;
    case IBV_WC_RNR_RETRY_EXC_ERR:
      detail = absl::StrCat("rank ", peer.rank, " had no receive posted (", what, ")");
      remedy = "this is a Braid bug (credits should prevent it): report it";
      break;
    case IBV_WC_REM_ACCESS_ERR:
    case IBV_WC_LOC_PROT_ERR:
    case IBV_WC_LOC_ACCESS_ERR:
      detail = absl::StrCat("an RDMA access was refused (", what, ")");
      remedy = "a buffer was deregistered or freed while a transfer used it; keep buffers "
               "registered and valid until their requests complete";
      break;
    default:
      detail = absl::StrCat("a work request failed (", what, ", vendor error ", wc.vendor_err, ")");
      remedy = "check the port (ibv_devinfo) and the system log (dmesg) on both hosts";
  }
  FailPeer(peer, PeerError(peer, detail, remedy), /*fatal=*/true);
  finish_request();
}

void VerbsTransport::ReadAsyncEvents() {
  ibv_async_event event{};
  while (ibv_get_async_event(device_, &event) == 0) {  // the fd is non-blocking.
    OnAsyncEvent(event);
    ibv_ack_async_event(&event);
  }
}

void VerbsTransport::OnAsyncEvent(const ibv_async_event& event) {
  const char* what = ibv_event_type_str(event.event_type);
  switch (event.event_type) {
    case IBV_EVENT_QP_FATAL:
    case IBV_EVENT_QP_REQ_ERR:
    case IBV_EVENT_QP_ACCESS_ERR: {
      auto it = peer_of_qpn_.find(event.element.qp->qp_num);
      if (it == peer_of_qpn_.end()) return;
      FailPeer(*it->second,
               PeerError(*it->second, absl::StrCat("its queue pair failed (", what, ")"),
                         "check the system log (dmesg) on both hosts"),
               true);
      return;
    }
    case IBV_EVENT_PORT_ERR:
    case IBV_EVENT_DEVICE_FATAL:
    case IBV_EVENT_CQ_ERR:
      FailAll(MakeError(absl::StatusCode::kUnavailable,
                        absl::StrCat("verbs transport (rank ", ctx_.rank, ")"),
                        absl::StrCat(port_.device, ":", port_.port, ": ", what),
                        event.event_type == IBV_EVENT_PORT_ERR
                            ? "the port went down: check the cable, the switch port and "
                              "`ibv_devinfo`; restart the job once it is ACTIVE again"
                            : "check the system log (dmesg); the device needs a reset"));
      return;
    default:
      BRAID_LOG(kInfo, "verbs: async event ", what);
  }
}

void VerbsTransport::OnSocket(Peer& peer) {
  if (!peer.socket) return;
  int err = 0;
  bool goodbye = false;
  int32_t blame = -1;
  auto result = peer.reader.Read(peer.socket.get(), kLivenessRecordBytes, &err,
                                 [&](const char* record) {
    uint32_t magic = 0;
    std::memcpy(&magic, record, 4);
    std::memcpy(&blame, record + 4, 4);
    ++peer.activity;
    if (magic == kHeartbeatMagic) return true;
    goodbye = magic == kGoodbyeMagic;
    return false;  // the goodbye is the last record; anything else is garbage.
  });
  if (result == LivenessReader::Result::kWouldBlock) return;
  epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, peer.socket.get(), nullptr);
  peer.socket.reset();
  if (goodbye) {
    peer.goodbye = true;
    if (blame == kGoodbyeMismatch && peer.state == Peer::State::kOpen) {
      FailPeer(peer, PeerLeftAfterMismatchError("verbs", ctx_.rank, peer.rank, peer.host),
               true, kGoodbyeMismatch);
      mismatch_ = true;  // passed on in our own goodbyes.
      return;
    }
    if (blame >= 0 && blame < ctx_.nranks && peer.state == Peer::State::kOpen) {
      // The peer gave up because another rank failed: name that rank (its own end of
      // connection may still be on its way to us).
      std::string host = static_cast<size_t>(blame) < ctx_.hosts.size() ? ctx_.hosts[blame] : "";
      FailPeer(peer,
               PeerLeftAfterFailureError("verbs", ctx_.rank, peer.rank, peer.host, blame, host),
               true, blame);
      return;
    }
    ClosePeer(peer);
    return;
  }
  // End of stream (or garbage, or a reset) without a goodbye: the process is gone.
  if (peer.state == Peer::State::kFailed) return;
  FailPeer(peer, PeerDied(peer), true);
}

void VerbsTransport::ClosePeer(Peer& peer) {
  if (peer.state != Peer::State::kOpen) return;
  // Everything it sent is in: requests still waiting on it can never complete.
  if (HasPending(peer)) {
    FailPeer(peer,
             PeerLeftWithPendingError("verbs", ctx_.rank, peer.rank, peer.host),
             /*fatal=*/false);
    return;
  }
  peer.state = Peer::State::kClosed;
  peer.error = PeerClosedError("verbs", ctx_.rank, peer.rank, peer.host);
  BRAID_LOG(kInfo, peer.error.message());
}

void VerbsTransport::FailPeer(Peer& peer, absl::Status status, bool fatal, int blame) {
  if (peer.state == Peer::State::kFailed) return;
  if (fatal) {
    BRAID_LOG(kWarn, status.message());
    int culprit = blame == kGoodbyeMismatch ? -1 : blame >= 0 ? blame : peer.rank;
    // FailAll blames this rank itself (its device failed): not a failed peer.
    if (culprit >= 0 && culprit != ctx_.rank) NoteFailedRank(failed_ranks_, culprit);
    if (fatal_.ok()) {
      fatal_ = status;
      fatal_rank_ = culprit;
    }
  } else {
    BRAID_LOG(kInfo, status.message());
  }
  peer.state = Peer::State::kFailed;
  peer.error = status;
  // The error state stops the device from touching our buffers before requests fail (their
  // buffers may be freed right after); outstanding work requests come back flushed.
  for (Qp& qp : peer.qps) {
    ibv_qp_attr attr{};
    attr.qp_state = IBV_QPS_ERR;
    ibv_modify_qp(qp.qp, &attr, IBV_QP_STATE);
    for (PendingWr& pending : qp.backlog) {
      if (WrIdKind(pending.wr.wr_id) != WrKind::kSend) continue;
      int slot = static_cast<int>(WrIdIndex(pending.wr.wr_id));
      if (send_slot_request_[slot]) send_slot_request_[slot]->Finish(status, 0);
      send_slot_request_[slot].reset();
      send_pool_->Put(slot);
    }
    qp.backlog.clear();
  }
  for (auto& [tag, queue] : peer.posted) {
    for (PostedRecv& recv : queue) recv.request->Finish(status, 0);
  }
  peer.posted.clear();
  for (OutMsg& msg : peer.outq) {
    if (msg.request) msg.request->Finish(status, 0);
  }
  peer.outq.clear();
  for (auto it = sends_.begin(); it != sends_.end();) {
    if (it->second.peer != &peer) {
      ++it;
      continue;
    }
    it->second.request->Finish(status, 0);
    Unregister(it->second.reg);
    it = sends_.erase(it);
  }
  for (auto it = recvs_.begin(); it != recvs_.end();) {
    if (it->second.peer != &peer) {
      ++it;
      continue;
    }
    it->second.request->Finish(status, 0);
    Unregister(it->second.reg);
    it = recvs_.erase(it);
  }
  peer.ops = 0;
  std::erase_if(peer.unexpected, [](const auto& entry) { return entry.second.empty(); });
}

absl::Status VerbsTransport::Silence() {
  std::lock_guard lock(mu_);
  for (auto& peer : peers_) {
    for (Qp& qp : peer->qps) {
      ibv_qp_attr attr{};
      attr.qp_state = IBV_QPS_ERR;
      int rc = ibv_modify_qp(qp.qp, &attr, IBV_QP_STATE);
      if (rc != 0) return Verbs("moving a queue pair to the error state", rc);
    }
  }
  return absl::OkStatus();
}

void VerbsTransport::FailAll(absl::Status status) {
  for (auto& peer : peers_) {
    if (peer->connected) FailPeer(*peer, status, true, ctx_.rank);
  }
  if (fatal_.ok()) fatal_ = status;
}

bool VerbsTransport::send_heartbeats() {
  std::lock_guard lock(mu_);
  const uint32_t beat[2] = {kHeartbeatMagic, 0};
  for (auto& peer : peers_) {
    if (peer->state != Peer::State::kOpen || !peer->socket) continue;
    peer->writer.Heartbeat(peer->socket.get(), beat, sizeof(beat));
  }
  return true;
}

void VerbsTransport::read_activity(std::span<uint64_t> counters) {
  std::lock_guard lock(mu_);
  for (const auto& peer : peers_) {
    if (static_cast<size_t>(peer->rank) < counters.size()) counters[peer->rank] = peer->activity;
  }
}

void VerbsTransport::peer_failed(int rank, const absl::Status& why) {
  std::lock_guard lock(mu_);
  bool ours = false;
  for (auto& peer : peers_) {
    if (peer->rank != rank) continue;
    FailPeer(*peer, why, /*fatal=*/true);
    ours = true;
  }
  if (!ours) NoteForeignFailure(rank, why, failed_ranks_, fatal_, fatal_rank_);
}

std::vector<int> VerbsTransport::failed_peers() {
  std::lock_guard lock(mu_);
  return failed_ranks_;
}

}  // namespace braid::verbs

namespace braid {

absl::Status SilenceVerbsTransportForTesting(Transport& transport) {
  auto* verbs = dynamic_cast<verbs::VerbsTransport*>(&transport);
  if (verbs == nullptr) return absl::InvalidArgumentError("not a verbs transport");
  return verbs->Silence();
}

}  // namespace braid
