#include "transports/shm/shm_transport.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/status.h"
#include "transports/shm/handshake.h"
#include "transports/shm/shm_internal.h"

namespace braid {

ProbeResult ProbeShmTransport(const Config& /*config*/) {
  ProbeResult result;
  int fd = memfd_create("braid-shm-probe", MFD_CLOEXEC);
  if (fd < 0) {
    result.reason = absl::StrCat("memfd_create failed: ", std::strerror(errno));
    return result;
  }
  close(fd);
  result.usable = true;
  result.reason = "memfd shared memory and unix sockets";
  return result;
}

absl::StatusOr<std::unique_ptr<Transport>> CreateShmTransport(const TransportContext& context) {
  auto transport = std::make_unique<shm::ShmTransport>(context);
  if (transport->wait_fd() < 0) return SystemError("shm transport: epoll/eventfd", errno);
  return std::unique_ptr<Transport>(std::move(transport));
}

namespace shm {
namespace {

// epoll user data of the wake eventfd (peers use their index + 1).
constexpr uint64_t kWakeFdTag = 0;

std::string SocketDirectory() {
  const char* dir = std::getenv("TMPDIR");
  return dir != nullptr && *dir != '\0' && std::strlen(dir) < 60 ? dir : "/tmp";
}

}  // namespace

ShmTransport::ShmTransport(const TransportContext& context) : ctx_(context) {
  epoll_fd_.reset(epoll_create1(EPOLL_CLOEXEC));
  wake_fd_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!epoll_fd_ || !wake_fd_) {
    epoll_fd_.reset();
    return;
  }
  epoll_event event{EPOLLIN, {.u64 = kWakeFdTag}};
  if (epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, wake_fd_.get(), &event) != 0) epoll_fd_.reset();
}

ShmTransport::~ShmTransport() {
  std::lock_guard<std::mutex> lock(mu_);
  SendGoodbyes();
  for (auto& peer : peers_) {
    if (peer->out_map != nullptr) munmap(peer->out_map, kRingBytes);
    if (peer->in_map != nullptr) munmap(peer->in_map, kRingBytes);
  }
  if (!listen_path_.empty()) unlink(listen_path_.c_str());
}

absl::StatusOr<Blob> ShmTransport::listen() {
  std::lock_guard<std::mutex> lock(mu_);
  if (listen_fd_) return absl::FailedPreconditionError("shm transport: listen() called twice");
  listen_fd_.reset(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listen_fd_) return SystemError("shm transport: socket(AF_UNIX)", errno);
  std::random_device random;
  listen_path_ = absl::StrCat(SocketDirectory(), "/braid-shm-", getpid(), "-",
                              absl::Hex(uint64_t{random()} << 32 | random()), ".sock");
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, listen_path_.data(), listen_path_.size());
  if (::bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    int err = errno;
    listen_path_.clear();
    return SystemError(absl::StrCat("shm transport: bind to ", address.sun_path), err,
                       "point TMPDIR at a writable directory, or set BRAID_TRANSPORT=tcp");
  }
  if (::listen(listen_fd_.get(), 1024) != 0) return SystemError("shm transport: listen", errno);
  BRAID_LOG(kInfo, "shm transport: listening on ", listen_path_);
  return EncodeListenBlob({ReadBootId(), listen_path_});
}

absl::Status ShmTransport::MapPeer(Peer& peer, int in_fd) {
  peer.in_map = mmap(nullptr, kRingBytes, PROT_READ | PROT_WRITE, MAP_SHARED, in_fd, 0);
  if (peer.in_map == MAP_FAILED) {
    peer.in_map = nullptr;
    return SystemError(absl::StrCat("shm transport: mapping the ring of ",
                                    DescribeRank(peer.rank, peer.host)), errno);
  }
  Ring* in = peer.in();
  if (in->control.magic != kRingMagic) {
    return PeerError(absl::StatusCode::kDataLoss, peer, "its ring is not a Braid ring",
                     "mixed Braid versions or a foreign process; restart the job");
  }
  // Prove that we may read the peer's memory (same user, ptrace rules allow it): read its
  // ring's magic through process_vm_readv. Only then may it send us messages by reference.
  uint64_t magic = 0;
  iovec local{&magic, sizeof(magic)};
  iovec remote{reinterpret_cast<void*>(in->control.producer_address), sizeof(magic)};
  bool readable = peer.pid > 0 && process_vm_readv(peer.pid, &local, 1, &remote, 1, 0) ==
                                      static_cast<ssize_t>(sizeof(magic)) &&
                  magic == kRingMagic;
  if (readable && ctx_.config.shm_cma) {
    in->control.consumer_reads_producer.store(1, std::memory_order_release);
  } else {
    BRAID_LOG(kInfo, "shm transport: large messages from ", DescribeRank(peer.rank, peer.host),
              " are copied through the ring (",
              !ctx_.config.shm_cma ? "BRAID_SHM_CMA=0"
                                          : absl::StrCat("process_vm_readv: ", std::strerror(errno)),
              ")");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::unique_ptr<Connection>>> ShmTransport::connect(
    std::span<const int> peers, std::span<const Blob> blobs, Deadline deadline) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!listen_fd_) return absl::FailedPreconditionError("shm transport: connect() before listen()");
  const std::string me_host =
      static_cast<size_t>(ctx_.rank) < ctx_.hosts.size() ? ctx_.hosts[ctx_.rank] : "";
  const std::string boot_id = ReadBootId();
  std::vector<std::unique_ptr<Peer>> fresh;
  std::vector<UniqueFd> out_fds;
  std::vector<int> out_raw;
  for (int rank : peers) {
    for (auto& peer : peers_) {
      if (peer->rank == rank) {
        return absl::InvalidArgumentError(absl::StrCat("shm transport: already connected to rank ", rank));
      }
    }
    if (rank < 0 || static_cast<size_t>(rank) >= blobs.size()) {
      return absl::InvalidArgumentError(absl::StrCat("shm transport: no address for rank ", rank));
    }
    auto peer = std::make_unique<Peer>();
    peer->rank = rank;
    if (static_cast<size_t>(rank) < ctx_.hosts.size()) peer->host = ctx_.hosts[rank];
    // Go by the host names bootstrap reported, never by whether shared memory happens to work.
    if (peer->host != me_host) {
      return MakeError(absl::StatusCode::kFailedPrecondition,
                       absl::StrCat("shm transport (rank ", ctx_.rank, " on host ", me_host, ")"),
                       absl::StrCat(DescribeRank(rank, peer->host),
                                    " is on another host; shared memory only connects ranks on "
                                    "one host"),
                       "unset BRAID_TRANSPORT (Braid then uses shm within hosts and the network "
                       "between them) or set BRAID_TRANSPORT=tcp");
    }
    BRAID_ASSIGN_OR_RETURN(ListenBlob blob, DecodeListenBlob(blobs[rank]));
    if (blob.boot_id != boot_id) {
      return MakeError(absl::StatusCode::kFailedPrecondition,
                       absl::StrCat("shm transport (rank ", ctx_.rank, ")"),
                       absl::StrCat(DescribeRank(rank, peer->host),
                                    " reports the same host name but runs under another kernel "
                                    "(boot ids differ), so it cannot share memory with us"),
                       "give each machine a distinct host name (BRAID_HOSTNAME), or set "
                       "BRAID_TRANSPORT=tcp");
    }
    // Our ring to this peer: a memfd passed in the hello, so no name is ever left behind.
    UniqueFd memfd(memfd_create("braid-shm-ring", MFD_CLOEXEC));
    if (!memfd || ftruncate(memfd.get(), kRingBytes) != 0) {
      return SystemError("shm transport: creating a shared-memory ring (memfd)", errno,
                         "check the memory limits of /dev/shm and of this container");
    }
    peer->out_map = mmap(nullptr, kRingBytes, PROT_READ | PROT_WRITE, MAP_SHARED, memfd.get(), 0);
    if (peer->out_map == MAP_FAILED) {
      peer->out_map = nullptr;
      return SystemError("shm transport: mapping a shared-memory ring", errno);
    }
    Ring* out = peer->out();
    out->control.magic = kRingMagic;
    out->control.producer_address = reinterpret_cast<uint64_t>(peer->out_map);
    out_raw.push_back(memfd.get());
    out_fds.push_back(std::move(memfd));
    fresh.push_back(std::move(peer));
  }
  auto unmap_fresh = [&] {
    for (auto& peer : fresh) {
      if (peer->out_map) munmap(peer->out_map, kRingBytes);
      if (peer->in_map) munmap(peer->in_map, kRingBytes);
      peer->out_map = peer->in_map = nullptr;
    }
  };
  HandshakeParams params{ctx_.rank, ctx_.comm_id, ctx_.secret, ctx_.hosts};
  auto links = Handshake(params, listen_fd_.get(), peers, out_raw, blobs, deadline);
  if (!links.ok()) {
    unmap_fresh();
    return links.status();
  }
  std::vector<std::unique_ptr<Connection>> connections;
  for (size_t i = 0; i < fresh.size(); ++i) {
    Peer& peer = *fresh[i];
    PeerLink& link = (*links)[i];
    peer.pid = link.pid;
    peer.socket = std::move(link.socket);
    absl::Status mapped = MapPeer(peer, link.memfd.get());
    if (!mapped.ok()) {
      unmap_fresh();
      return mapped;
    }
    epoll_event event{EPOLLIN | EPOLLRDHUP, {.u64 = peers_.size() + i + 1}};
    if (epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, peer.socket.get(), &event) != 0) {
      unmap_fresh();
      return SystemError("shm transport: epoll_ctl", errno);
    }
  }
  for (auto& peer : fresh) {
    connections.push_back(std::make_unique<ShmConnection>(this, peer.get()));
    peers_.push_back(std::move(peer));
  }
  // Every expected peer dialed or answered: the socket name has done its job.
  if (!listen_path_.empty()) {
    unlink(listen_path_.c_str());
    listen_path_.clear();
  }
  return connections;
}

absl::StatusOr<MemoryRegion*> ShmTransport::register_memory(void* base, size_t length) {
  std::lock_guard<std::mutex> lock(mu_);
  regions_.push_back(MemoryRegion{base, length, 0, nullptr});
  return &regions_.back();
}

absl::Status ShmTransport::deregister_memory(MemoryRegion* region) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = regions_.begin(); it != regions_.end(); ++it) {
    if (&*it == region) {
      regions_.erase(it);
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError("shm transport: deregister_memory of an unknown region");
}

absl::Status ShmTransport::progress() {
  std::lock_guard<std::mutex> lock(mu_);
  ProgressLocked();
  return fatal_;
}

void ShmTransport::ProgressLocked() {
  // The sockets only carry wakeups, goodbyes and ends of stream: look at them after a sleep,
  // and now and then while busy, so a dead peer is noticed even by a rank that never sleeps.
  if (slept_ || (++passes_ & 1023) == 0) CheckSockets();
  for (auto& owned : peers_) {
    Peer& peer = *owned;
    if (peer.state == Peer::State::kFailed) continue;
    auto& sleeping = peer.in()->control.consumer_sleeping;
    if (sleeping.load(std::memory_order_relaxed) != 0) sleeping.store(0, std::memory_order_relaxed);
    for (int n = 0; n < 2 * static_cast<int>(kSlots) && PollRing(peer); ++n) {
    }
    PumpSends(peer);
  }
}

void ShmTransport::CheckSockets() {
  slept_ = false;
  epoll_event events[32];
  int n = epoll_wait(epoll_fd_.get(), events, 32, 0);
  for (int i = 0; i < n; ++i) {
    uint64_t tag = events[i].data.u64;
    if (tag == kWakeFdTag) {
      uint64_t count;
      [[maybe_unused]] ssize_t got = read(wake_fd_.get(), &count, sizeof(count));
      continue;
    }
    if (tag - 1 < peers_.size()) DrainSocket(*peers_[tag - 1]);
  }
}

void ShmTransport::DrainSocket(Peer& peer) {
  if (!peer.socket) return;
  char buffer[256];
  while (true) {
    ssize_t n = recv(peer.socket.get(), buffer, sizeof(buffer), MSG_DONTWAIT);
    if (n > 0) {
      ++peer.activity;
      peer.inbox.append(buffer, static_cast<size_t>(n));
      ParseInbox(peer);
      if (peer.state == Peer::State::kFailed) return;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    OnEndOfStream(peer);  // EOF, or a reset.
    return;
  }
}

void ShmTransport::ParseInbox(Peer& peer) {
  size_t at = 0;
  while (at < peer.inbox.size()) {
    char kind = peer.inbox[at];
    if (kind == kWakeByte || kind == kHeartbeatByte) {
      ++at;
    } else if (kind == kGoodbyeByte) {
      peer.goodbye = true;
      ++at;
    } else if (kind == kAbandonByte) {
      uint32_t len = 0;
      if (peer.inbox.size() - at < 5) break;
      std::memcpy(&len, peer.inbox.data() + at + 1, 4);
      if (peer.inbox.size() - at - 5 < len) break;
      std::string why = peer.inbox.substr(at + 5, len);
      peer.inbox.clear();
      FailPeer(peer,
               PeerError(absl::StatusCode::kUnavailable, peer,
                         absl::StrCat("gave up because of a failure elsewhere: ", why), ""),
               /*fatal=*/true, /*blame_peer=*/false);
      return;
    } else {
      peer.inbox.clear();
      FailPeer(peer,
               PeerError(absl::StatusCode::kDataLoss, peer,
                         absl::StrCat("unexpected byte ", static_cast<int>(kind), " on its socket"),
                         "mixed Braid versions or a foreign process; restart the job"),
               /*fatal=*/true);
      return;
    }
  }
  peer.inbox.erase(0, at);
}

void ShmTransport::Abandon(const absl::Status& why) {
  std::lock_guard<std::mutex> lock(mu_);
  if (abandoned_.ok()) abandoned_ = why;
}

void ShmTransport::prepare_to_sleep() {
  std::lock_guard<std::mutex> lock(mu_);
  slept_ = true;
  for (auto& peer : peers_) {
    if (peer->state == Peer::State::kFailed) continue;
    peer->in()->control.consumer_sleeping.store(1, std::memory_order_relaxed);
    if (!peer->sendq.empty()) {
      peer->out()->control.producer_waiting.store(1, std::memory_order_relaxed);
    }
  }
  // Pairs with the fence in Publish (and after freeing slots): either the other side sees
  // our flag and writes a wake byte, or we see its update here and do not sleep.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  bool work = false;
  for (auto& peer : peers_) {
    if (peer->state == Peer::State::kFailed) continue;
    const RingControl& in = peer->in()->control;
    if (in.tail.load(std::memory_order_relaxed) != in.head.load(std::memory_order_relaxed)) work = true;
    const RingControl& out = peer->out()->control;
    if (!peer->sendq.empty() && out.tail.load(std::memory_order_relaxed) -
                                        out.head.load(std::memory_order_relaxed) < kSlots) {
      work = true;
    }
  }
  if (work) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(wake_fd_.get(), &one, sizeof(one));
  }
}

}  // namespace shm

void AbandonShmPeers(Transport& shm, const absl::Status& why) {
  if (auto* transport = dynamic_cast<shm::ShmTransport*>(&shm)) transport->Abandon(why);
}

}  // namespace braid
