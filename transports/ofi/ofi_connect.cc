// Connecting the ofi transport: the address blob (provider, liveness socket, one fabric
// address per NIC), fi_av_insert of each peer's addresses, the authenticated liveness sockets
// and the hello that opens each fabric connection from one side.
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "transports/ofi/ofi_internal.h"
#include "transports/tcp/handshake.h"
#include "transports/tcp/wire.h"

namespace braid::ofi {
namespace {

constexpr uint32_t kBlobMagic = 0x424f4642;  // "BFOB"
void PutU32(Blob& blob, uint32_t v) {
  for (int i = 0; i < 4; ++i) blob.push_back(std::byte((v >> (8 * i)) & 0xff));
}
void PutBytes(Blob& blob, const void* data, size_t n) {
  PutU32(blob, static_cast<uint32_t>(n));
  const std::byte* p = static_cast<const std::byte*>(data);
  blob.insert(blob.end(), p, p + n);
}

struct BlobReader {
  std::span<const std::byte> in;
  size_t at = 0;
  bool ok = true;
  uint32_t U32() {
    if (at + 4 > in.size()) return ok = false, 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(in[at + i]) << (8 * i);
    at += 4;
    return v;
  }
  std::vector<std::byte> Bytes() {
    uint32_t n = U32();
    if (!ok || at + n > in.size()) return ok = false, std::vector<std::byte>();
    std::vector<std::byte> out(in.begin() + at, in.begin() + at + n);
    at += n;
    return out;
  }
};

struct PeerBlob {
  std::string provider;
  Blob sideband;                           // the tcp transport's listen blob.
  std::vector<std::vector<std::byte>> rails;
};

absl::StatusOr<PeerBlob> DecodeBlob(std::span<const std::byte> in) {
  BlobReader r{in};
  PeerBlob out;
  if (r.U32() != kBlobMagic || r.U32() != kProtocolVersion) {
    return absl::InvalidArgumentError("not an ofi transport address of this Braid version");
  }
  auto provider = r.Bytes();
  out.provider.assign(reinterpret_cast<const char*>(provider.data()), provider.size());
  out.sideband = r.Bytes();
  uint32_t nrails = r.U32();
  for (uint32_t i = 0; r.ok && i < nrails && i < 1024; ++i) out.rails.push_back(r.Bytes());
  if (!r.ok || out.rails.empty()) return absl::InvalidArgumentError("truncated ofi address");
  return out;
}

}  // namespace

absl::StatusOr<Blob> OfiTransport::listen() {
  std::lock_guard<std::mutex> lock(mu_);
  if (listen_fd_) return absl::FailedPreconditionError("ofi transport: listen() called twice");
  std::string ip = ctx_.local_address;
  if (ip.empty()) {
    BRAID_ASSIGN_OR_RETURN(ip, tcp::SelectListenAddress(ctx_.config.socket_ifname));
  }
  BRAID_ASSIGN_OR_RETURN(tcp::SocketAddress address, tcp::MakeSocketAddress(ip, 0));
  BRAID_ASSIGN_OR_RETURN(listen_fd_, tcp::NewTcpSocket(address.family()));
  if (::bind(listen_fd_.get(), reinterpret_cast<const sockaddr*>(&address.storage),
             address.length) != 0 ||
      ::listen(listen_fd_.get(), 1024) != 0) {
    return SystemError(absl::StrCat("ofi transport: liveness socket on ", ip), errno,
                       "choose another interface with BRAID_SOCKET_IFNAME");
  }
  address.length = sizeof(address.storage);
  getsockname(listen_fd_.get(), reinterpret_cast<sockaddr*>(&address.storage), &address.length);
  Blob blob;
  PutU32(blob, kBlobMagic);
  PutU32(blob, kProtocolVersion);
  PutBytes(blob, fabric_.provider.data(), fabric_.provider.size());
  Blob sideband = tcp::EncodeListenBlob({ip, tcp::AddressPort(address)});
  PutBytes(blob, sideband.data(), sideband.size());
  PutU32(blob, static_cast<uint32_t>(rails_.size()));
  for (auto& rail : rails_) PutBytes(blob, rail->address.data(), rail->address.size());
  return blob;
}

absl::StatusOr<std::vector<std::unique_ptr<Connection>>> OfiTransport::connect(
    std::span<const int> peers, std::span<const Blob> blobs, Deadline deadline) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!listen_fd_) return absl::FailedPreconditionError("ofi transport: connect() before listen()");
  by_rank_.resize(ctx_.nranks, nullptr);
  std::vector<PeerBlob> decoded(blobs.size());
  std::vector<Blob> sideband(blobs.size());
  for (int rank : peers) {
    std::string host = static_cast<size_t>(rank) < ctx_.hosts.size() ? ctx_.hosts[rank] : "";
    if (rank < 0 || static_cast<size_t>(rank) >= blobs.size() || rank == ctx_.rank ||
        by_rank_[rank] != nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("ofi transport: bad or repeated peer rank ", rank));
    }
    auto blob = DecodeBlob(blobs[rank]);
    if (!blob.ok()) {
      return MakeError(absl::StatusCode::kInvalidArgument,
                       absl::StrCat("ofi transport: address of ", DescribeRank(rank, host)),
                       blob.status().message(), "run the same Braid build on every rank");
    }
    if (blob->provider != fabric_.provider) {
      return MakeError(absl::StatusCode::kFailedPrecondition,
                       absl::StrCat("ofi transport: ", DescribeRank(rank, host)),
                       absl::StrCat("uses libfabric provider ", blob->provider, ", rank ",
                                    ctx_.rank, " uses ", fabric_.provider),
                       "set the same BRAID_OFI_PROVIDER (or FI_PROVIDER) on every rank");
    }
    sideband[rank] = blob->sideband;
    decoded[rank] = std::move(*blob);
  }
  tcp::HandshakeParams params{ctx_.rank, ctx_.comm_id, ctx_.secret, ctx_.hosts, 1};
  BRAID_ASSIGN_OR_RETURN(auto fds,
                         tcp::EstablishSockets(params, listen_fd_.get(), peers, sideband, deadline));
  std::vector<std::unique_ptr<Connection>> connections;
  for (size_t i = 0; i < peers.size(); ++i) {
    auto peer = std::make_unique<Peer>();
    peer->rank = peers[i];
    if (static_cast<size_t>(peer->rank) < ctx_.hosts.size()) peer->host = ctx_.hosts[peer->rank];
    peer->index = static_cast<int>(peers_.size());
    const PeerBlob& blob = decoded[peer->rank];
    size_t nrails = std::min(rails_.size(), blob.rails.size());
    for (size_t r = 0; r < nrails; ++r) {
      fi_addr_t addr = FI_ADDR_UNSPEC;
      int rc = fi_av_insert(rails_[r]->av, blob.rails[r].data(), 1, &addr, 0, nullptr);
      if (rc != 1) {
        return MakeError(absl::StatusCode::kUnavailable,
                         absl::StrCat("ofi transport: address of ", DescribeRank(peer->rank, peer->host),
                                      " on NIC ", rails_[r]->info->domain_attr->name),
                         FabricError("fi_av_insert", rc < 0 ? rc : -FI_EADDRNOTAVAIL),
                         "check that both ranks use the same provider and fabric");
      }
      peer->addr.push_back(addr);
    }
    peer->socket = std::move(fds[i][0]);
    int flags = fcntl(peer->socket.get(), F_GETFL);
    fcntl(peer->socket.get(), F_SETFL, flags | O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = kEventPeer + static_cast<uint64_t>(peer->index);
    if (epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, peer->socket.get(), &ev) != 0) {
      return SystemError("ofi transport: epoll_ctl(peer socket)", errno);
    }
    by_rank_[peer->rank] = peer.get();
    peer->hello_arrived = early_hellos_.erase(peer->rank) > 0;
    if (auto early = early_.find(peer->rank); early != early_.end()) {
      peer->arrived = std::move(early->second);
      early_.erase(early);
    }
    connections.push_back(std::make_unique<OfiConnection>(this, peer.get()));
    peers_.push_back(std::move(peer));
  }
  // Control messages may have arrived before their peer was known.
  for (auto& peer : peers_) Deliver(*peer);
  std::vector<Peer*> added;
  for (int rank : peers) added.push_back(by_rank_[rank]);
  BRAID_RETURN_IF_ERROR(SayHello(added, deadline));
  return connections;
}

absl::Status OfiTransport::SayHello(std::span<Peer* const> peers, Deadline deadline) {
  std::vector<OfiRequestPtr> hellos;
  for (Peer* peer : peers) {
    if (peer->rank < ctx_.rank) continue;
    Op* op = NewOp(Op::Kind::kCtrlSend, peer, 0);
    op->owned.reset(new char[sizeof(CtrlHeader)]);
    CtrlHeader header{kHelloMagic, static_cast<uint32_t>(ctx_.rank), 0, 0, 0, 0, kProtocolVersion};
    std::memcpy(op->owned.get(), &header, sizeof(header));
    op->buf = op->owned.get();
    op->len = sizeof(header);
    BRAID_ASSIGN_OR_RETURN(op->desc, Describe(op, nullptr));
    op->request = std::make_shared<OfiRequest>(nullptr, 0, 0);
    op->request->ops_left = 1;
    op->send = true;
    op->addr = peer->addr[0];
    op->fabric_tag = kCtrlTag;
    hellos.push_back(op->request);
    BRAID_RETURN_IF_ERROR(Post(op));
  }
  while (true) {
    ProgressLocked();
    BRAID_RETURN_IF_ERROR(fatal_);
    Peer* missing = nullptr;
    for (Peer* peer : peers) {
      if (peer->rank < ctx_.rank && !peer->hello_arrived) missing = peer;
    }
    bool sent = true;
    for (auto& hello : hellos) {
      if (hello->done()) BRAID_RETURN_IF_ERROR(hello->status());
      sent = sent && hello->done();
    }
    if (missing == nullptr && sent) return absl::OkStatus();
    if (deadline.expired()) {
      std::string who = missing ? DescribeRank(missing->rank, missing->host) : "a higher rank";
      return MakeError(absl::StatusCode::kDeadlineExceeded,
                       absl::StrCat("ofi transport (rank ", ctx_.rank, "): opening the fabric "
                                    "connection with ", who),
                       "no hello arrived in time over libfabric (the liveness socket connected)",
                       "check that the provider's network (FI_TCP_IFACE, security groups for "
                       "EFA) lets the ranks reach each other");
    }
    CheckSockets(1);
  }
}

}  // namespace braid::ofi
