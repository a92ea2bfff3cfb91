#include "transports/shm/handshake.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>

#include "absl/strings/str_cat.h"
#include "core/log.h"
#include "core/siphash.h"
#include "core/status.h"

namespace braid::shm {
namespace {

constexpr uint32_t kBlobMagic = 0x4d485342;  // "BSHM"
constexpr uint32_t kHelloMagic = 0x4f4c4548;  // "HELO"
constexpr uint32_t kVersion = 1;
constexpr auto kRetryDelay = std::chrono::milliseconds(20);

struct Hello {
  uint32_t magic = kHelloMagic;
  uint32_t version = kVersion;
  uint64_t comm_id = 0;
  int32_t from = -1;
  int32_t to = -1;
  uint64_t proof = 0;  // SipHash of the fields above under the communicator secret.
};

uint64_t Proof(std::span<const std::byte> secret, Hello hello) {
  hello.proof = 0;
  std::byte key[16];
  SipKeyFromSecret(secret, key);
  return SipHash24(key, std::as_bytes(std::span<const Hello>(&hello, 1)));
}

// Sends `hello` with `fd` attached (SCM_RIGHTS). A hello fits any empty socket buffer.
bool SendHello(int socket, const Hello& hello, int fd) {
  iovec iov{const_cast<Hello*>(&hello), sizeof(hello)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  ssize_t n;
  do {
    n = sendmsg(socket, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(sizeof(hello));
}

// One connection being set up.
struct Attempt {
  UniqueFd fd;
  bool dialer = false;
  int peer = -1;  // rank; for accepted sockets known once the hello is read.
  Hello in;
  size_t in_done = 0;
  UniqueFd memfd;  // received with the hello.
  Deadline::Clock::time_point retry_at{};
};

// Reads what is available of the hello; true once complete. EOF or error: `*closed`.
bool ReadHello(Attempt& a, bool* closed) {
  auto* dest = reinterpret_cast<char*>(&a.in) + a.in_done;
  iovec iov{dest, sizeof(Hello) - a.in_done};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n = recvmsg(a.fd.get(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return false;
  if (n <= 0) {
    *closed = true;
    return false;
  }
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (!a.memfd) a.memfd.reset(fd);
      else close(fd);  // a stranger's extra descriptors.
    }
  }
  a.in_done += static_cast<size_t>(n);
  return a.in_done == sizeof(Hello);
}

pid_t PeerPid(int socket) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(socket, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -1;
  return cred.pid;
}

class Handshaker {
 public:
  Handshaker(const HandshakeParams& p, int listen_fd, std::span<const int> peers,
             std::span<const int> out_memfds)
      : p_(p), listen_fd_(listen_fd), peers_(peers), out_memfds_(out_memfds) {}

  absl::StatusOr<std::vector<PeerLink>> Run(std::span<const Blob> blobs, Deadline deadline);

 private:
  std::string Who(int rank) const {
    std::string host;
    if (rank >= 0 && static_cast<size_t>(rank) < p_.hosts.size()) host = p_.hosts[rank];
    return DescribeRank(rank, host);
  }
  Hello MakeHello(int to) const {
    Hello h;
    h.comm_id = p_.comm_id;
    h.from = p_.rank;
    h.to = to;
    h.proof = Proof(p_.secret, h);
    return h;
  }
  bool Valid(const Hello& h) const {
    return h.magic == kHelloMagic && h.version == kVersion && h.comm_id == p_.comm_id &&
           h.to == p_.rank && h.proof == Proof(p_.secret, h);
  }
  absl::Status Dial(Attempt& a);
  absl::Status Step(Attempt& a, bool& remove);
  void Established(Attempt& a) {
    PeerLink& link = result_[index_.at(a.peer)];
    link.pid = PeerPid(a.fd.get());
    link.socket = std::move(a.fd);
    link.memfd = std::move(a.memfd);
    ++established_;
  }

  const HandshakeParams& p_;
  int listen_fd_;
  std::span<const int> peers_;
  std::span<const int> out_memfds_;
  std::map<int, size_t> index_;
  std::map<int, std::string> paths_;
  std::map<int, std::string> last_error_;
  std::vector<PeerLink> result_;
  size_t established_ = 0;
};

absl::Status Handshaker::Dial(Attempt& a) {
  a.fd.reset(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!a.fd) return SystemError("shm transport: socket(AF_UNIX)", errno);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  const std::string& path = paths_.at(a.peer);
  std::memcpy(address.sun_path, path.data(), path.size());
  if (::connect(a.fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    int err = errno;
    a.fd.reset();
    if (err == EAGAIN || err == EINTR) {  // the listener's backlog is full: try again soon.
      a.retry_at = Deadline::Clock::now() + kRetryDelay;
      last_error_[a.peer] = absl::StrCat("connect to ", path, ": ", std::strerror(err));
      return absl::OkStatus();
    }
    return MakeError(absl::StatusCode::kUnavailable,
                     absl::StrCat("shm transport: connecting to ", Who(a.peer), " at ", path),
                     std::strerror(err),
                     "the ranks share a host name but not a file system view of /tmp (another "
                     "machine or container?): give each machine a distinct BRAID_HOSTNAME, or "
                     "set BRAID_TRANSPORT=tcp");
  }
  size_t i = index_.at(a.peer);
  if (!SendHello(a.fd.get(), MakeHello(a.peer), out_memfds_[i])) {
    return SystemError(absl::StrCat("shm transport: sending the hello to ", Who(a.peer)), errno);
  }
  return absl::OkStatus();
}

absl::Status Handshaker::Step(Attempt& a, bool& remove) {
  bool closed = false;
  if (!ReadHello(a, &closed)) {
    if (!closed) return absl::OkStatus();
    if (a.dialer) {
      return MakeError(absl::StatusCode::kPermissionDenied,
                       absl::StrCat("shm transport: connecting to ", Who(a.peer)),
                       "it closed the connection after our hello: it refused our secret or "
                       "communicator id, or it is not a rank of this job",
                       "check that every rank was started with the same unique id");
    }
    BRAID_LOG(kWarn, "shm transport: refused a connection that closed before its hello");
    remove = true;
    return absl::OkStatus();
  }
  const Hello& h = a.in;
  if (a.dialer) {
    if (!Valid(h) || h.from != a.peer || !a.memfd) {
      return MakeError(absl::StatusCode::kPermissionDenied,
                       absl::StrCat("shm transport: connecting to ", Who(a.peer)),
                       "the listener is not the expected peer (wrong secret, communicator or "
                       "rank)",
                       "check that every rank uses the same unique id");
    }
    Established(a);
    remove = true;
    return absl::OkStatus();
  }
  auto it = index_.find(h.from);
  if (!Valid(h) || !a.memfd || it == index_.end() || h.from >= p_.rank ||
      result_[it->second].socket) {
    BRAID_LOG(kWarn, "shm transport: refused a connection claiming rank ", h.from,
              ": wrong secret, communicator or rank");
    remove = true;
    return absl::OkStatus();
  }
  a.peer = h.from;
  if (!SendHello(a.fd.get(), MakeHello(a.peer), out_memfds_[it->second])) {
    return SystemError(absl::StrCat("shm transport: answering the hello of ", Who(a.peer)), errno);
  }
  Established(a);
  remove = true;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<PeerLink>> Handshaker::Run(std::span<const Blob> blobs,
                                                      Deadline deadline) {
  std::vector<Attempt> attempts;
  size_t expected_accepts = 0;
  result_.resize(peers_.size());
  for (size_t i = 0; i < peers_.size(); ++i) {
    int peer = peers_[i];
    if (peer == p_.rank || peer < 0 || static_cast<size_t>(peer) >= blobs.size() ||
        index_.count(peer)) {
      return absl::InvalidArgumentError(absl::StrCat("shm connect: bad or duplicate peer rank ",
                                                     peer, " (own rank ", p_.rank, ")"));
    }
    index_[peer] = i;
    if (peer < p_.rank) {
      ++expected_accepts;
      continue;
    }
    BRAID_ASSIGN_OR_RETURN(ListenBlob blob, DecodeListenBlob(blobs[peer]));
    paths_[peer] = blob.path;
    Attempt& a = attempts.emplace_back();
    a.dialer = true;
    a.peer = peer;
  }
  std::vector<pollfd> fds;
  while (established_ < peers_.size()) {
    auto now = Deadline::Clock::now();
    for (Attempt& a : attempts) {
      if (a.dialer && !a.fd && a.retry_at <= now) BRAID_RETURN_IF_ERROR(Dial(a));
    }
    fds.clear();
    fds.push_back({expected_accepts > 0 ? listen_fd_ : -1, POLLIN, 0});
    for (Attempt& a : attempts) fds.push_back({a.fd ? a.fd.get() : -1, POLLIN, 0});
    if (deadline.expired()) break;
    int rc = poll(fds.data(), fds.size(), deadline.remaining_ms(static_cast<int>(kRetryDelay.count())));
    if (rc < 0 && errno != EINTR) return SystemError("poll during shm connect", errno);
    for (size_t i = 0; i < attempts.size(); ++i) {
      if (fds[i + 1].fd < 0 || fds[i + 1].revents == 0) continue;
      bool remove = false;
      BRAID_RETURN_IF_ERROR(Step(attempts[i], remove));
      if (remove) attempts[i].peer = -2;
    }
    std::erase_if(attempts, [](const Attempt& a) { return a.peer == -2; });
    if (fds[0].revents & POLLIN) {
      while (true) {
        int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        Attempt& a = attempts.emplace_back();
        a.fd.reset(fd);
      }
    }
  }
  if (established_ < peers_.size()) {
    std::string missing;
    for (size_t i = 0; i < peers_.size(); ++i) {
      if (result_[i].socket) continue;
      absl::StrAppend(&missing, missing.empty() ? "" : "; ", Who(peers_[i]),
                      peers_[i] < p_.rank ? " never dialed us" : " never answered");
      if (last_error_.count(peers_[i])) absl::StrAppend(&missing, " (", last_error_[peers_[i]], ")");
    }
    return MakeError(absl::StatusCode::kDeadlineExceeded, "shm transport connect",
                     absl::StrCat("timed out: ", missing),
                     "check that those ranks are running and use the same unique id");
  }
  return std::move(result_);
}

}  // namespace

Blob EncodeListenBlob(const ListenBlob& blob) {
  Blob out(8);
  uint32_t magic = kBlobMagic, boot = static_cast<uint32_t>(blob.boot_id.size());
  std::memcpy(out.data(), &magic, 4);
  std::memcpy(out.data() + 4, &boot, 4);
  auto append = [&](const std::string& s) {
    const auto* b = reinterpret_cast<const std::byte*>(s.data());
    out.insert(out.end(), b, b + s.size());
  };
  append(blob.boot_id);
  append(blob.path);
  return out;
}

absl::StatusOr<ListenBlob> DecodeListenBlob(const Blob& blob) {
  uint32_t magic = 0, boot = 0;
  if (blob.size() >= 8) {
    std::memcpy(&magic, blob.data(), 4);
    std::memcpy(&boot, blob.data() + 4, 4);
  }
  if (blob.size() < 8 || magic != kBlobMagic || blob.size() - 8 < boot ||
      blob.size() - 8 - boot >= sizeof(sockaddr_un::sun_path)) {
    return absl::DataLossError("shm transport: malformed address blob (mixed Braid versions?)");
  }
  const char* p = reinterpret_cast<const char*>(blob.data()) + 8;
  return ListenBlob{std::string(p, boot), std::string(p + boot, blob.size() - 8 - boot)};
}

std::string ReadBootId() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

absl::StatusOr<std::vector<PeerLink>> Handshake(const HandshakeParams& params, int listen_fd,
                                                std::span<const int> peers,
                                                std::span<const int> out_memfds,
                                                std::span<const Blob> blobs, Deadline deadline) {
  Handshaker handshaker(params, listen_fd, peers, out_memfds);
  return handshaker.Run(blobs, deadline);
}

}  // namespace braid::shm
