#include "transports/tcp/handshake.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/status.h"
#include "transports/tcp/wire.h"

namespace braid::tcp {
namespace {

using Clock = Deadline::Clock;
constexpr auto kRetryDelay = std::chrono::milliseconds(50);

struct Attempt {
  UniqueFd fd;
  bool dialer = false;
  int peer = -1;  // rank; for accepted sockets known once the hello is read.
  uint32_t stream = 0;
  enum State { kConnecting, kSending, kReceiving } state = kConnecting;
  bool established_after_send = false;
  std::byte out[kHelloBytes];
  size_t out_done = 0;
  std::byte in[kHelloBytes];
  size_t in_done = 0;
  Clock::time_point retry_at{};
  std::string from;  // remote address, for logs about refused connections.
};

class Handshaker {
 public:
  Handshaker(const HandshakeParams& params, int listen_fd, std::span<const int> peers)
      : p_(params), listen_fd_(listen_fd), peers_(peers) {}

  absl::StatusOr<std::vector<std::vector<UniqueFd>>> Run(std::span<const Blob> blobs,
                                                         Deadline deadline);

 private:
  std::string Who(int rank) const {
    std::string host;
    if (rank >= 0 && static_cast<size_t>(rank) < p_.hosts.size()) host = p_.hosts[rank];
    return DescribeRank(rank, host);
  }
  Hello MakeHello(HelloKind kind, int to, uint32_t stream) const {
    Hello h{kind, p_.comm_id, p_.rank, to, stream, static_cast<uint32_t>(p_.nstreams), 0};
    h.proof = HelloProof(p_.secret, h);
    return h;
  }
  void StartDial(Attempt& a);
  // Returns a fatal error, or OK; sets `remove` when the attempt is finished or dropped.
  absl::Status Step(Attempt& a, short revents, bool& remove);
  absl::Status OnHello(Attempt& a, bool& remove);
  void Refuse(Attempt& a, const std::string& why, bool& remove) {
    BRAID_LOG(kWarn, "tcp transport: refused a connection from ", a.from, ": ", why);
    remove = true;
  }
  void Established(Attempt& a, bool& remove) {
    result_[index_.at(a.peer)][a.stream] = std::move(a.fd);
    ++established_;
    remove = true;
  }

  const HandshakeParams& p_;
  int listen_fd_;
  std::span<const int> peers_;
  std::map<int, size_t> index_;  // peer rank -> position in peers_.
  std::map<int, SocketAddress> addresses_;
  std::map<int, std::string> last_error_;
  std::vector<std::vector<UniqueFd>> result_;
  size_t established_ = 0;
};

void Handshaker::StartDial(Attempt& a) {
  const SocketAddress& address = addresses_.at(a.peer);
  auto fd = NewTcpSocket(address.family());
  if (!fd.ok()) {
    last_error_[a.peer] = fd.status().ToString();
    a.retry_at = Clock::now() + kRetryDelay;
    return;
  }
  a.fd = std::move(fd).value();
  int rc = ::connect(a.fd.get(), reinterpret_cast<const sockaddr*>(&address.storage),
                     address.length);
  if (rc == 0 || errno == EINPROGRESS) {
    a.state = rc == 0 ? Attempt::kSending : Attempt::kConnecting;
    EncodeHello(MakeHello(HelloKind::kDial, a.peer, a.stream), a.out);
    a.out_done = a.in_done = 0;
    return;
  }
  last_error_[a.peer] =
      absl::StrCat("connect to ", AddressToString(address), ": ", std::strerror(errno));
  a.fd.reset();
  a.retry_at = Clock::now() + kRetryDelay;
}

absl::Status Handshaker::OnHello(Attempt& a, bool& remove) {
  auto hello = DecodeHello(a.in);
  if (a.dialer) {
    std::string why;
    if (!hello.ok()) {
      why = std::string(hello.status().message());
    } else if (hello->kind != HelloKind::kAccept || hello->from_rank != a.peer ||
               hello->to_rank != p_.rank || hello->stream != a.stream) {
      why = absl::StrCat("it answered as rank ", hello->from_rank, " for rank ", hello->to_rank,
                         " stream ", hello->stream);
    } else if (hello->comm_id != p_.comm_id || hello->proof != HelloProof(p_.secret, *hello)) {
      why = "it belongs to a different communicator (secret or communicator id differ)";
    } else if (hello->nstreams != static_cast<uint32_t>(p_.nstreams)) {
      why = absl::StrCat("it uses ", hello->nstreams, " streams per peer and we use ",
                         p_.nstreams);
    }
    if (!why.empty()) {
      return MakeError(absl::StatusCode::kPermissionDenied,
                       absl::StrCat("tcp connect to ", Who(a.peer), " at ", a.from),
                       absl::StrCat("the listener is not the expected peer: ", why),
                       "check that every rank uses the same unique id and the same "
                       "BRAID_TCP_STREAMS, and that no stale process owns the address");
    }
    Established(a, remove);
    return absl::OkStatus();
  }
  if (!hello.ok()) {
    Refuse(a, std::string(hello.status().message()), remove);
    return absl::OkStatus();
  }
  if (hello->kind != HelloKind::kDial || hello->comm_id != p_.comm_id ||
      hello->proof != HelloProof(p_.secret, *hello)) {
    Refuse(a, "wrong secret or communicator id", remove);
    return absl::OkStatus();
  }
  auto it = index_.find(hello->from_rank);
  if (hello->to_rank != p_.rank || it == index_.end() || hello->from_rank >= p_.rank ||
      hello->stream >= static_cast<uint32_t>(p_.nstreams) ||
      hello->nstreams != static_cast<uint32_t>(p_.nstreams) ||
      result_[it->second][hello->stream]) {
    Refuse(a, absl::StrCat("unexpected hello from rank ", hello->from_rank, " to rank ",
                           hello->to_rank, " stream ", hello->stream, "/", hello->nstreams),
           remove);
    return absl::OkStatus();
  }
  a.peer = hello->from_rank;
  a.stream = hello->stream;
  EncodeHello(MakeHello(HelloKind::kAccept, a.peer, a.stream), a.out);
  a.state = Attempt::kSending;
  a.established_after_send = true;
  return absl::OkStatus();
}

absl::Status Handshaker::Step(Attempt& a, short revents, bool& remove) {
  if (a.state == Attempt::kConnecting) {
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(a.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      last_error_[a.peer] = absl::StrCat("connect to ", a.from, ": ", std::strerror(err));
      a.fd.reset();
      a.retry_at = Clock::now() + kRetryDelay;
      return absl::OkStatus();
    }
    a.state = Attempt::kSending;
  }
  if (a.state == Attempt::kSending) {
    ssize_t n = ::send(a.fd.get(), a.out + a.out_done, kHelloBytes - a.out_done, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return absl::OkStatus();
    if (n <= 0) {
      if (!a.dialer) {
        Refuse(a, "it closed before our reply", remove);
        return absl::OkStatus();
      }
      last_error_[a.peer] = absl::StrCat("send hello to ", a.from, ": ", std::strerror(errno));
      a.fd.reset();
      a.retry_at = Clock::now() + kRetryDelay;
      return absl::OkStatus();
    }
    a.out_done += static_cast<size_t>(n);
    if (a.out_done < kHelloBytes) return absl::OkStatus();
    if (a.established_after_send) {
      Established(a, remove);
      return absl::OkStatus();
    }
    a.state = Attempt::kReceiving;
    return absl::OkStatus();
  }
  if (!(revents & (POLLIN | POLLHUP | POLLERR))) return absl::OkStatus();
  ssize_t n = ::recv(a.fd.get(), a.in + a.in_done, kHelloBytes - a.in_done, 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return absl::OkStatus();
  if (n <= 0) {
    if (!a.dialer) {
      Refuse(a, "it closed before sending a complete hello", remove);
      return absl::OkStatus();
    }
    return MakeError(absl::StatusCode::kPermissionDenied,
                     absl::StrCat("tcp connect to ", Who(a.peer), " at ", a.from),
                     "the listener closed the connection after our hello: it refused our "
                     "secret or communicator id, or it is not a Braid rank of this job",
                     "check that every rank was started with the same unique id");
  }
  a.in_done += static_cast<size_t>(n);
  if (a.in_done < kHelloBytes) return absl::OkStatus();
  return OnHello(a, remove);
}

absl::StatusOr<std::vector<std::vector<UniqueFd>>> Handshaker::Run(std::span<const Blob> blobs,
                                                                   Deadline deadline) {
  std::vector<Attempt> attempts;
  size_t expected = 0, expected_accepts = 0;
  result_.resize(peers_.size());
  for (size_t i = 0; i < peers_.size(); ++i) {
    int peer = peers_[i];
    if (peer == p_.rank || peer < 0 || static_cast<size_t>(peer) >= blobs.size() ||
        index_.count(peer)) {
      return absl::InvalidArgumentError(
          absl::StrCat("tcp connect: bad or duplicate peer rank ", peer, " (own rank ", p_.rank,
                       ", ", blobs.size(), " blobs)"));
    }
    index_[peer] = i;
    result_[i].resize(p_.nstreams);
    expected += p_.nstreams;
    if (peer < p_.rank) {
      expected_accepts += p_.nstreams;
      continue;
    }
    BRAID_ASSIGN_OR_RETURN(ListenAddress listen, DecodeListenBlob(blobs[peer]));
    BRAID_ASSIGN_OR_RETURN(addresses_[peer], MakeSocketAddress(listen.ip, listen.port));
    for (int s = 0; s < p_.nstreams; ++s) {
      Attempt& a = attempts.emplace_back();
      a.dialer = true;
      a.peer = peer;
      a.stream = static_cast<uint32_t>(s);
      a.from = AddressToString(addresses_[peer]);
    }
  }
  std::vector<pollfd> fds;
  while (established_ < expected) {
    auto now = Clock::now();
    for (Attempt& a : attempts) {
      if (a.dialer && !a.fd && a.retry_at <= now) StartDial(a);
    }
    fds.clear();
    fds.push_back({expected_accepts > 0 ? listen_fd_ : -1, POLLIN, 0});
    for (Attempt& a : attempts) {
      short events = a.state == Attempt::kReceiving ? POLLIN : POLLOUT;
      fds.push_back({a.fd ? a.fd.get() : -1, events, 0});
    }
    if (deadline.expired()) break;
    int rc = poll(fds.data(), fds.size(), deadline.remaining_ms(static_cast<int>(kRetryDelay.count())));
    if (rc < 0 && errno != EINTR) return SystemError("poll during tcp connect", errno);
    for (size_t i = 0; i < attempts.size(); ++i) {
      short revents = fds[i + 1].revents;
      if (fds[i + 1].fd < 0 || revents == 0) continue;
      bool remove = false;
      BRAID_RETURN_IF_ERROR(Step(attempts[i], revents, remove));
      if (remove) attempts[i].fd.reset(), attempts[i].peer = -2;
    }
    std::erase_if(attempts, [](const Attempt& a) { return a.peer == -2; });
    if (fds[0].revents & POLLIN) {
      while (true) {
        sockaddr_storage from{};
        socklen_t len = sizeof(from);
        int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&from), &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        Attempt& a = attempts.emplace_back();
        a.fd.reset(fd);
        a.state = Attempt::kReceiving;
        SocketAddress address;
        address.storage = from;
        address.length = len;
        a.from = AddressToString(address);
      }
    }
  }
  if (established_ < expected) {
    std::string missing;
    for (size_t i = 0; i < peers_.size(); ++i) {
      int n = 0;
      for (auto& fd : result_[i]) n += fd ? 0 : 1;
      if (n == 0) continue;
      absl::StrAppend(&missing, missing.empty() ? "" : "; ", Who(peers_[i]), ": ", n, " of ",
                      p_.nstreams, " socket(s) missing",
                      peers_[i] < p_.rank ? " (it never dialed us)" : "");
      if (last_error_.count(peers_[i])) absl::StrAppend(&missing, ", last error ", last_error_[peers_[i]]);
    }
    return MakeError(absl::StatusCode::kDeadlineExceeded, "tcp transport connect",
                     absl::StrCat("timed out: ", missing),
                     "check that those ranks are running, reachable from this host, and use "
                     "the same unique id; set BRAID_SOCKET_IFNAME if the wrong interface was "
                     "chosen");
  }
  return std::move(result_);
}

}  // namespace

absl::StatusOr<std::vector<std::vector<UniqueFd>>> EstablishSockets(
    const HandshakeParams& params, int listen_fd, std::span<const int> peers,
    std::span<const Blob> blobs, Deadline deadline) {
  Handshaker handshaker(params, listen_fd, peers);
  return handshaker.Run(blobs, deadline);
}

}  // namespace braid::tcp
