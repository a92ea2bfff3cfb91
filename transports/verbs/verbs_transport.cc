// Verbs transport setup: device and port, protection domain, completion queue and channel,
// staging slots, queue pairs (RESET -> INIT -> RTR -> RTS), the liveness sockets, progress and
// teardown. See verbs_internal.h for the protocol.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/siphash.h"
#include "core/status.h"
#include "transports/tcp/socket_util.h"
#include "transports/verbs/verbs_internal.h"

namespace braid {
namespace verbs {
namespace {

constexpr uint32_t kBlobMagic = 0x42525642;   // "BRVB"
constexpr uint16_t kBlobVersion = 1;
constexpr uint32_t kHelloMagic = 0x4252564c;  // "BRVL": liveness socket hello.
constexpr uint32_t kGoodbyeMagic = 0x42525647;
constexpr uint64_t kEvChannel = 1ull << 40, kEvAsync = 2ull << 40, kEvKick = 3ull << 40;

struct BlobHeader {
  uint32_t magic;
  uint16_t version;
  uint16_t nqps;
  uint32_t rank;
  uint32_t nranks;
  uint64_t comm_id;
  uint32_t psn;
  uint16_t lid;
  uint8_t ethernet;
  uint8_t mtu;
  uint8_t gid[16];
  uint16_t socket_port;
  char socket_ip[46];
};

struct Hello {
  uint32_t magic;
  uint32_t rank;
  uint64_t comm_id;
  uint64_t mac;
};

struct Goodbye {
  uint32_t magic;
  int32_t blame;  // rank whose failure made us leave, kGoodbyeMismatch, or -1.
};
static_assert(sizeof(Goodbye) == kLivenessRecordBytes);

uint64_t HelloMac(std::span<const std::byte> secret, uint32_t rank, uint64_t comm_id,
                  uint32_t direction) {
  std::array<std::byte, 16> key;
  SipKeyFromSecret(secret, key);
  std::byte message[16];
  std::memcpy(message, &rank, 4);
  std::memcpy(message + 4, &direction, 4);
  std::memcpy(message + 8, &comm_id, 8);
  return SipHash24(key, message);
}

bool WriteFully(int fd, const void* data, size_t size, Deadline deadline) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::send(fd, p, size, MSG_NOSIGNAL);
    if (n > 0) {
      p += n;
      size -= static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
    if (deadline.expired()) return false;
    pollfd pfd{fd, POLLOUT, 0};
    poll(&pfd, 1, deadline.remaining_ms(100));
  }
  return true;
}

bool ReadFully(int fd, void* data, size_t size, Deadline deadline) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    ssize_t n = ::recv(fd, p, size, 0);
    if (n > 0) {
      p += n;
      size -= static_cast<size_t>(n);
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) return false;
    if (deadline.expired()) return false;
    pollfd pfd{fd, POLLIN, 0};
    poll(&pfd, 1, deadline.remaining_ms(100));
  }
  return true;
}

void ForkInitOnce() {
  // Registered memory and fork(): with ibv_fork_init (or a kernel that makes it unneeded) a
  // child does not corrupt the parent's pinned pages. Must run before the first registration.
  static const int rc = ibv_fork_init();
  if (rc != 0) BRAID_LOG(kInfo, "verbs: ibv_fork_init failed (", std::strerror(rc), "); a fork() "
                                "after registering memory may corrupt transfers");
}

}  // namespace

VerbsTransport::VerbsTransport(const TransportContext& context) : ctx_(context) {}

absl::Status VerbsTransport::Verbs(absl::string_view what, int err,
                                   absl::string_view remedy) const {
  return MakeError(absl::StatusCode::kInternal,
                   absl::StrCat("verbs transport (rank ", ctx_.rank, ", ", port_.device, ":",
                                port_.port, "): ", what),
                   err == 0 ? std::string("failed") : std::string(std::strerror(err)), remedy);
}

absl::Status VerbsTransport::Init() {
  ForkInitOnce();
  nqps_ = ctx_.config.ib_qps_per_connection;
  BRAID_ASSIGN_OR_RETURN(port_, ChoosePort(ctx_.config, ctx_.local_address, &device_));
  BRAID_LOG(kInfo, "verbs: using ", port_.device, ":", port_.port, " (",
            port_.ethernet ? "RoCE" : "InfiniBand", ", GID index ", port_.gid_index,
            ", active MTU ", 128 << port_.attr.active_mtu, ", ", nqps_, " QP(s) per peer)");
  ibv_device_attr dev{};
  if (ibv_query_device(device_, &dev) != 0) return Verbs("ibv_query_device", errno);
  if (port_.attr.max_msg_sz > 0) max_write_ = std::min<size_t>(kWriteChunk, port_.attr.max_msg_sz);
  pd_ = ibv_alloc_pd(device_);
  if (pd_ == nullptr) return Verbs("ibv_alloc_pd", errno);
  channel_ = ibv_create_comp_channel(device_);
  if (channel_ == nullptr) return Verbs("ibv_create_comp_channel", errno);
  fcntl(channel_->fd, F_SETFL, fcntl(channel_->fd, F_GETFL) | O_NONBLOCK);
  fcntl(device_->async_fd, F_SETFL, fcntl(device_->async_fd, F_GETFL) | O_NONBLOCK);
  const int npeers = std::max(ctx_.nranks - 1, 0);
  cq_size_ = std::min(npeers * (nqps_ * kSendQueueDepth + kRecvSlots) + 64, dev.max_cqe);
  cq_ = ibv_create_cq(device_, cq_size_, nullptr, channel_, 0);
  if (cq_ == nullptr) return Verbs("ibv_create_cq", errno);

  const size_t pinned = kSlotBytes * (kSendSlots + npeers * kRecvSlots);
  if (MemlockTooLow(pinned)) {
    BRAID_LOG(kWarn, "verbs: RLIMIT_MEMLOCK is ", MemlockLimitText(), ", below the ",
              pinned >> 10, " KiB of staging buffers; run `ulimit -l unlimited`");
  }
  auto memlock_remedy = [] {
    return absl::StrCat("RLIMIT_MEMLOCK is ", MemlockLimitText(), ": run `ulimit -l unlimited` "
                        "before starting (memlock in /etc/security/limits.conf, LimitMEMLOCK= "
                        "for systemd, --ulimit memlock=-1 for docker)");
  };
  send_pool_ = std::make_unique<StagingPool>(kSlotBytes, kSendSlots);
  recv_pool_ = std::make_unique<StagingPool>(kSlotBytes, std::max(npeers, 1) * kRecvSlots);
  send_slot_request_.resize(kSendSlots);
  send_mr_ = ibv_reg_mr(pd_, send_pool_->base(), send_pool_->bytes(), IBV_ACCESS_LOCAL_WRITE);
  if (send_mr_ == nullptr) return Verbs("registering the send staging slots", errno, memlock_remedy());
  recv_mr_ = ibv_reg_mr(pd_, recv_pool_->base(), recv_pool_->bytes(), IBV_ACCESS_LOCAL_WRITE);
  if (recv_mr_ == nullptr) return Verbs("registering the receive slots", errno, memlock_remedy());
  cache_ = std::make_unique<RegistrationCache>(
      ctx_.config.ib_reg_cache_bytes,
      [this, memlock_remedy](void* base, size_t length) -> absl::StatusOr<void*> {
        ibv_mr* mr = ibv_reg_mr(pd_, base, length,
                                IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
                                    IBV_ACCESS_REMOTE_READ);
        if (mr != nullptr) return mr;
        int err = errno;
        absl::Status st = Verbs(absl::StrCat("registering ", length, " bytes at ", absl::Hex(reinterpret_cast<uintptr_t>(base))), err,
                                err == ENOMEM || err == EPERM || err == EAGAIN
                                    ? memlock_remedy()
                                    : std::string("check that the buffer is valid memory"));
        return absl::Status(err == ENOMEM || err == EAGAIN ? absl::StatusCode::kResourceExhausted
                                                           : st.code(),
                            st.message());
      },
      [](void* handle) { ibv_dereg_mr(static_cast<ibv_mr*>(handle)); });

  epoll_ = UniqueFd(epoll_create1(EPOLL_CLOEXEC));
  kick_ = UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!epoll_ || !kick_) return SystemError("creating the verbs transport's epoll/eventfd", errno);
  auto add = [&](int fd, uint64_t data) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = data;
    return epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev);
  };
  if (add(channel_->fd, kEvChannel) != 0 || add(device_->async_fd, kEvAsync) != 0 ||
      add(kick_.get(), kEvKick) != 0) {
    return SystemError("epoll_ctl for the verbs transport", errno);
  }
  std::random_device random;
  psn_ = random() & 0xffffff;
  return absl::OkStatus();
}

absl::Status VerbsTransport::CreateQps(Peer& peer) {
  for (int q = 0; q < nqps_; ++q) {
    ibv_qp_init_attr init{};
    init.send_cq = cq_;
    init.recv_cq = cq_;
    init.qp_type = IBV_QPT_RC;
    init.cap.max_send_wr = kSendQueueDepth;
    init.cap.max_recv_wr = q == 0 ? kRecvSlots : 1;
    init.cap.max_send_sge = 1;
    init.cap.max_recv_sge = 1;
    init.cap.max_inline_data = kInlineWanted;
    ibv_qp* qp = ibv_create_qp(pd_, &init);
    if (qp == nullptr) {  // the device may not inline this much: ask for none.
      init.cap.max_inline_data = 0;
      qp = ibv_create_qp(pd_, &init);
    }
    if (qp == nullptr) {
      return Verbs(absl::StrCat("ibv_create_qp for rank ", peer.rank), errno,
                   "too many queue pairs? lower BRAID_IB_QPS_PER_CONNECTION");
    }
    max_inline_ = q == 0 && peer.index == 0 ? init.cap.max_inline_data
                                            : std::min(max_inline_, init.cap.max_inline_data);
    peer.qps.emplace_back();
    peer.qps.back().qp = qp;
    peer_of_qpn_[qp->qp_num] = &peer;
    ibv_qp_attr attr{};
    attr.qp_state = IBV_QPS_INIT;
    attr.pkey_index = 0;
    attr.port_num = static_cast<uint8_t>(port_.port);
    attr.qp_access_flags =
        IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
    int rc = ibv_modify_qp(qp, &attr,
                           IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
    if (rc != 0) return Verbs("moving a queue pair to INIT", rc);
  }
  // Receives may be posted in INIT: they are in place before the peer can send.
  for (int slot = 0; slot < kRecvSlots; ++slot) BRAID_RETURN_IF_ERROR(PostRecvSlot(peer, slot));
  return absl::OkStatus();
}

absl::Status VerbsTransport::PostRecvSlot(Peer& peer, int slot) {
  int global = peer.index * kRecvSlots + slot;
  ibv_sge sge{reinterpret_cast<uintptr_t>(recv_pool_->slot(global)),
              static_cast<uint32_t>(kSlotBytes), recv_mr_->lkey};
  ibv_recv_wr wr{};
  wr.wr_id = MakeWrId(WrKind::kRecv, peer.index, static_cast<uint64_t>(slot), 0);
  wr.sg_list = &sge;
  wr.num_sge = 1;
  ibv_recv_wr* bad = nullptr;
  int rc = ibv_post_recv(peer.qps[0].qp, &wr, &bad);
  if (rc != 0) return Verbs("ibv_post_recv", rc);
  return absl::OkStatus();
}

absl::StatusOr<Blob> VerbsTransport::listen() {
  std::lock_guard lock(mu_);
  peer_of_rank_.assign(ctx_.nranks, -1);
  for (int rank = 0; rank < ctx_.nranks; ++rank) {
    if (rank == ctx_.rank) continue;
    auto peer = std::make_unique<Peer>();
    peer->rank = rank;
    peer->index = static_cast<int>(peers_.size());
    peer->host = static_cast<size_t>(rank) < ctx_.hosts.size() ? ctx_.hosts[rank] : "";
    peer_of_rank_[rank] = peer->index;
    peers_.push_back(std::move(peer));
    BRAID_RETURN_IF_ERROR(CreateQps(*peers_.back()));
  }
  // The liveness socket listens on the data-path address.
  listen_ip_ = ctx_.local_address;
  if (listen_ip_.empty()) {
    BRAID_ASSIGN_OR_RETURN(listen_ip_, tcp::SelectListenAddress(ctx_.config.socket_ifname));
  }
  BRAID_ASSIGN_OR_RETURN(tcp::SocketAddress address, tcp::MakeSocketAddress(listen_ip_, 0));
  BRAID_ASSIGN_OR_RETURN(listen_fd_, tcp::NewTcpSocket(address.family()));
  if (::bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&address.storage), address.length) != 0 ||
      ::listen(listen_fd_.get(), 256) != 0) {
    return SystemError(absl::StrCat("verbs transport: listening on ", listen_ip_), errno);
  }
  address.length = sizeof(address.storage);
  getsockname(listen_fd_.get(), reinterpret_cast<sockaddr*>(&address.storage), &address.length);
  listen_port_ = tcp::AddressPort(address);

  BlobHeader header{};
  header.magic = kBlobMagic;
  header.version = kBlobVersion;
  header.nqps = static_cast<uint16_t>(nqps_);
  header.rank = static_cast<uint32_t>(ctx_.rank);
  header.nranks = static_cast<uint32_t>(ctx_.nranks);
  header.comm_id = ctx_.comm_id;
  header.psn = psn_;
  header.lid = port_.attr.lid;
  header.ethernet = port_.ethernet ? 1 : 0;
  header.mtu = static_cast<uint8_t>(port_.attr.active_mtu);
  std::memcpy(header.gid, port_.gid.raw, 16);
  header.socket_port = listen_port_;
  std::snprintf(header.socket_ip, sizeof(header.socket_ip), "%s", listen_ip_.c_str());
  // Then, for every rank, the QP numbers this rank created for it.
  std::vector<uint32_t> qpns(static_cast<size_t>(ctx_.nranks) * nqps_, 0);
  for (const auto& peer : peers_) {
    for (int q = 0; q < nqps_; ++q) qpns[peer->rank * nqps_ + q] = peer->qps[q].qp->qp_num;
  }
  Blob blob(sizeof(header) + qpns.size() * 4);
  std::memcpy(blob.data(), &header, sizeof(header));
  std::memcpy(blob.data() + sizeof(header), qpns.data(), qpns.size() * 4);
  return blob;
}

absl::Status VerbsTransport::ConnectQp(Peer& peer, int q, uint32_t remote_qpn,
                                       uint32_t remote_psn, const ibv_gid& remote_gid,
                                       uint16_t remote_lid, int remote_mtu) {
  ibv_qp_attr attr{};
  attr.qp_state = IBV_QPS_RTR;
  attr.path_mtu = static_cast<ibv_mtu>(std::min<int>(port_.attr.active_mtu, remote_mtu));
  attr.dest_qp_num = remote_qpn;
  attr.rq_psn = remote_psn;
  attr.max_dest_rd_atomic = 1;
  attr.min_rnr_timer = 12;
  attr.ah_attr.port_num = static_cast<uint8_t>(port_.port);
  attr.ah_attr.sl = static_cast<uint8_t>(ctx_.config.ib_sl);
  if (port_.ethernet) {
    // RoCE has no LIDs: every packet carries a GRH addressed by GID.
    attr.ah_attr.is_global = 1;
    attr.ah_attr.grh.dgid = remote_gid;
    attr.ah_attr.grh.sgid_index = static_cast<uint8_t>(port_.gid_index);
    attr.ah_attr.grh.hop_limit = 255;
    attr.ah_attr.grh.traffic_class = static_cast<uint8_t>(ctx_.config.ib_tc);
  } else {
    attr.ah_attr.dlid = remote_lid;
  }
  int rc = ibv_modify_qp(peer.qps[q].qp, &attr,
                         IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
                             IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER);
  if (rc != 0) {
    return Verbs(absl::StrCat("moving the queue pair to ", DescribeRank(peer.rank, peer.host),
                              " to RTR"),
                 rc,
                 port_.ethernet ? "check the GID (BRAID_IB_GID_INDEX) and that both hosts' RoCE "
                                  "interfaces have addresses that route to each other"
                                : "check the subnet manager (LIDs) and BRAID_IB_SL");
  }
  attr = ibv_qp_attr{};
  attr.qp_state = IBV_QPS_RTS;
  attr.timeout = static_cast<uint8_t>(ctx_.config.ib_timeout);
  attr.retry_cnt = static_cast<uint8_t>(ctx_.config.ib_retry_cnt);
  attr.rnr_retry = 7;  // infinite: credits make receiver-not-ready impossible anyway.
  attr.sq_psn = psn_;
  attr.max_rd_atomic = 1;
  rc = ibv_modify_qp(peer.qps[q].qp, &attr,
                     IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
                         IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC);
  if (rc != 0) return Verbs("moving a queue pair to RTS", rc);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::unique_ptr<Connection>>> VerbsTransport::connect(
    std::span<const int> peers, std::span<const Blob> blobs, Deadline deadline) {
  std::lock_guard lock(mu_);
  for (int rank : peers) {
    Peer& peer = *peers_.at(peer_of_rank_.at(rank));
    const Blob& blob = blobs[rank];
    BlobHeader header{};
    auto refuse = [&](absl::string_view why) {
      return MakeError(absl::StatusCode::kFailedPrecondition,
                       absl::StrCat("verbs transport (rank ", ctx_.rank, "): address of ",
                                    DescribeRank(rank, peer.host)),
                       why, "run the same Braid version and BRAID_IB_* settings on every rank");
    };
    if (blob.size() < sizeof(header)) return refuse("the address blob is too short");
    std::memcpy(&header, blob.data(), sizeof(header));
    if (header.magic != kBlobMagic || header.version != kBlobVersion) {
      return refuse("not a verbs address of this version");
    }
    if (header.comm_id != ctx_.comm_id || header.rank != static_cast<uint32_t>(rank) ||
        header.nranks != static_cast<uint32_t>(ctx_.nranks)) {
      return refuse("it belongs to another communicator or rank");
    }
    if (header.nqps != nqps_) {
      return refuse(absl::StrCat("it uses ", header.nqps, " QPs per connection, this rank ",
                                 nqps_, " (BRAID_IB_QPS_PER_CONNECTION differs)"));
    }
    if ((header.ethernet != 0) != port_.ethernet) {
      return refuse("its port's link layer differs (InfiniBand vs Ethernet/RoCE); select "
                    "ports of one fabric with BRAID_IB_HCA");
    }
    if (blob.size() < sizeof(header) + static_cast<size_t>(ctx_.nranks) * nqps_ * 4) {
      return refuse("the address blob is truncated");
    }
    ibv_gid gid{};
    std::memcpy(gid.raw, header.gid, 16);
    for (int q = 0; q < nqps_; ++q) {
      uint32_t qpn = 0;
      std::memcpy(&qpn, blob.data() + sizeof(header) + (ctx_.rank * nqps_ + q) * 4, 4);
      BRAID_RETURN_IF_ERROR(ConnectQp(peer, q, qpn, header.psn, gid, header.lid, header.mtu));
    }
  }
  BRAID_RETURN_IF_ERROR(ConnectSockets(peers, blobs, deadline));
  std::vector<std::unique_ptr<Connection>> connections;
  for (int rank : peers) {
    Peer* peer = peers_[peer_of_rank_[rank]].get();
    peer->connected = true;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = static_cast<uint64_t>(peer->index);
    epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, peer->socket.get(), &ev);
    connections.push_back(std::make_unique<VerbsConnection>(this, peer));
  }
  return connections;
}

// Lower ranks dial higher ones and send a hello; the higher rank answers after checking it.
// Both hellos are sent after the sender's queue pairs reached RTS, so when connect() returns
// every peer can receive.
absl::Status VerbsTransport::ConnectSockets(std::span<const int> peers,
                                            std::span<const Blob> blobs, Deadline deadline) {
  auto hello = [&](uint32_t direction) {
    Hello h{kHelloMagic, static_cast<uint32_t>(ctx_.rank), ctx_.comm_id, 0};
    h.mac = HelloMac(ctx_.secret, h.rank, h.comm_id, direction);
    return h;
  };
  auto timeout = [&](const Peer& peer, absl::string_view what) {
    return MakeError(absl::StatusCode::kDeadlineExceeded,
                     absl::StrCat("verbs transport (rank ", ctx_.rank, "): connecting to ",
                                  DescribeRank(peer.rank, peer.host)),
                     what, "check that every rank started and that the hosts reach each other "
                           "over TCP on the data-path interface (BRAID_SOCKET_IFNAME)");
  };
  std::vector<Peer*> higher, lower;
  for (int rank : peers) (rank > ctx_.rank ? higher : lower).push_back(peers_[peer_of_rank_[rank]].get());
  for (Peer* peer : higher) {
    BlobHeader header{};
    std::memcpy(&header, blobs[peer->rank].data(), sizeof(header));
    header.socket_ip[sizeof(header.socket_ip) - 1] = 0;
    BRAID_ASSIGN_OR_RETURN(tcp::SocketAddress address,
                           tcp::MakeSocketAddress(header.socket_ip, header.socket_port));
    while (true) {
      BRAID_ASSIGN_OR_RETURN(UniqueFd fd, tcp::NewTcpSocket(address.family()));
      int rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&address.storage), address.length);
      if (rc != 0 && errno == EINPROGRESS) {
        pollfd pfd{fd.get(), POLLOUT, 0};
        while (poll(&pfd, 1, deadline.remaining_ms(100)) == 0 && !deadline.expired()) {}
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        rc = (pfd.revents & POLLOUT) && err == 0 ? 0 : -1;
        errno = err != 0 ? err : ETIMEDOUT;
      }
      if (rc == 0) {
        Hello h = hello(0);
        if (!WriteFully(fd.get(), &h, sizeof(h), deadline)) {
          return timeout(*peer, "could not send the hello");
        }
        peer->socket = std::move(fd);
        break;
      }
      if (deadline.expired()) {
        return timeout(*peer, absl::StrCat("no TCP connection to ", tcp::AddressToString(address),
                                           ": ", std::strerror(errno)));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  size_t accepted = 0;
  while (accepted < lower.size()) {
    pollfd pfd{listen_fd_.get(), POLLIN, 0};
    if (deadline.expired()) {
      for (Peer* peer : lower) {
        if (!peer->socket) return timeout(*peer, "it never connected its liveness socket");
      }
    }
    if (poll(&pfd, 1, deadline.remaining_ms(100)) <= 0) continue;
    UniqueFd fd(accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) continue;
    Hello h{};
    // A stranger gets a short time to say hello, so it cannot stall the real ranks.
    Deadline hello_deadline = Deadline::After(std::chrono::seconds(5));
    if (!ReadFully(fd.get(), &h, sizeof(h), hello_deadline) || h.magic != kHelloMagic ||
        h.comm_id != ctx_.comm_id || h.rank >= static_cast<uint32_t>(ctx_.nranks) ||
        h.mac != HelloMac(ctx_.secret, h.rank, h.comm_id, 0)) {
      BRAID_LOG(kWarn, "verbs: refused a liveness connection that did not prove the "
                       "communicator's secret");
      continue;
    }
    int index = peer_of_rank_[h.rank];
    Peer* peer = index >= 0 ? peers_[index].get() : nullptr;
    if (peer == nullptr || peer->socket ||
        std::find(lower.begin(), lower.end(), peer) == lower.end()) {
      continue;
    }
    Hello answer = hello(1);
    if (!WriteFully(fd.get(), &answer, sizeof(answer), deadline)) continue;
    peer->socket = std::move(fd);
    ++accepted;
  }
  for (Peer* peer : higher) {
    Hello h{};
    if (!ReadFully(peer->socket.get(), &h, sizeof(h), deadline) || h.magic != kHelloMagic ||
        h.rank != static_cast<uint32_t>(peer->rank) ||
        h.mac != HelloMac(ctx_.secret, h.rank, h.comm_id, 1)) {
      return timeout(*peer, "it did not answer the hello with the communicator's secret");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<MemoryRegion*> VerbsTransport::register_memory(void* base, size_t length) {
  std::lock_guard lock(mu_);
  BRAID_ASSIGN_OR_RETURN(RegistrationCache::Entry * entry, cache_->AddPinned(base, length));
  auto* mr = static_cast<ibv_mr*>(entry->handle);
  regions_.push_back(MemoryRegion{base, length, mr->rkey, entry});
  return &regions_.back();
}

absl::Status VerbsTransport::deregister_memory(MemoryRegion* region) {
  std::lock_guard lock(mu_);
  for (auto it = regions_.begin(); it != regions_.end(); ++it) {
    if (&*it != region) continue;
    cache_->Remove(static_cast<RegistrationCache::Entry*>(region->native));
    regions_.erase(it);
    return absl::OkStatus();
  }
  return MakeError(absl::StatusCode::kInvalidArgument, "verbs transport: deregistering memory",
                   "the region was not registered with this transport (or was deregistered)");
}

void VerbsTransport::PollCq() {
  ibv_wc wc[32];
  while (true) {
    int n = ibv_poll_cq(cq_, 32, wc);
    for (int i = 0; i < n; ++i) OnCompletion(wc[i]);
    if (n < 32) break;
  }
}

absl::Status VerbsTransport::progress() {
  std::lock_guard lock(mu_);
  if (!fatal_.ok()) return fatal_;
  PollCq();
  PumpAll();
  // Sockets, the completion channel and async events only change rarely: look at them at most
  // once a millisecond while spinning (and always before sleeping). Reading the clock is not
  // free either (in a VM it may trap), so a spinning caller reads it every 32nd call.
  if ((++progress_calls_ & 31) != 0 && next_event_check_ != decltype(next_event_check_){}) {
    return fatal_;
  }
  auto now = std::chrono::steady_clock::now();
  if (now >= next_event_check_) {
    next_event_check_ = now + std::chrono::milliseconds(1);
    CheckEvents();
  }
  return fatal_;
}

void VerbsTransport::CheckEvents() {
  epoll_event events[16];
  int n = epoll_wait(epoll_.get(), events, 16, 0);
  // Device events first: a port that went down explains the peers' sockets that end with it,
  // so it must be the error this rank reports.
  std::stable_partition(events, events + std::max(n, 0),
                        [](const epoll_event& e) { return e.data.u64 == kEvAsync; });
  bool polled = false;
  for (int i = 0; i < n; ++i) {
    uint64_t data = events[i].data.u64;
    if (data == kEvChannel) {
      ibv_cq* cq = nullptr;
      void* context = nullptr;
      while (ibv_get_cq_event(channel_, &cq, &context) == 0) ++unacked_cq_events_;
      if (unacked_cq_events_ >= 64) {
        ibv_ack_cq_events(cq_, unacked_cq_events_);
        unacked_cq_events_ = 0;
      }
    } else if (data == kEvAsync) {
      ReadAsyncEvents();
    } else if (data == kEvKick) {
      uint64_t value = 0;
      [[maybe_unused]] ssize_t r = read(kick_.get(), &value, sizeof(value));
    } else if (data < peers_.size()) {
      // Everything the peer sent before its goodbye is already in the CQ: take it first.
      if (!polled) PollCq(), polled = true;
      OnSocket(*peers_[data]);
    }
  }
  if (n > 0) {
    PollCq();
    PumpAll();
  }
}

void VerbsTransport::prepare_to_sleep() {
  std::lock_guard lock(mu_);
  CheckEvents();
  next_event_check_ = {};
  // Arm first, then look: a completion that slipped in between is handled now, and the kick
  // makes the caller's poll return at once instead of sleeping on it.
  ibv_req_notify_cq(cq_, 0);
  ibv_wc wc[32];
  int n = ibv_poll_cq(cq_, 32, wc);
  for (int i = 0; i < n; ++i) OnCompletion(wc[i]);
  if (n > 0) {
    PumpAll();
    uint64_t one = 1;
    [[maybe_unused]] ssize_t w = write(kick_.get(), &one, sizeof(one));
  }
}

void VerbsTransport::Shutdown() {
  // Let queued control messages (FINs, credits) and posted sends finish, bounded, so a peer
  // still reading what we sent gets all of it before our goodbye.
  auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  auto busy = [&] {
    for (auto& peer : peers_) {
      if (!peer->connected || peer->state != Peer::State::kOpen) continue;
      if (!peer->outq.empty()) return true;
      for (const Qp& qp : peer->qps) {
        if (qp.outstanding > 0 || !qp.backlog.empty()) return true;
      }
    }
    return false;
  };
  while (fatal_.ok() && busy() && std::chrono::steady_clock::now() < limit) {
    PollCq();
    PumpAll();
    CheckEvents();
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  Goodbye goodbye{kGoodbyeMagic, !fatal_.ok() && fatal_rank_ >= 0 ? fatal_rank_
                                 : mismatch_                     ? kGoodbyeMismatch
                                                                 : -1};
  for (auto& peer : peers_) {
    if (!peer->socket) continue;
    // After any heartbeat the kernel took only part of, so the peer's framing holds.
    peer->writer.Write(peer->socket.get(), &goodbye, sizeof(goodbye),
                       Deadline::After(std::chrono::milliseconds(200)));
    peer->socket.reset();
  }
}

VerbsTransport::~VerbsTransport() {
  std::lock_guard lock(mu_);
  if (cq_ != nullptr) Shutdown();
  for (auto& peer : peers_) {
    for (Qp& qp : peer->qps) {
      if (qp.qp != nullptr) ibv_destroy_qp(qp.qp);
    }
  }
  regions_.clear();
  cache_.reset();
  if (send_mr_ != nullptr) ibv_dereg_mr(send_mr_);
  if (recv_mr_ != nullptr) ibv_dereg_mr(recv_mr_);
  if (cq_ != nullptr) {
    if (unacked_cq_events_ > 0) ibv_ack_cq_events(cq_, unacked_cq_events_);
    ibv_destroy_cq(cq_);
  }
  if (channel_ != nullptr) ibv_destroy_comp_channel(channel_);
  if (pd_ != nullptr) ibv_dealloc_pd(pd_);
  if (device_ != nullptr) ibv_close_device(device_);
}

}  // namespace verbs

ProbeResult ProbeVerbsTransport(const Config& config) {
  std::string why = verbs::WhyNoActivePort(config);
  if (!why.empty()) return {false, why};
  return {true, "an active RDMA port is selected"};
}

absl::StatusOr<std::unique_ptr<Transport>> CreateVerbsTransport(const TransportContext& context) {
  auto transport = std::make_unique<verbs::VerbsTransport>(context);
  BRAID_RETURN_IF_ERROR(transport->Init());
  return transport;
}

}  // namespace braid
