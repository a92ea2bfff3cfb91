// The verbs message protocol: tag matching, eager copies through staging slots, rendezvous
// RDMA writes into the receiver's buffer, credits, and the send queues. See verbs_internal.h.
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/status.h"
#include "transports/transport_errors.h"
#include "transports/verbs/verbs_internal.h"

namespace braid::verbs {

absl::Status VerbsTransport::Mismatch(const Peer& peer, uint64_t tag, size_t posted,
                                      size_t sent) const {
  return SizeMismatchError("verbs", ctx_.rank, peer.rank, peer.host, tag, sent, posted);
}

absl::StatusOr<Registration> VerbsTransport::Register(const void* buf, size_t len,
                                                      const MemoryRegion* region) {
  uintptr_t start = reinterpret_cast<uintptr_t>(buf);
  if (region != nullptr && region->native != nullptr) {
    auto* entry = static_cast<RegistrationCache::Entry*>(region->native);
    if (entry->covers(start, len)) return Registration{static_cast<ibv_mr*>(entry->handle), nullptr};
  }
  // A buffer inside a braidCommRegister'ed region hits the cache; others are registered here
  // (and kept only when BRAID_IB_REG_CACHE allows).
  BRAID_ASSIGN_OR_RETURN(RegistrationCache::Entry * entry, cache_->Acquire(buf, len));
  return Registration{static_cast<ibv_mr*>(entry->handle), entry};
}

void VerbsTransport::Unregister(Registration& reg) {
  if (reg.cached != nullptr) cache_->Release(reg.cached);
  reg = Registration{};
}

absl::StatusOr<uint32_t> VerbsTransport::NewSendOp(Peer& peer, const VerbsRequestPtr& request,
                                                   const void* buf, size_t len, uint64_t tag,
                                                   const MemoryRegion* region, bool iwrite) {
  BRAID_ASSIGN_OR_RETURN(Registration reg, Register(buf, len, region));
  uint32_t id = next_op_++;
  SendOp& op = sends_[id];
  op.peer = &peer;
  op.request = request;
  op.buf = static_cast<const char*>(buf);
  op.len = len;
  op.tag = tag;
  op.reg = reg;
  op.iwrite = iwrite;
  ++peer.ops;
  return id;
}

absl::StatusOr<RequestPtr> VerbsTransport::Send(Peer& peer, const void* buf, size_t len,
                                                uint64_t tag, const MemoryRegion* region) {
  std::lock_guard lock(mu_);
  if (peer.state != Peer::State::kOpen) return peer.error;
  if (!fatal_.ok()) return fatal_;
  auto request = std::make_shared<VerbsRequest>();
  OutMsg msg;
  msg.header.tag = tag;
  msg.header.length = len;
  if (len <= kEagerMax) {
    msg.header.type = MsgType::kEager;
    msg.payload = static_cast<const char*>(buf);
    msg.request = request;
  } else {
    BRAID_ASSIGN_OR_RETURN(uint32_t id, NewSendOp(peer, request, buf, len, tag, region, false));
    msg.header.type = MsgType::kRts;
    msg.header.id = id;
  }
  Enqueue(peer, std::move(msg));
  return request;
}

absl::StatusOr<RequestPtr> VerbsTransport::Recv(Peer& peer, void* buf, size_t len, uint64_t tag,
                                                const MemoryRegion* region) {
  std::lock_guard lock(mu_);
  auto request = std::make_shared<VerbsRequest>();
  PostedRecv recv{request, static_cast<char*>(buf), len, region, tag};
  // A message that arrived first is matched even if its sender has left since.
  auto it = peer.unexpected.find(tag);
  if (it != peer.unexpected.end() && !it->second.empty()) {
    Arrival arrival = std::move(it->second.front());
    it->second.pop_front();
    if (it->second.empty()) peer.unexpected.erase(it);
    if (arrival.type == MsgType::kEager) {
      if (arrival.length != len) {
        request->Finish(Mismatch(peer, tag, len, arrival.length), 0);
      } else {
        if (len > 0) std::memcpy(buf, arrival.data.get(), len);
        request->Finish(absl::OkStatus(), len);
      }
    } else {
      MatchRts(peer, std::move(recv), arrival.send_id, arrival.length);
    }
    return request;
  }
  // A message of another collective at the same sequence number means the ranks diverged:
  // fail now rather than wait for a message that will never come (transport.h).
  for (const auto& [arrived, queue] : peer.unexpected) {
    if (TagsConflict(tag, arrived)) {
      mismatch_ = true;
      request->Finish(TagConflictError("verbs", ctx_.rank, DescribeRank(peer.rank, peer.host),
                                       tag, arrived),
                      0);
      return request;
    }
  }
  if (peer.state != Peer::State::kOpen) return peer.error;
  if (!fatal_.ok()) return fatal_;
  peer.posted[tag].push_back(std::move(recv));
  return request;
}

absl::StatusOr<RequestPtr> VerbsTransport::Write(Peer& peer, const void* buf, size_t len,
                                                 const MemoryRegion* region,
                                                 const RemoteBuffer& dst, size_t offset,
                                                 uint64_t tag) {
  std::lock_guard lock(mu_);
  if (peer.state != Peer::State::kOpen) return peer.error;
  if (!fatal_.ok()) return fatal_;
  if (offset > dst.length || len > dst.length - offset) {
    return MakeError(absl::StatusCode::kInvalidArgument,
                     absl::StrCat("verbs transport: iwrite to ", DescribeRank(peer.rank, peer.host)),
                     absl::StrCat(len, " bytes at offset ", offset, " overrun the ", dst.length,
                                  "-byte remote buffer"));
  }
  auto request = std::make_shared<VerbsRequest>();
  if (len == 0) {
    OutMsg msg;
    msg.header.type = MsgType::kEager;
    msg.header.tag = tag;
    msg.request = request;
    Enqueue(peer, std::move(msg));
    return request;
  }
  BRAID_ASSIGN_OR_RETURN(uint32_t id, NewSendOp(peer, request, buf, len, tag, region, true));
  StartWrites(sends_[id], id, dst.address + offset, static_cast<uint32_t>(dst.remote_key));
  return request;
}

void VerbsTransport::MatchRts(Peer& peer, PostedRecv recv, uint64_t send_id, uint64_t length) {
  OutMsg reply;
  reply.header.id = send_id;
  if (length != recv.len) {
    recv.request->Finish(Mismatch(peer, recv.tag, recv.len, length), 0);
    reply.header.type = MsgType::kRefuse;
    reply.header.length = recv.len;
    Enqueue(peer, std::move(reply));
    return;
  }
  auto reg = Register(recv.buf, recv.len, recv.region);
  if (!reg.ok()) {
    recv.request->Finish(reg.status(), 0);
    reply.header.type = MsgType::kRefuse;
    reply.header.refused_unregistrable = 1;
    reply.header.length = recv.len;
    Enqueue(peer, std::move(reply));
    return;
  }
  uint32_t id = next_op_++;
  RecvOp& op = recvs_[id];
  op.peer = &peer;
  op.request = recv.request;
  op.len = recv.len;
  op.reg = *reg;
  ++peer.ops;
  reply.header.type = MsgType::kCts;
  reply.header.recv_id = id;
  reply.header.addr = reinterpret_cast<uintptr_t>(recv.buf);
  reply.header.rkey = reg->mr->rkey;
  reply.header.length = recv.len;
  Enqueue(peer, std::move(reply));
}

void VerbsTransport::OnMessage(Peer& peer, int slot, size_t bytes) {
  const char* data = recv_pool_->slot(peer.index * kRecvSlots + slot);
  WireHeader h;
  std::memcpy(&h, data, sizeof(h));
  peer.send_credits += static_cast<int>(h.credits);
  if (bytes < sizeof(h) || (h.type == MsgType::kEager && bytes != sizeof(h) + h.length)) {
    FailPeer(peer, PeerError(peer, absl::StrCat("sent a malformed message (", bytes, " bytes)"),
                             "run the same Braid version on every rank"), true);
    return;
  }
  auto take_posted = [&](uint64_t tag, PostedRecv* out) {
    auto it = peer.posted.find(tag);
    if (it == peer.posted.end() || it->second.empty()) return false;
    *out = std::move(it->second.front());
    it->second.pop_front();
    if (it->second.empty()) peer.posted.erase(it);
    return true;
  };
  PostedRecv recv;
  switch (h.type) {
    case MsgType::kEager:
      if (take_posted(h.tag, &recv)) {
        if (recv.len != h.length) {
          recv.request->Finish(Mismatch(peer, h.tag, recv.len, h.length), 0);
        } else {
          if (h.length > 0) std::memcpy(recv.buf, data + sizeof(h), h.length);
          recv.request->Finish(absl::OkStatus(), h.length);
        }
      } else {
        Arrival arrival{MsgType::kEager, h.length, 0, nullptr};
        arrival.data = std::make_unique<char[]>(std::max<size_t>(h.length, 1));
        if (h.length > 0) std::memcpy(arrival.data.get(), data + sizeof(h), h.length);
        peer.unexpected[h.tag].push_back(std::move(arrival));
        FailConflictingReceives(peer, h.tag);
      }
      break;
    case MsgType::kRts:
      if (take_posted(h.tag, &recv)) {
        MatchRts(peer, std::move(recv), h.id, h.length);
      } else {
        peer.unexpected[h.tag].push_back(Arrival{MsgType::kRts, h.length, h.id, nullptr});
        FailConflictingReceives(peer, h.tag);
      }
      break;
    case MsgType::kCts: {
      auto it = sends_.find(static_cast<uint32_t>(h.id));
      if (it == sends_.end()) break;
      it->second.recv_id = h.recv_id;
      StartWrites(it->second, it->first, h.addr, h.rkey);
      break;
    }
    case MsgType::kRefuse: {
      auto it = sends_.find(static_cast<uint32_t>(h.id));
      if (it == sends_.end()) break;
      SendOp& op = it->second;
      op.request->Finish(
          h.refused_unregistrable
              ? PeerError(peer, absl::StrCat("could not register its ", h.length,
                                             "-byte receive buffer for tag ", op.tag),
                          "see that rank's error (memlock limit?)")
              : Mismatch(peer, op.tag, h.length, op.len),
          0);
      Unregister(op.reg);
      sends_.erase(it);
      --peer.ops;
      break;
    }
    case MsgType::kFin: {
      auto it = recvs_.find(static_cast<uint32_t>(h.id));
      if (it == recvs_.end()) break;
      Unregister(it->second.reg);
      it->second.request->Finish(absl::OkStatus(), it->second.len);
      recvs_.erase(it);
      --peer.ops;
      break;
    }
    case MsgType::kCredit:
      break;
    default:
      FailPeer(peer, PeerError(peer, "sent an unknown message type",
                               "run the same Braid version on every rank"), true);
      return;
  }
  if (peer.state == Peer::State::kFailed) return;
  absl::Status posted = PostRecvSlot(peer, slot);
  if (!posted.ok()) {
    FailPeer(peer, posted, true);
    return;
  }
  ++peer.credits_to_return;
}

void VerbsTransport::FailConflictingReceives(Peer& peer, uint64_t arrived) {
  for (auto it = peer.posted.begin(); it != peer.posted.end();) {
    if (!TagsConflict(it->first, arrived)) {
      ++it;
      continue;
    }
    mismatch_ = true;
    for (const PostedRecv& recv : it->second) {
      recv.request->Finish(TagConflictError("verbs", ctx_.rank, DescribeRank(peer.rank, peer.host),
                                            it->first, arrived),
                           0);
    }
    it = peer.posted.erase(it);
  }
}

void VerbsTransport::StartWrites(SendOp& op, uint64_t id, uint64_t addr, uint32_t rkey) {
  Peer& peer = *op.peer;
  size_t stripes = std::max<size_t>(1, std::min<size_t>(nqps_, op.len / kMinStripe));
  size_t stripe = (op.len + stripes - 1) / stripes;
  stripe = (stripe + 4095) / 4096 * 4096;
  op.writes_left = 0;
  for (size_t s = 0; s < stripes; ++s) {
    size_t begin = s * stripe, end = std::min(op.len, begin + stripe);
    for (size_t off = begin; off < end; off += max_write_) {
      size_t n = std::min(max_write_, end - off);
      ibv_sge sge{reinterpret_cast<uintptr_t>(op.buf + off), static_cast<uint32_t>(n),
                  op.reg.mr->lkey};
      ibv_send_wr wr{};
      wr.wr_id = MakeWrId(WrKind::kWrite, peer.index, id, static_cast<int>(s));
      wr.opcode = IBV_WR_RDMA_WRITE;
      wr.send_flags = IBV_SEND_SIGNALED;
      wr.wr.rdma.remote_addr = addr + off;
      wr.wr.rdma.rkey = rkey;
      ++op.writes_left;
      PostSend(peer, static_cast<int>(s), wr, &sge);
    }
  }
  if (stripes == 1) AnnounceWrites(op);
}

OutMsg VerbsTransport::WritesDoneMessage(SendOp& op) {
  OutMsg msg;
  if (op.iwrite) {
    // The zero-byte message delivers the tag behind the data.
    msg.header.type = MsgType::kEager;
    msg.header.tag = op.tag;
  } else {
    msg.header.type = MsgType::kFin;
    msg.header.id = op.recv_id;
  }
  return msg;
}

void VerbsTransport::AnnounceWrites(SendOp& op) {
  op.announced = true;
  Enqueue(*op.peer, WritesDoneMessage(op));
}

void VerbsTransport::Enqueue(Peer& peer, OutMsg msg) {
  peer.outq.push_back(std::move(msg));
  Pump(peer);
}

void VerbsTransport::Pump(Peer& peer) {
  if (peer.state != Peer::State::kOpen || !peer.connected) return;
  // One credit stays reserved for CREDIT messages (see verbs_internal.h).
  while (!peer.outq.empty() && peer.send_credits >= 2) {
    if (!PostControl(peer, peer.outq.front())) return;
    peer.outq.pop_front();
  }
  if (peer.credits_to_return >= kRecvSlots / 2 && peer.send_credits >= 1) {
    OutMsg credit;
    credit.header.type = MsgType::kCredit;
    PostControl(peer, credit);
  }
}

void VerbsTransport::PumpAll() {
  for (auto& peer : peers_) {
    if (!peer->outq.empty() || peer->credits_to_return >= kRecvSlots / 2) Pump(*peer);
  }
}

bool VerbsTransport::PostControl(Peer& peer, OutMsg& msg) {
  int slot = send_pool_->Get();
  if (slot < 0) return false;
  msg.header.credits = static_cast<uint32_t>(peer.credits_to_return);
  peer.credits_to_return = 0;
  char* dst = send_pool_->slot(slot);
  std::memcpy(dst, &msg.header, sizeof(msg.header));
  size_t size = sizeof(msg.header);
  if (msg.header.type == MsgType::kEager) {
    if (msg.header.length > 0) std::memcpy(dst + size, msg.payload, msg.header.length);
    size += msg.header.length;
  }
  send_slot_request_[slot] = std::move(msg.request);
  ibv_sge sge{reinterpret_cast<uintptr_t>(dst), static_cast<uint32_t>(size), send_mr_->lkey};
  ibv_send_wr wr{};
  wr.wr_id = MakeWrId(WrKind::kSend, peer.index, static_cast<uint64_t>(slot), 0);
  wr.opcode = IBV_WR_SEND;
  const bool inline_data = size <= max_inline_;
  wr.send_flags = IBV_SEND_SIGNALED | (inline_data ? IBV_SEND_INLINE : 0);
  --peer.send_credits;
  switch (PostSend(peer, 0, wr, &sge)) {
    case PostResult::kPosted:
      // Inline data was copied into the work request: the caller's buffer is free now, and a
      // small send completes without waiting for the peer's acknowledgement (the slot itself
      // is recycled when the completion arrives).
      if (inline_data && send_slot_request_[slot]) {
        VerbsRequestPtr request = std::move(send_slot_request_[slot]);
        request->Finish(absl::OkStatus(), msg.header.length);
      }
      break;
    case PostResult::kQueued:
      break;
    case PostResult::kFailed:
      if (send_slot_request_[slot]) send_slot_request_[slot]->Finish(peer.error, 0);
      send_slot_request_[slot].reset();
      send_pool_->Put(slot);
      break;
  }
  return true;
}

VerbsTransport::PostResult VerbsTransport::PostSend(Peer& peer, int q, const ibv_send_wr& wr,
                                                    const ibv_sge* sge) {
  Qp& qp = peer.qps[q];
  if (qp.outstanding >= kSendQueueDepth || !qp.backlog.empty()) {
    qp.backlog.push_back(PendingWr{wr, *sge});
    return PostResult::kQueued;
  }
  ibv_send_wr post = wr;
  ibv_sge local = *sge;
  post.sg_list = &local;
  post.num_sge = 1;
  post.next = nullptr;
  ibv_send_wr* bad = nullptr;
  int rc = ibv_post_send(qp.qp, &post, &bad);
  if (rc != 0) {
    FailPeer(peer, Verbs(absl::StrCat("ibv_post_send to ", DescribeRank(peer.rank, peer.host)), rc),
             true);
    return PostResult::kFailed;
  }
  ++qp.outstanding;
  return PostResult::kPosted;
}

void VerbsTransport::OnCompletion(const ibv_wc& wc) {
  if (wc.status != IBV_WC_SUCCESS) return OnError(wc);
  int index = WrIdPeer(wc.wr_id);
  if (index >= static_cast<int>(peers_.size())) return;
  Peer& peer = *peers_[index];
  WrKind kind = WrIdKind(wc.wr_id);
  if (kind == WrKind::kRecv) {
    if (peer.state != Peer::State::kFailed) OnMessage(peer, static_cast<int>(WrIdIndex(wc.wr_id)), wc.byte_len);
    return;
  }
  Qp& qp = peer.qps[WrIdQp(wc.wr_id)];
  --qp.outstanding;
  if (kind == WrKind::kSend) {
    int slot = static_cast<int>(WrIdIndex(wc.wr_id));
    VerbsRequestPtr request = std::move(send_slot_request_[slot]);
    WireHeader h;
    std::memcpy(&h, send_pool_->slot(slot), sizeof(h));
    send_pool_->Put(slot);
    if (request) request->Finish(absl::OkStatus(), h.length);
  } else if (kind == WrKind::kWrite) {
    auto it = sends_.find(WrIdIndex(wc.wr_id));
    if (it != sends_.end() && --it->second.writes_left == 0) {
      // Our source buffer is free again (the request completes); the peer learns that its data
      // is placed from the message behind the writes.
      SendOp& op = it->second;
      Unregister(op.reg);
      op.request->Finish(absl::OkStatus(), op.len);
      bool announced = op.announced;
      OutMsg msg = announced ? OutMsg{} : WritesDoneMessage(op);
      sends_.erase(it);
      --peer.ops;
      if (!announced) Enqueue(peer, std::move(msg));
    }
  }
  while (!qp.backlog.empty() && qp.outstanding < kSendQueueDepth && peer.state == Peer::State::kOpen) {
    PendingWr pending = qp.backlog.front();
    qp.backlog.pop_front();
    PostSend(peer, WrIdQp(pending.wr.wr_id), pending.wr, &pending.sge);
  }
}

}  // namespace braid::verbs
