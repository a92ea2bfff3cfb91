// The ofi transport's entry points (probe, create) and its engine: opening the NICs and the
// control buffers, progress (completions, -FI_EAGAIN retries, liveness sockets), sleeping on
// the provider's wait objects, registration and teardown.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/status.h"
#include "transports/ofi/ofi_internal.h"

namespace braid {

ProbeResult ProbeOfiTransport(const Config& config) {
  ProbeResult result;
  auto fabric = ofi::ChooseFabric(config);
  if (!fabric.ok()) {
    result.reason = std::string(fabric.status().message());
    return result;
  }
  std::string core = ofi::CoreProvider(fabric->provider.c_str());
  bool forced = config.transport == "ofi";
  if (ofi::IsSoftwareProvider(core) && !forced) {
    // Only software providers: libfabric's tcp would run over the same kernel sockets as
    // Braid's own io_uring tcp transport (the supported, default path there, with its own
    // multi-stream striping and crash detection); ofi is then a test vehicle, used when forced.
    result.reason = absl::StrCat("only the software provider ", fabric->provider,
                                 " is present (no efa or other NIC provider); Braid's io_uring "
                                 "tcp transport is used over sockets, set BRAID_TRANSPORT=ofi "
                                 "to force ofi");
    return result;
  }
  result.usable = true;
  result.reason = absl::StrCat("libfabric ", fabric->provider, ", ", fabric->nics.size(), " NIC(s)");
  return result;
}

absl::StatusOr<std::unique_ptr<Transport>> CreateOfiTransport(const TransportContext& context) {
  if (context.nranks > ofi::kMaxRanks) {
    return absl::InvalidArgumentError(
        absl::StrCat("ofi transport: at most ", ofi::kMaxRanks, " ranks"));
  }
  BRAID_ASSIGN_OR_RETURN(ofi::FabricChoice fabric, ofi::ChooseFabric(context.config));
  auto transport = std::make_unique<ofi::OfiTransport>(context, std::move(fabric));
  BRAID_RETURN_IF_ERROR(transport->Init());
  return std::unique_ptr<Transport>(std::move(transport));
}

namespace ofi {
namespace {

// Without a provider wait object (shm) the engine sleeps briefly and polls again: 25 us right
// after traffic, doubling while idle up to 800 us, so latency stays low and idling stays cheap.
constexpr long kFallbackSleepMinNs = 25'000;
constexpr int kFallbackSleepDoublings = 5;

}  // namespace

OfiTransport::OfiTransport(const TransportContext& context, FabricChoice fabric)
    : ctx_(context), fabric_(std::move(fabric)) {}

absl::Status OfiTransport::Init() {
  for (size_t i = 0; i < fabric_.nics.size(); ++i) {
    BRAID_ASSIGN_OR_RETURN(auto rail,
                           Rail::Open(fabric_.nics[i], static_cast<int>(i), ctx_.config.ofi_strict));
    max_segment_ = max_segment_ == 0 ? rail->max_msg : std::min(max_segment_, rail->max_msg);
    rails_.push_back(std::move(rail));
  }
  if (ctx_.config.ofi_max_segment > 0) max_segment_ = std::min(max_segment_, ctx_.config.ofi_max_segment);
  if (max_segment_ < kCtrlBytes) {
    return MakeError(absl::StatusCode::kUnavailable, "ofi transport",
                     absl::StrCat("the provider's largest message (", max_segment_,
                                  " bytes) is below the ", kCtrlBytes, "-byte control message"),
                     "use another provider");
  }
  epoll_fd_.reset(epoll_create1(EPOLL_CLOEXEC));
  kick_fd_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  timer_fd_.reset(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (!epoll_fd_ || !kick_fd_ || !timer_fd_) return SystemError("ofi transport: epoll/eventfd", errno);
  auto watch = [&](int fd, uint64_t what) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = what;
    return epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, fd, &ev) == 0;
  };
  bool watched = watch(kick_fd_.get(), kEventKick) && watch(timer_fd_.get(), kEventTimer);
  for (auto& rail : rails_) {
    if (rail->wait_fd >= 0) watched = watched && watch(rail->wait_fd, kEventCq);
  }
  if (!watched) return SystemError("ofi transport: epoll_ctl", errno);
  // Control buffers live on rail 0 and are registered once, whatever the mr_mode.
  Rail& rail0 = *rails_[0];
  ctrl_recv_slab_.reset(new char[kCtrlBytes * kCtrlRecvs]);
  ctrl_send_slab_.reset(new char[kCtrlBytes * kCtrlSendPool]);
  BRAID_ASSIGN_OR_RETURN(ctrl_recv_mr_, rail0.Register(ctrl_recv_slab_.get(), kCtrlBytes * kCtrlRecvs));
  BRAID_ASSIGN_OR_RETURN(ctrl_send_mr_, rail0.Register(ctrl_send_slab_.get(), kCtrlBytes * kCtrlSendPool));
  for (int i = kCtrlSendPool - 1; i >= 0; --i) free_send_slots_.push_back(i);
  for (int i = 0; i < kCtrlRecvs; ++i) {
    Op* op = NewOp(Op::Kind::kCtrlRecv, nullptr, 0);
    op->buf = ctrl_recv_slab_.get() + i * kCtrlBytes;
    op->len = kCtrlBytes;
    BRAID_RETURN_IF_ERROR(PostCtrlRecv(op));
  }
  BRAID_LOG(kInfo, "ofi transport: provider ", fabric_.provider, ", ", rails_.size(),
            " NIC(s), largest message ", max_segment_, ", wait object ",
            rails_[0]->wait_fd >= 0 ? "fd" : "none (brief sleeps)",
            ctx_.config.ofi_strict ? ", strict EFA rules" : "");
  return absl::OkStatus();
}

OfiTransport::~OfiTransport() {
  std::lock_guard<std::mutex> lock(mu_);
  SendGoodbyes();
  closing_ = true;
  // Endpoints go first (cancelling what is in flight), then the MRs of live operations and
  // control buffers, then the rest of each rail.
  for (auto& rail : rails_) {
    if (rail->ep) fi_close(&rail->ep->fid);
    rail->ep = nullptr;
  }
  for (Op* op : ops_) {
    if (op->mr) fi_close(&op->mr->fid);
    delete op;
  }
  ops_.clear();
  for (auto& region : regions_) {
    auto* mrs = static_cast<RegionMrs*>(region.native);
    for (fid_mr* mr : mrs->mrs) {
      if (mr) fi_close(&mr->fid);
    }
    delete mrs;
  }
  if (ctrl_recv_mr_) fi_close(&ctrl_recv_mr_->fid);
  if (ctrl_send_mr_) fi_close(&ctrl_send_mr_->fid);
  rails_.clear();
}

absl::StatusOr<MemoryRegion*> OfiTransport::register_memory(void* base, size_t length) {
  std::lock_guard<std::mutex> lock(mu_);
  auto mrs = std::make_unique<RegionMrs>();
  for (auto& rail : rails_) {
    auto mr = rail->Register(base, length, /*always=*/true);
    if (!mr.ok()) {
      for (fid_mr* m : mrs->mrs) fi_close(&m->fid);
      return mr.status();
    }
    mrs->mrs.push_back(*mr);
  }
  uint64_t key = fi_mr_key(mrs->mrs[0]);
  regions_.push_back(MemoryRegion{base, length, key, mrs.release()});
  return &regions_.back();
}

absl::Status OfiTransport::deregister_memory(MemoryRegion* region) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = regions_.begin(); it != regions_.end(); ++it) {
    if (&*it != region) continue;
    auto* mrs = static_cast<RegionMrs*>(region->native);
    for (fid_mr* mr : mrs->mrs) fi_close(&mr->fid);
    delete mrs;
    regions_.erase(it);
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError("ofi transport: deregister_memory of an unknown region");
}

absl::Status OfiTransport::progress() {
  std::lock_guard<std::mutex> lock(mu_);
  ProgressLocked();
  return fatal_;
}

void OfiTransport::ProgressLocked() {
  if (kicked_) {
    uint64_t count = 0;
    [[maybe_unused]] ssize_t n = read(kick_fd_.get(), &count, sizeof(count));
    kicked_ = false;
  }
  RetryPending();
  for (auto& rail : rails_) ReadCompletions(*rail);
  RetryPending();
  // The liveness sockets only matter when something changes there, which is rare: look at
  // them after a sleep and otherwise once a millisecond, not on every spin.
  auto now = std::chrono::steady_clock::now();
  if (check_sockets_ || now - last_socket_check_ > std::chrono::milliseconds(1)) {
    check_sockets_ = false;
    last_socket_check_ = now;
    CheckSockets(0);
  }
}

void OfiTransport::CheckSockets(int timeout_ms) {
  epoll_event events[32];
  int n = epoll_wait(epoll_fd_.get(), events, 32, timeout_ms);
  for (int i = 0; i < n; ++i) {
    uint64_t what = events[i].data.u64;
    if (what == kEventTimer) {
      uint64_t expirations = 0;
      [[maybe_unused]] ssize_t got = read(timer_fd_.get(), &expirations, sizeof(expirations));
    } else if (what >= kEventPeer && what - kEventPeer < peers_.size()) {
      OnSocketReadable(*peers_[what - kEventPeer]);
    }
  }
}

void OfiTransport::ReadCompletions(Rail& rail) {
  fi_cq_tagged_entry entries[16];
  for (int round = 0; round < 8; ++round) {
    ssize_t n = fi_cq_read(rail.cq, entries, 16);
    if (n == -FI_EAGAIN) return;
    if (n == -FI_EAVAIL) {
      fi_cq_err_entry err{};  // zeroed: err_data must be null unless we supply a buffer.
      if (fi_cq_readerr(rail.cq, &err, 0) == 1) HandleError(rail, err);
      continue;
    }
    if (n < 0) {
      if (fatal_.ok()) {
        fatal_ = MakeError(absl::StatusCode::kInternal,
                           absl::StrCat("ofi transport (rank ", ctx_.rank, "): NIC ",
                                        rail.info->domain_attr->name),
                           FabricError("fi_cq_read", static_cast<int>(n)));
      }
      return;
    }
    idle_sleeps_ = 0;
    for (ssize_t i = 0; i < n; ++i) {
      if (entries[i].flags & FI_REMOTE_CQ_DATA) {
        OnRemoteWrite(entries[i].data);
        continue;
      }
      HandleCompletion(static_cast<Op*>(entries[i].op_context), entries[i].len);
    }
    if (n < 16) return;
  }
}

void OfiTransport::HandleError(Rail& rail, const fi_cq_err_entry& err) {
  Op* op = static_cast<Op*>(err.op_context);
  if (op == nullptr || ops_.count(op) == 0) return;
  if (err.err == FI_ECANCELED || closing_) {
    FreeOp(op);
    return;
  }
  char text[256] = {0};
  const char* detail = fi_cq_strerror(rail.cq, err.prov_errno, err.err_data, text, sizeof(text));
  std::string what = absl::StrCat(op->send ? "send" : "receive", " of ", op->len,
                                  " bytes failed on NIC ", rail.info->domain_attr->name, ": ",
                                  fi_strerror(err.err), " (provider: ", detail ? detail : text, ")");
  Peer* peer = op->peer;
  if (op->request) {
    op->request->OpDone(peer ? PeerError(absl::StatusCode::kUnavailable, *peer, what,
                                         peer->said_goodbye ? "it shut down (destroyed its "
                                         "communicator) while this was outstanding" : "")
                             : absl::UnavailableError(what));
  }
  op->request.reset();
  bool ctrl_recv = op->kind == Op::Kind::kCtrlRecv;
  if (ctrl_recv) {
    (void)PostCtrlRecv(op);  // keep the control receive posted.
  } else {
    FreeOp(op);
  }
  if (peer != nullptr && peer->said_goodbye) {
    // It shut down cleanly while this operation was outstanding: only the request fails.
    BRAID_LOG(kInfo, "ofi transport: after rank ", peer->rank, "'s goodbye: ", what);
  } else if (peer != nullptr) {
    // A dying peer usually shows up here first: give its liveness socket a moment, so the
    // error says it died rather than quoting the provider.
    CheckSockets(100);
    if (peer->state == Peer::State::kOpen) {
      FailPeer(*peer, PeerError(absl::StatusCode::kUnavailable, *peer, what,
                                "check the peer's log and the NIC (fi_info, FI_LOG_LEVEL=warn)"),
               /*fatal=*/true);
    }
  } else if (fatal_.ok()) {
    fatal_ = MakeError(absl::StatusCode::kUnavailable,
                       absl::StrCat("ofi transport (rank ", ctx_.rank, ")"), what);
  }
}

void OfiTransport::Kick() {
  if (kicked_) return;
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(kick_fd_.get(), &one, sizeof(one));
  kicked_ = true;
}

void OfiTransport::prepare_to_sleep() {
  std::lock_guard<std::mutex> lock(mu_);
  check_sockets_ = true;
  if (!pending_.empty()) return Kick();
  bool fallback = false;
  for (auto& rail : rails_) {
    if (rail->wait_fd < 0) {
      fallback = true;
      continue;
    }
    // fi_trywait: sleeping on the fd is only safe when the provider says nothing is pending.
    fid* cq = &rail->cq->fid;
    if (fi_trywait(rail->fabric, &cq, 1) != FI_SUCCESS) return Kick();
  }
  if (fallback) {
    itimerspec spec{};
    spec.it_value.tv_nsec = kFallbackSleepMinNs << std::min(idle_sleeps_, kFallbackSleepDoublings);
    ++idle_sleeps_;
    timerfd_settime(timer_fd_.get(), 0, &spec, nullptr);
  }
}

Peer* OfiTransport::PeerByRank(int rank) {
  if (rank < 0 || static_cast<size_t>(rank) >= by_rank_.size()) return nullptr;
  return by_rank_[rank];
}

}  // namespace ofi
}  // namespace braid
