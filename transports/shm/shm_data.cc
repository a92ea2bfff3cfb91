// Send and receive paths of the shm transport. Sends queue per peer and are written into the
// outgoing ring as slots free up; a message that fits a slot is one copy in and one copy out.
// A larger one is split across slots, unless the receiver proved it can read our memory: then
// one slot describes the buffer, the receiver copies it straight into the matched receive
// (process_vm_readv) and acknowledges, which completes the send.
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <new>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "transports/shm/shm_internal.h"
#include "transports/transport_errors.h"

namespace braid::shm {

absl::StatusOr<RequestPtr> ShmTransport::Send(Peer& peer, const void* buf, size_t len,
                                              uint64_t tag) {
  std::lock_guard<std::mutex> lock(mu_);
  if (buf == nullptr && len > 0) {
    return absl::InvalidArgumentError("shm transport: isend from a null buffer");
  }
  if (peer.state != Peer::State::kOpen) return PeerUnusable(peer);
  auto request = std::make_shared<ShmRequest>(const_cast<void*>(buf), len, tag);
  SendOp op;
  op.request = request;
  op.buf = static_cast<const char*>(buf);
  op.len = len;
  op.tag = tag;
  bool by_reference =
      len > kSlotPayload &&
      peer.out()->control.consumer_reads_producer.load(std::memory_order_acquire) != 0;
  op.kind = by_reference ? SlotKind::kRndv : SlotKind::kEager;
  peer.sendq.push_back(op);
  PumpSends(peer);
  return RequestPtr(request);
}

absl::StatusOr<RequestPtr> ShmTransport::Recv(Peer& peer, void* buf, size_t len, uint64_t tag) {
  std::lock_guard<std::mutex> lock(mu_);
  if (buf == nullptr && len > 0) {
    return absl::InvalidArgumentError("shm transport: irecv into a null buffer");
  }
  auto request = std::make_shared<ShmRequest>(buf, len, tag);
  auto it = peer.unexpected.find(tag);
  if (it != peer.unexpected.end()) {
    MessagePtr message = std::move(it->second.front());
    it->second.pop_front();
    if (it->second.empty()) peer.unexpected.erase(it);
    Match(peer, message, request);
    if (!peer.sendq.empty()) PumpSends(peer);  // the acknowledgement of a read.
    return RequestPtr(request);
  }
  for (const auto& [arrived, queue] : peer.unexpected) {
    if (TagsConflict(tag, arrived)) {  // the peer is in a different collective: never wait.
      absl::Status conflict =
          TagConflictError("shm", ctx_.rank, DescribeRank(peer.rank, peer.host), tag, arrived);
      if (abandoned_.ok()) abandoned_ = conflict;  // our farewell tells the others why.
      request->Finish(std::move(conflict), 0);
      return RequestPtr(request);
    }
  }
  if (peer.state != Peer::State::kOpen) return PeerUnusable(peer);
  peer.posted.push_back(request);
  return RequestPtr(request);
}

void ShmTransport::Wake(Peer& peer) {
  if (!peer.socket) return;
  // A full socket buffer means the peer has wake bytes waiting already: nothing is lost.
  [[maybe_unused]] ssize_t n =
      ::send(peer.socket.get(), &kWakeByte, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
}

void ShmTransport::PumpSends(Peer& peer) {
  if (peer.state != Peer::State::kOpen || peer.sendq.empty()) return;
  RingControl& control = peer.out()->control;
  uint64_t tail = control.tail.load(std::memory_order_relaxed);
  uint64_t head = control.head.load(std::memory_order_acquire);
  bool published = false;
  while (!peer.sendq.empty()) {
    if (tail - head >= kSlots) {
      head = control.head.load(std::memory_order_acquire);
      if (tail - head >= kSlots) break;
    }
    SendOp& op = peer.sendq.front();
    SlotHeader* slot = peer.out()->slot(tail);
    slot->kind = op.kind;
    slot->tag = op.tag;
    slot->total_len = op.len;
    bool finished = true;
    if (op.kind == SlotKind::kEager) {
      uint64_t n = std::min<uint64_t>(op.len - op.done, kSlotPayload);
      slot->offset = op.done;
      slot->seg_len = n;
      if (n > 0) std::memcpy(Ring::payload(slot), op.buf + op.done, n);
      op.done += n;
      finished = op.done == op.len;
      if (finished) op.request->Finish(absl::OkStatus(), op.len);  // the buffer is free again.
    } else if (op.kind == SlotKind::kRndv) {
      uint64_t id = peer.next_send_id++;
      slot->send_id = id;
      slot->address = reinterpret_cast<uint64_t>(op.buf);
      peer.awaiting_ack[id] = op.request;
    } else {
      slot->send_id = op.send_id;
    }
    if (finished) peer.sendq.pop_front();
    control.tail.store(++tail, std::memory_order_release);
    published = true;
  }
  if (published) {
    // Pairs with the fence in prepare_to_sleep: a consumer going to sleep either sees the new
    // tail or has set its flag, which we then see and answer with a wake byte.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    auto& sleeping = control.consumer_sleeping;
    if (sleeping.load(std::memory_order_relaxed) != 0 &&
        sleeping.exchange(0, std::memory_order_relaxed) != 0) {
      Wake(peer);
    }
  }
}

bool ShmTransport::PollRing(Peer& peer) {
  RingControl& control = peer.in()->control;
  uint64_t head = control.head.load(std::memory_order_relaxed);
  uint64_t tail = control.tail.load(std::memory_order_acquire);
  if (tail == head) return false;
  uint64_t handled = 0;
  while (head != tail && handled < kSlots && peer.state != Peer::State::kFailed) {
    HandleSlot(peer, peer.in()->slot(head));
    control.head.store(++head, std::memory_order_release);
    ++handled;
  }
  // Slots were freed: a producer asleep on a full ring needs a wake byte (same pairing).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  auto& waiting = control.producer_waiting;
  if (waiting.load(std::memory_order_relaxed) != 0 &&
      waiting.exchange(0, std::memory_order_relaxed) != 0) {
    Wake(peer);
  }
  return true;
}

void ShmTransport::HandleSlot(Peer& peer, SlotHeader* slot) {
  auto refuse = [&](absl::string_view why) {
    FailPeer(peer,
             PeerError(absl::StatusCode::kDataLoss, peer, absl::StrCat("refused a ring slot: ", why),
                       "mixed Braid versions, memory corruption, or a foreign process on the "
                       "shared memory; restart the job"),
             /*fatal=*/true);
  };
  switch (slot->kind) {
    case SlotKind::kEager: {
      if (slot->offset == 0 && !peer.cur && slot->seg_len == slot->total_len &&
          slot->seg_len <= kSlotPayload) {
        // The common small case: the whole message in one slot and its receive posted. Copy
        // straight into it, with no message bookkeeping.
        ShmRequestPtr request = peer.TakePosted(slot->tag);
        if (request && request->len != slot->total_len) {
          peer.posted.insert(peer.posted.begin(), std::move(request));  // the slow path reports it.
        } else if (request) {
          if (slot->seg_len > 0) std::memcpy(request->buf, Ring::payload(slot), slot->seg_len);
          request->Finish(absl::OkStatus(), request->len);
          return;
        }
      }
      if (slot->offset == 0 && !peer.cur) {
        auto message = std::make_shared<Message>();
        message->tag = slot->tag;
        message->total_len = slot->total_len;
        peer.cur = message;
        StartMessage(peer, message);
        if (peer.state == Peer::State::kFailed) return;
      } else if (!peer.cur || peer.cur->tag != slot->tag || peer.cur->received != slot->offset ||
                 peer.cur->total_len != slot->total_len) {
        return refuse("a segment that does not continue the current message");
      }
      Message& message = *peer.cur;
      if (slot->seg_len > message.total_len - message.received || slot->seg_len > kSlotPayload) {
        return refuse("a segment longer than its message");
      }
      if (message.dest != nullptr && slot->seg_len > 0) {
        std::memcpy(message.dest + message.received, Ring::payload(slot), slot->seg_len);
      }
      message.received += slot->seg_len;
      if (!message.complete()) return;
      MessagePtr done = std::move(peer.cur);
      ShmRequestPtr request = std::move(done->request);
      if (!request) return;  // unexpected (waits for its irecv) or discarded.
      if (done->heap && done->total_len > 0) {
        std::memcpy(request->buf, done->heap.get(), done->total_len);
      }
      done->heap.reset();
      request->Finish(absl::OkStatus(), request->len);
      return;
    }
    case SlotKind::kRndv: {
      if (peer.cur) return refuse("a message by reference inside another message");
      auto message = std::make_shared<Message>();
      message->tag = slot->tag;
      message->total_len = slot->total_len;
      message->by_reference = true;
      message->address = slot->address;
      message->send_id = slot->send_id;
      StartMessage(peer, message);
      return;
    }
    case SlotKind::kAck: {
      auto it = peer.awaiting_ack.find(slot->send_id);
      if (it == peer.awaiting_ack.end()) return refuse("an acknowledgement of an unknown send");
      ShmRequestPtr request = std::move(it->second);
      peer.awaiting_ack.erase(it);
      request->Finish(absl::OkStatus(), request->len);
      return;
    }
  }
  refuse(absl::StrCat("unknown slot kind ", static_cast<uint32_t>(slot->kind)));
}

void ShmTransport::StartMessage(Peer& peer, const MessagePtr& message) {
  if (ShmRequestPtr request = peer.TakePosted(message->tag)) {
    Match(peer, message, request);
    return;
  }
  // A receive posted for the same collective under another signature will never match: fail it
  // now rather than at the timeout (transport.h, TagsConflict).
  for (auto it = peer.posted.begin(); it != peer.posted.end();) {
    if (!TagsConflict((*it)->tag, message->tag)) {
      ++it;
      continue;
    }
    absl::Status conflict = TagConflictError("shm", ctx_.rank, DescribeRank(peer.rank, peer.host),
                                             (*it)->tag, message->tag);
    if (abandoned_.ok()) abandoned_ = conflict;  // our farewell tells the others why.
    (*it)->Finish(std::move(conflict), 0);
    it = peer.posted.erase(it);
  }
  if (!message->by_reference && message->total_len > 0) {
    message->heap.reset(new (std::nothrow) char[message->total_len]);
    if (!message->heap) {
      FailPeer(peer,
               PeerError(absl::StatusCode::kResourceExhausted, peer,
                         absl::StrCat("cannot buffer an unexpected message of ",
                                      message->total_len, " bytes (tag ", message->tag, ")"),
                         "post receives before the matching sends arrive, or add memory"),
               /*fatal=*/true, /*blame_peer=*/false);  // our memory, not its failure.
      return;
    }
    message->dest = message->heap.get();
  }
  peer.unexpected[message->tag].push_back(message);
}

void ShmTransport::Match(Peer& peer, const MessagePtr& message, const ShmRequestPtr& request) {
  if (message->total_len != request->len) {
    request->Finish(SizeMismatchError("shm", ctx_.rank, peer.rank, peer.host, request->tag,
                                      message->total_len, request->len),
                    0);
    if (message->by_reference) {
      Acknowledge(peer, message->send_id);  // nobody will read it: release the sender.
    } else if (!message->heap) {
      message->dest = nullptr;  // the rest of its bytes arrive and are dropped.
    }
    return;
  }
  if (message->by_reference) {
    message->request = request;
    ReadByReference(peer, message);
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

void ShmTransport::ReadByReference(Peer& peer, const MessagePtr& message) {
  ShmRequestPtr request = std::move(message->request);
  uint64_t done = 0;
  while (done < message->total_len) {
    iovec local{request->buf + done, message->total_len - done};
    iovec remote{reinterpret_cast<void*>(message->address + done), message->total_len - done};
    ssize_t n = process_vm_readv(peer.pid, &local, 1, &remote, 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : EFAULT;
      // No such process: the sender died (its socket's end may not have been read yet). Either
      // way the pair is broken, and the error is fatal here, so our goodbyes to the other
      // ranks name this peer rather than letting them blame us for leaving.
      absl::Status failed =
          err == ESRCH ? PeerDied(peer)
                       : PeerError(absl::StatusCode::kUnavailable, peer,
                                   absl::StrCat("reading its send buffer of ", message->total_len,
                                                " bytes (tag ", message->tag,
                                                ") failed: ", std::strerror(err)),
                                   "the sender probably exited or freed the buffer before its "
                                   "send completed; set BRAID_SHM_CMA=0 if this persists");
      request->Finish(failed, 0);
      FailPeer(peer, std::move(failed), /*fatal=*/true);
      return;  // no acknowledgement: the sender is gone or broken.
    }
    done += static_cast<uint64_t>(n);
  }
  message->received = done;
  Acknowledge(peer, message->send_id);
  request->Finish(absl::OkStatus(), request->len);
}

void ShmTransport::Acknowledge(Peer& peer, uint64_t send_id) {
  SendOp ack;
  ack.kind = SlotKind::kAck;
  ack.send_id = send_id;
  // Ahead of queued sends (the sender is waiting on it), but never inside a message whose
  // segments are already on their way.
  auto at = peer.sendq.begin();
  if (at != peer.sendq.end() && at->kind == SlotKind::kEager && at->done > 0) ++at;
  peer.sendq.insert(at, ack);
}

}  // namespace braid::shm
