#include "transports/hybrid/hybrid_transport.h"

#include <sys/epoll.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/status.h"
#include "core/unique_fd.h"
#include "transports/shm/shm_transport.h"
#include "transports/transport_errors.h"

namespace braid {
namespace {

class HybridTransport final : public Transport {
 public:
  HybridTransport(const TransportContext& context, std::unique_ptr<Transport> local,
                  std::unique_ptr<Transport> network)
      : ctx_(context), local_(std::move(local)), network_(std::move(network)) {}

  // One fd for the progress engine: readable when either transport's fd is.
  absl::Status Init() {
    epoll_fd_.reset(epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_fd_) return SystemError("hybrid transport: epoll_create1", errno);
    for (Transport* t : {local_.get(), network_.get()}) {
      epoll_event event{EPOLLIN, {.ptr = t}};
      if (epoll_ctl(epoll_fd_.get(), EPOLL_CTL_ADD, t->wait_fd(), &event) != 0) {
        return SystemError(absl::StrCat("hybrid transport: watching the ", t->name(),
                                        " transport's wait fd"), errno);
      }
    }
    return absl::OkStatus();
  }

  std::string name() const override { return absl::StrCat("hybrid(", local_->name(), "+", network_->name(), ")"); }

  // Both transports' blobs, the local one length-prefixed.
  absl::StatusOr<Blob> listen() override {
    BRAID_ASSIGN_OR_RETURN(Blob local, local_->listen());
    BRAID_ASSIGN_OR_RETURN(Blob network, network_->listen());
    Blob out(4);
    uint32_t n = static_cast<uint32_t>(local.size());
    std::memcpy(out.data(), &n, 4);
    out.insert(out.end(), local.begin(), local.end());
    out.insert(out.end(), network.begin(), network.end());
    return out;
  }

  absl::StatusOr<std::vector<std::unique_ptr<Connection>>> connect(
      std::span<const int> peers, std::span<const Blob> blobs, Deadline deadline) override {
    std::vector<Blob> local_blobs(blobs.size()), network_blobs(blobs.size());
    std::vector<int> local_peers, network_peers;
    for (int peer : peers) {
      if (peer < 0 || static_cast<size_t>(peer) >= blobs.size()) {
        return absl::InvalidArgumentError(absl::StrCat("hybrid transport: no address for rank ", peer));
      }
      const Blob& blob = blobs[peer];
      uint32_t n = 0;
      if (blob.size() >= 4) std::memcpy(&n, blob.data(), 4);
      if (blob.size() < 4 || blob.size() - 4 < n) {
        return absl::DataLossError(absl::StrCat("hybrid transport: malformed address of rank ", peer));
      }
      local_blobs[peer].assign(blob.begin() + 4, blob.begin() + 4 + n);
      network_blobs[peer].assign(blob.begin() + 4 + n, blob.end());
      (SameHost(peer) ? local_peers : network_peers).push_back(peer);
    }
    // Every rank connects its own host first, then the network: host-local setup only waits
    // for ranks that are in that same phase, so the two phases cannot wait on each other.
    BRAID_ASSIGN_OR_RETURN(auto connections, local_->connect(local_peers, local_blobs, deadline));
    BRAID_ASSIGN_OR_RETURN(auto remote, network_->connect(network_peers, network_blobs, deadline));
    for (auto& c : remote) connections.push_back(std::move(c));
    BRAID_LOG(kInfo, "hybrid transport: ", local_peers.size(), " peer(s) over ", local_->name(),
              ", ", network_peers.size(), " over ", network_->name());
    return connections;
  }

  // Only the network transport registers memory; shm connections ignore regions.
  absl::StatusOr<MemoryRegion*> register_memory(void* base, size_t length) override {
    return network_->register_memory(base, length);
  }
  absl::Status deregister_memory(MemoryRegion* region) override {
    return network_->deregister_memory(region);
  }

  absl::Status progress() override {
    absl::Status local = local_->progress();
    absl::Status network = network_->progress();
    if (!network.ok() && local.ok() && !told_local_) {
      // Our host's peers would otherwise see a clean goodbye and blame nobody (or us).
      AbandonShmPeers(*local_, network);
      told_local_ = true;
    }
    if (!local.ok() && network.ok() && !told_network_) {
      // Likewise for the other hosts: the network part names the local rank that failed in its
      // goodbyes (peer_failed of a rank it has no connection to).
      std::vector<int> failed = local_->failed_peers();
      for (int r : failed) network_->peer_failed(r, local);
      told_network_ = !failed.empty();
    }
    return local.ok() ? network : local;
  }

  // Liveness: each part watches its own peers (disjoint sets of ranks). Heartbeats count only
  // if both parts have them: otherwise one part's peers would always look silent.
  bool send_heartbeats() override {
    bool local = local_->send_heartbeats();
    bool network = network_->send_heartbeats();
    return local && network;
  }
  void read_activity(std::span<uint64_t> counters) override {
    std::vector<uint64_t> local(counters.size()), network(counters.size());
    local_->read_activity(local);
    network_->read_activity(network);
    for (size_t r = 0; r < counters.size(); ++r) counters[r] = local[r] + network[r];
  }
  void peer_failed(int rank, const absl::Status& why) override {
    (SameHost(rank) ? local_ : network_)->peer_failed(rank, why);
  }
  std::vector<int> failed_peers() override {
    std::vector<int> failed = local_->failed_peers();
    for (int r : network_->failed_peers()) NoteFailedRank(failed, r);
    return failed;
  }

  int wait_fd() const override { return epoll_fd_.get(); }
  void prepare_to_sleep() override {
    local_->prepare_to_sleep();
    network_->prepare_to_sleep();
  }

 private:
  bool SameHost(int peer) const {
    return static_cast<size_t>(peer) < ctx_.hosts.size() &&
           static_cast<size_t>(ctx_.rank) < ctx_.hosts.size() &&
           ctx_.hosts[peer] == ctx_.hosts[ctx_.rank];
  }

  TransportContext ctx_;
  // Declared before the transports: destroyed after them (their fds are in its set).
  UniqueFd epoll_fd_;
  std::unique_ptr<Transport> local_;
  std::unique_ptr<Transport> network_;
  bool told_local_ = false;
  bool told_network_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Transport>> CreateHybridTransport(
    const TransportContext& context, std::unique_ptr<Transport> local,
    std::unique_ptr<Transport> network) {
  auto transport = std::make_unique<HybridTransport>(context, std::move(local), std::move(network));
  BRAID_RETURN_IF_ERROR(transport->Init());
  return std::unique_ptr<Transport>(std::move(transport));
}

}  // namespace braid
