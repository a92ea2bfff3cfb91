#include "bootstrap/tcp/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/status.h"

namespace braid::bootstrap {

std::string FormatHostPort(absl::string_view host, uint16_t port) {
  if (host.find(':') != absl::string_view::npos) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

bool IsWildcardHost(absl::string_view host) {
  return host.empty() || host == "0.0.0.0" || host == "::" || host == "*";
}

absl::StatusOr<SocketAddress> ResolveAddress(const std::string& host, uint16_t port, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  addrinfo* result = nullptr;
  std::string service = std::to_string(port);
  const char* node = (passive && (host.empty() || host == "*")) ? nullptr : host.c_str();
  if (passive && node == nullptr) hints.ai_family = AF_INET;
  int rc = ::getaddrinfo(node, service.c_str(), &hints, &result);
  if (rc != 0 || result == nullptr) {
    return MakeError(absl::StatusCode::kInvalidArgument, absl::StrCat("resolve host '", host, "'"),
                     rc == EAI_SYSTEM ? std::strerror(errno) : ::gai_strerror(rc),
                     "use a numeric address or a host name this machine can resolve");
  }
  // Prefer IPv4 when a name has both kinds of address: it is what launchers usually mean.
  const addrinfo* chosen = result;
  for (const addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET) {
      chosen = ai;
      break;
    }
  }
  SocketAddress address;
  std::memcpy(&address.storage, chosen->ai_addr, chosen->ai_addrlen);
  address.length = chosen->ai_addrlen;
  ::freeaddrinfo(result);
  return address;
}

std::string NumericHost(const sockaddr* address) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address->sa_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(address)->sin_addr, text,
                sizeof(text));
  } else if (address->sa_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr, text,
                sizeof(text));
  }
  return text;
}

uint16_t AddressPort(const sockaddr* address) {
  if (address->sa_family == AF_INET)
    return ntohs(reinterpret_cast<const sockaddr_in*>(address)->sin_port);
  if (address->sa_family == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6*>(address)->sin6_port);
  return 0;
}

absl::Status SetNonBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL, 0);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
    return SystemError("make a bootstrap socket non-blocking", errno);
  return absl::OkStatus();
}

void FillRandom(std::span<std::byte> out) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::getrandom(out.data() + done, out.size() - done, 0);
    if (n > 0) {
      done += static_cast<size_t>(n);
    } else if (n < 0 && errno != EINTR) {
      break;
    }
  }
  if (done < out.size()) {
    absl::BitGen gen;  // seeded from the OS entropy pool by absl.
    for (; done < out.size(); ++done)
      out[done] = static_cast<std::byte>(absl::Uniform<unsigned>(gen, 0u, 256u));
  }
}

std::string DescribeSeconds(std::chrono::nanoseconds duration) {
  if (duration == std::chrono::nanoseconds::max()) return "forever";
  double seconds = std::chrono::duration<double>(duration).count();
  return absl::StrFormat("%.3g s", seconds);
}

// One connect attempt bounded by `deadline`. Returns the errno of the failure, 0 on success.
int ConnectOnce(const SocketAddress& address, Deadline deadline, UniqueFd* out) {
  UniqueFd fd(::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return errno;
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (::connect(fd.get(), address.get(), address.length) != 0) {
    if (errno != EINPROGRESS) return errno;
    pollfd p{fd.get(), POLLOUT, 0};
    int rc;
    do {
      rc = ::poll(&p, 1, deadline.remaining_ms(1000));
    } while ((rc < 0 && errno == EINTR) || (rc == 0 && !deadline.expired()));
    if (rc <= 0) return ETIMEDOUT;
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return err;
  }
  *out = std::move(fd);
  return 0;
}

namespace {

bool Retryable(int err) {
  return err == ECONNREFUSED || err == ETIMEDOUT || err == EHOSTUNREACH || err == ENETUNREACH ||
         err == ECONNRESET || err == EAGAIN || err == ECONNABORTED;
}


}  // namespace

absl::StatusOr<UniqueFd> ConnectWithRetry(const std::string& host, uint16_t port, Deadline deadline,
                                          absl::string_view remedy) {
  const std::string where = FormatHostPort(host, port);
  const auto budget = deadline.remaining();
  absl::StatusOr<SocketAddress> address = ResolveAddress(host, port, /*passive=*/false);
  auto backoff = std::chrono::milliseconds(10);
  int last_error = 0;
  while (true) {
    if (address.ok()) {
      UniqueFd fd;
      last_error = ConnectOnce(*address, deadline, &fd);
      if (last_error == 0) return fd;
      if (!Retryable(last_error)) {
        return SystemError(absl::StrCat("connect to the bootstrap root at ", where), last_error,
                           remedy);
      }
    } else {
      // Names may become resolvable a little later (DNS of freshly started nodes).
      address = ResolveAddress(host, port, false);
      if (!address.ok() && deadline.expired()) return address.status();
    }
    if (deadline.expired()) break;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline.remaining());
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(backoff, left));
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::milliseconds(500));
    if (deadline.expired()) break;
  }
  return MakeError(absl::StatusCode::kDeadlineExceeded,
                   absl::StrCat("could not reach the bootstrap root at ", where, " within ",
                                DescribeSeconds(budget)),
                   absl::StrCat("last error: ", last_error ? std::strerror(last_error) : "none"),
                   remedy);
}

namespace {

// Waits until `fd` is ready for `events` or the deadline passes.
absl::Status WaitReady(int fd, short events, Deadline deadline, absl::string_view what,
                       absl::string_view verb) {
  while (true) {
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, deadline.remaining_ms(1000));
    if (rc > 0) return absl::OkStatus();
    if (rc < 0 && errno != EINTR)
      return SystemError(absl::StrCat("poll while ", verb, what), errno);
    if (rc == 0 && deadline.expired()) {
      return MakeError(absl::StatusCode::kDeadlineExceeded, absl::StrCat(verb, what), "timed out");
    }
  }
}

}  // namespace

absl::Status WriteFully(int fd, std::span<const std::byte> data, Deadline deadline,
                        absl::string_view what) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      BRAID_RETURN_IF_ERROR(WaitReady(fd, POLLOUT, deadline, what, "sending "));
      continue;
    }
    return SystemError(absl::StrCat("sending ", what), errno);
  }
  return absl::OkStatus();
}

absl::Status ReadFully(int fd, std::span<std::byte> data, Deadline deadline,
                       absl::string_view what) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::recv(fd, data.data() + done, data.size() - done, 0);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) {
      return MakeError(absl::StatusCode::kUnavailable, absl::StrCat("receiving ", what),
                       "the connection was closed by the other side");
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      BRAID_RETURN_IF_ERROR(WaitReady(fd, POLLIN, deadline, what, "receiving "));
      continue;
    }
    return SystemError(absl::StrCat("receiving ", what), errno);
  }
  return absl::OkStatus();
}

}  // namespace braid::bootstrap
