// The ofi transport's messages: control messages (header, small payloads inline), data
// messages (segments striped across NICs), matching by sequence then tag, and -FI_EAGAIN.
#include <rdma/fi_errno.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/status.h"
#include "transports/ofi/ofi_internal.h"
#include "transports/transport_errors.h"

namespace braid::ofi {

Op* OfiTransport::NewOp(Op::Kind kind, Peer* peer, int rail) {
  Op* op = new Op();
  op->kind = kind;
  op->peer = peer;
  op->rail = rail;
  ops_.insert(op);
  return op;
}

void OfiTransport::FreeOp(Op* op) {
  if (op->mr) fi_close(&op->mr->fid);
  if (op->pool_slot >= 0) free_send_slots_.push_back(op->pool_slot);
  ops_.erase(op);
  delete op;
}

int OfiTransport::TryPost(Op* op) {
  fid_ep* ep = rails_[op->rail]->ep;
  if (op->kind == Op::Kind::kWrite) {
    return static_cast<int>(fi_writedata(ep, op->buf, op->len, op->desc, op->fabric_tag, op->addr,
                                         op->remote_addr, op->remote_key, &op->ctx));
  }
  if (op->send) {
    return static_cast<int>(
        fi_tsend(ep, op->buf, op->len, op->desc, op->addr, op->fabric_tag, &op->ctx));
  }
  return static_cast<int>(
      fi_trecv(ep, op->buf, op->len, op->desc, op->addr, op->fabric_tag, 0, &op->ctx));
}

absl::Status OfiTransport::Post(Op* op) {
  // Behind a refused post everything waits its turn, so posts reach the provider in order.
  int rc = pending_.empty() ? TryPost(op) : -FI_EAGAIN;
  if (rc == -FI_EAGAIN) {
    pending_.push_back(op);
    return absl::OkStatus();
  }
  return rc == 0 ? absl::OkStatus() : PostFailed(op, rc);
}

absl::Status OfiTransport::PostFailed(Op* op, int rc) {
  std::string where = op->peer ? DescribeRank(op->peer->rank, op->peer->host) : "any rank";
  absl::Status status = MakeError(
      absl::StatusCode::kInternal,
      absl::StrCat("ofi transport (rank ", ctx_.rank, "): posting a ",
                   op->send ? "send to " : "receive from ", where, " on NIC ",
                   rails_[op->rail]->info->domain_attr->name),
      FabricError(op->send ? "fi_tsend" : "fi_trecv", rc));
  if (op->request) op->request->OpDone(status);
  op->request.reset();
  FreeOp(op);
  if (fatal_.ok()) fatal_ = status;
  return status;
}

void OfiTransport::RetryPending() {
  while (!pending_.empty()) {
    Op* op = pending_.front();
    int rc = TryPost(op);
    if (rc == -FI_EAGAIN) return;  // the provider needs completions reaped first.
    pending_.pop_front();
    if (rc != 0) (void)PostFailed(op, rc);
  }
}

absl::Status OfiTransport::PostCtrlRecv(Op* op) {
  op->send = false;
  op->len = kCtrlBytes;
  op->desc = ctrl_recv_mr_ ? fi_mr_desc(ctrl_recv_mr_) : nullptr;
  op->addr = FI_ADDR_UNSPEC;
  op->fabric_tag = kCtrlTag;
  return Post(op);
}

absl::StatusOr<void*> OfiTransport::Describe(Op* op, const MemoryRegion* region) {
  Rail& rail = *rails_[op->rail];
  if (!rail.needs_local_mr()) return nullptr;
  if (region != nullptr && region->native != nullptr) {
    const char* base = static_cast<const char*>(region->base);
    if (op->buf >= base && op->buf + op->len <= base + region->length) {
      return fi_mr_desc(static_cast<RegionMrs*>(region->native)->mrs[op->rail]);
    }
  }
  // An unregistered buffer under FI_MR_LOCAL: registered for this operation (EFA's provider
  // caches registrations, so a buffer used again is cheap).
  BRAID_ASSIGN_OR_RETURN(op->mr, rail.Register(op->buf, op->len));
  return fi_mr_desc(op->mr);
}

OfiTransport::Layout OfiTransport::SegmentsFor(const Peer& peer, size_t len) const {
  size_t rails = peer.addr.size();
  size_t stripes = rails > 1 && len > ctx_.config.ofi_min_stripe_bytes ? rails : 1;
  size_t by_size = (len + max_segment_ - 1) / max_segment_;
  size_t nsegs = std::max(stripes, by_size);
  return Layout{static_cast<uint32_t>(std::min<size_t>(nsegs, kMaxSegments + 1)),
                (len + nsegs - 1) / nsegs};
}

absl::StatusOr<RequestPtr> OfiTransport::Send(Peer& peer, const void* buf, size_t len,
                                              uint64_t tag, const MemoryRegion* region) {
  std::lock_guard<std::mutex> lock(mu_);
  BRAID_RETURN_IF_ERROR(fatal_);
  if (peer.state != Peer::State::kOpen) return peer.error;
  CtrlHeader header{kCtrlMagic, static_cast<uint32_t>(ctx_.rank), peer.next_send_seq, tag, len, 0,
                    kProtocolVersion};
  Layout layout{0, 0};
  if (len > kEagerMax) {
    layout = SegmentsFor(peer, len);
    if (len > kMaxMessageBytes || layout.nsegs > kMaxSegments) {
      return MakeError(absl::StatusCode::kInvalidArgument,
                       absl::StrCat("ofi transport: sending ", len, " bytes"),
                       absl::StrCat("more than ", kMaxSegments, " segments of ", max_segment_,
                                    " bytes"),
                       "send less at once or raise BRAID_OFI_MAX_SEGMENT");
    }
    header.nsegs = layout.nsegs;
  }
  ++peer.next_send_seq;
  auto request = std::make_shared<OfiRequest>(const_cast<void*>(buf), len, tag);
  request->region = region;
  request->ops_left = 1 + static_cast<int>(layout.nsegs);
  BRAID_RETURN_IF_ERROR(SendCtrl(peer, header, layout.nsegs == 0 ? buf : nullptr, request));
  const char* data = static_cast<const char*>(buf);
  for (uint32_t s = 0; s < layout.nsegs; ++s) {
    size_t offset = s * layout.seg_size;
    Op* op = NewOp(Op::Kind::kDataSend, &peer, static_cast<int>(s % peer.addr.size()));
    op->request = request;
    op->buf = const_cast<char*>(data) + offset;
    op->len = offset >= len ? 0 : std::min(layout.seg_size, len - offset);
    auto desc = Describe(op, region);
    if (!desc.ok()) {
      request->OpDone(desc.status());
      FreeOp(op);
      continue;
    }
    op->desc = *desc;
    op->send = true;
    op->addr = peer.addr[op->rail];
    op->fabric_tag = DataTag(ctx_.rank, header.seq, s);
    BRAID_RETURN_IF_ERROR(Post(op));
  }
  return request;
}

absl::Status OfiTransport::SendCtrl(Peer& peer, const CtrlHeader& header, const void* payload,
                                    const OfiRequestPtr& request) {
  // From the pre-registered pool, or a buffer of its own when the pool ran dry.
  Op* ctrl = NewOp(Op::Kind::kCtrlSend, &peer, 0);
  ctrl->request = request;
  if (!free_send_slots_.empty()) {
    ctrl->pool_slot = free_send_slots_.back();
    free_send_slots_.pop_back();
    ctrl->buf = ctrl_send_slab_.get() + static_cast<size_t>(ctrl->pool_slot) * kCtrlBytes;
    ctrl->desc = ctrl_send_mr_ ? fi_mr_desc(ctrl_send_mr_) : nullptr;
  } else {
    ctrl->owned.reset(new char[kCtrlBytes]);
    ctrl->buf = ctrl->owned.get();
  }
  size_t inline_len = payload != nullptr ? header.len : 0;
  std::memcpy(ctrl->buf, &header, sizeof(header));
  if (inline_len > 0) std::memcpy(ctrl->buf + sizeof(header), payload, inline_len);
  ctrl->len = sizeof(header) + inline_len;
  if (ctrl->pool_slot < 0) {
    auto desc = Describe(ctrl, nullptr);
    if (!desc.ok()) {
      FreeOp(ctrl);
      return desc.status();
    }
    ctrl->desc = *desc;
  }
  ctrl->send = true;
  ctrl->addr = peer.addr[0];
  ctrl->fabric_tag = kCtrlTag;
  return Post(ctrl);
}

absl::StatusOr<RequestPtr> OfiTransport::Write(Peer& peer, const void* buf, size_t len,
                                               const MemoryRegion* region,
                                               const RemoteBuffer& dst, size_t offset,
                                               uint64_t tag) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!can_write()) {
    return absl::UnimplementedError(absl::StrCat(
        "ofi transport: provider ", fabric_.provider, " gives no one-sided writes Braid can use "
        "(they need FI_RMA, FI_MR_VIRT_ADDR and 4 bytes of remote CQ data, and at most ",
        kMaxWriteRanks, " ranks)"));
  }
  BRAID_RETURN_IF_ERROR(fatal_);
  if (peer.state != Peer::State::kOpen) return peer.error;
  size_t chunks = std::max<size_t>(1, (len + max_segment_ - 1) / max_segment_);
  if (offset > dst.length || len > dst.length - offset || chunks > kMaxSegments) {
    return MakeError(absl::StatusCode::kInvalidArgument,
                     absl::StrCat("ofi transport: writing ", len, " bytes at offset ", offset,
                                  " to ", DescribeRank(peer.rank, peer.host)),
                     absl::StrCat("the remote buffer has ", dst.length, " bytes; a write is at "
                                  "most ", kMaxSegments, " pieces of ", max_segment_, " bytes"),
                     "write within the advertised buffer");
  }
  uint64_t write_seq = peer.next_write_seq++;
  auto request = std::make_shared<OfiRequest>(const_cast<void*>(buf), len, tag);
  request->region = region;
  request->ops_left = static_cast<int>(chunks) + 1;  // the pieces, and the notice.
  for (size_t c = 0; c < chunks; ++c) {
    size_t at = c * max_segment_;
    Op* op = NewOp(Op::Kind::kWrite, &peer, 0);
    op->request = request;
    op->buf = static_cast<char*>(const_cast<void*>(buf)) + at;
    op->len = std::min(max_segment_, len - std::min(len, at));
    auto desc = Describe(op, region);
    if (!desc.ok()) {
      request->OpDone(desc.status());
      FreeOp(op);
      continue;
    }
    op->desc = *desc;
    op->send = true;
    op->addr = peer.addr[0];
    op->fabric_tag = WriteData(ctx_.rank, write_seq);
    op->remote_addr = dst.address + offset + at;  // FI_MR_VIRT_ADDR: a virtual address.
    op->remote_key = dst.remote_key;
    BRAID_RETURN_IF_ERROR(Post(op));
  }
  // The notice names the write and how many pieces must land before its tag is delivered.
  CtrlHeader notice{kCtrlMagic, static_cast<uint32_t>(ctx_.rank), peer.next_send_seq++, tag,
                    (uint64_t{chunks} << 20) | (write_seq & 0xFFFFF), kWriteNotice,
                    kProtocolVersion};
  BRAID_RETURN_IF_ERROR(SendCtrl(peer, notice, nullptr, request));
  return request;
}

void OfiTransport::OnRemoteWrite(uint64_t data) {
  Peer* peer = PeerByRank(static_cast<int>((data >> 20) & 0xFFF));
  if (peer == nullptr || peer->state == Peer::State::kFailed) return;
  ++peer->written[static_cast<uint32_t>(data)];
  Deliver(*peer);
}

absl::StatusOr<RequestPtr> OfiTransport::Recv(Peer& peer, void* buf, size_t len, uint64_t tag,
                                              const MemoryRegion* region) {
  std::lock_guard<std::mutex> lock(mu_);
  BRAID_RETURN_IF_ERROR(fatal_);
  if (peer.state == Peer::State::kFailed) return peer.error;
  auto request = std::make_shared<OfiRequest>(buf, len, tag);
  request->region = region;
  auto it = peer.unexpected.find(tag);
  if (it != peer.unexpected.end() && !it->second.empty()) {
    Message message = std::move(it->second.front());
    it->second.pop_front();
    if (it->second.empty()) peer.unexpected.erase(it);
    Match(peer, std::move(message), request);
    return request;
  }
  for (const auto& [arrived, queue] : peer.unexpected) {
    if (!queue.empty() && TagsConflict(tag, arrived)) {  // a different collective: never wait.
      request->Finish(TagConflictError("ofi", ctx_.rank, DescribeRank(peer.rank, peer.host), tag,
                                       arrived),
                      0);
      return request;
    }
  }
  if (peer.state == Peer::State::kClosed) return peer.error;  // everything it sent is matched.
  peer.posted[tag].push_back(request);
  return request;
}

void OfiTransport::OnCtrl(Op* op, size_t len) {
  CtrlHeader header;
  bool valid = len >= sizeof(header);
  if (valid) std::memcpy(&header, op->buf, sizeof(header));
  valid = valid && header.magic == kCtrlMagic && header.version == kProtocolVersion &&
          header.from_rank < static_cast<uint32_t>(ctx_.nranks) &&
          static_cast<int>(header.from_rank) != ctx_.rank &&
          (header.nsegs <= kMaxSegments || header.nsegs == kWriteNotice) &&
          header.len <= kMaxMessageBytes &&
          (header.nsegs == 0 ? header.len <= kEagerMax && len == sizeof(header) + header.len
                             : len == sizeof(header));
  if (len == sizeof(header) && header.magic == kHelloMagic &&
      header.from_rank < static_cast<uint32_t>(ctx_.nranks)) {
    Peer* peer = PeerByRank(static_cast<int>(header.from_rank));
    if (peer) peer->hello_arrived = true;
    else early_hellos_.insert(static_cast<int>(header.from_rank));
    (void)PostCtrlRecv(op);
    return;
  }
  Message message{header, nullptr};
  if (valid && header.nsegs == 0 && header.len > 0) {
    message.inline_data.reset(new char[header.len]);
    std::memcpy(message.inline_data.get(), op->buf + sizeof(header), header.len);
  }
  (void)PostCtrlRecv(op);  // the buffer is free again.
  if (!valid) {
    BRAID_LOG(kWarn, "ofi transport (rank ", ctx_.rank, "): ignoring a malformed control message of ",
              len, " bytes");
    return;
  }
  int rank = static_cast<int>(header.from_rank);
  Peer* peer = PeerByRank(rank);
  if (peer == nullptr) {
    early_[rank].emplace(header.seq, std::move(message));
    return;
  }
  if (peer->state == Peer::State::kFailed) return;
  peer->arrived.emplace(header.seq, std::move(message));
  Deliver(*peer);
}

void OfiTransport::Deliver(Peer& peer) {
  // In sequence order, whatever order the fabric delivered them in.
  while (!peer.arrived.empty() && peer.arrived.begin()->first == peer.next_recv_seq) {
    CtrlHeader& next = peer.arrived.begin()->second.header;
    if (next.nsegs == kWriteNotice) {
      // A write's tag is delivered only once its data landed (its remote CQ data arrived).
      auto landed = peer.written.find(WriteData(peer.rank, next.len));
      if (landed == peer.written.end() || landed->second < static_cast<int>(next.len >> 20)) break;
      peer.written.erase(landed);
      next.nsegs = 0;
      next.len = 0;
    }
    Message message = std::move(peer.arrived.begin()->second);
    peer.arrived.erase(peer.arrived.begin());
    ++peer.next_recv_seq;
    auto it = peer.posted.find(message.header.tag);
    if (it != peer.posted.end() && !it->second.empty()) {
      OfiRequestPtr request = std::move(it->second.front());
      it->second.pop_front();
      if (it->second.empty()) peer.posted.erase(it);
      Match(peer, std::move(message), request);
    } else {
      uint64_t tag = message.header.tag;
      peer.unexpected[tag].push_back(std::move(message));
      FailConflictingReceive(peer, tag);
    }
  }
  if (peer.said_goodbye) CloseIfDrained(peer);
}

void OfiTransport::FailConflictingReceive(Peer& peer, uint64_t arrived) {
  for (auto it = peer.posted.begin(); it != peer.posted.end(); ++it) {
    if (!TagsConflict(it->first, arrived)) continue;
    for (const OfiRequestPtr& request : it->second) {
      request->Finish(TagConflictError("ofi", ctx_.rank, DescribeRank(peer.rank, peer.host),
                                       it->first, arrived),
                      0);
    }
    peer.posted.erase(it);
    return;
  }
}

void OfiTransport::Match(Peer& peer, Message message, const OfiRequestPtr& request) {
  const CtrlHeader& header = message.header;
  if (header.len != request->len) {
    request->Finish(SizeMismatchError("ofi", ctx_.rank, peer.rank, peer.host, request->tag,
                                      header.len, request->len),
                    0);
    if (header.nsegs > 0) (void)PostDataRecvs(peer, header, nullptr, nullptr);  // discard.
    return;
  }
  if (header.nsegs == 0) {
    if (header.len > 0) std::memcpy(request->buf, message.inline_data.get(), header.len);
    request->Finish(absl::OkStatus(), header.len);
    return;
  }
  request->ops_left = static_cast<int>(header.nsegs);
  (void)PostDataRecvs(peer, header, request->buf, request);
}

absl::Status OfiTransport::PostDataRecvs(Peer& peer, const CtrlHeader& header, char* dest,
                                         const OfiRequestPtr& request) {
  size_t seg = (header.len + header.nsegs - 1) / header.nsegs;
  for (uint32_t s = 0; s < header.nsegs; ++s) {
    size_t offset = s * seg;
    Op* op = NewOp(Op::Kind::kDataRecv, &peer, static_cast<int>(s % peer.addr.size()));
    op->request = request;
    op->len = offset >= header.len ? 0 : std::min<size_t>(seg, header.len - offset);
    if (dest != nullptr) {
      op->buf = dest + offset;
    } else {
      op->owned.reset(new char[std::max<size_t>(op->len, 1)]);
      op->buf = op->owned.get();
    }
    auto desc = Describe(op, request ? request->region : nullptr);
    if (!desc.ok()) {
      if (request) request->OpDone(desc.status());
      FreeOp(op);
      continue;
    }
    op->desc = *desc;
    op->send = false;
    op->addr = FI_ADDR_UNSPEC;
    op->fabric_tag = DataTag(peer.rank, header.seq, s);
    BRAID_RETURN_IF_ERROR(Post(op));
  }
  return absl::OkStatus();
}

void OfiTransport::HandleCompletion(Op* op, size_t len) {
  if (op == nullptr || ops_.count(op) == 0) return;
  switch (op->kind) {
    case Op::Kind::kCtrlRecv:
      OnCtrl(op, len);
      return;
    case Op::Kind::kCtrlSend:
    case Op::Kind::kWrite:
    case Op::Kind::kDataSend: {
      OfiRequestPtr request = std::move(op->request);
      FreeOp(op);
      if (request) request->OpDone(absl::OkStatus());
      return;
    }
    case Op::Kind::kDataRecv: {
      absl::Status status;
      if (len != op->len) {
        status = absl::DataLossError(absl::StrCat(
            "ofi transport (rank ", ctx_.rank, "): a segment from ",
            DescribeRank(op->peer->rank, op->peer->host), " carried ", len, " bytes, expected ",
            op->len));
      }
      OfiRequestPtr request = std::move(op->request);
      FreeOp(op);
      if (request) request->OpDone(status);
      return;
    }
  }
}

}  // namespace braid::ofi
