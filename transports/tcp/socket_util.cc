#include "transports/tcp/socket_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/status.h"

namespace braid::tcp {
namespace {

// Socket buffer size: large enough for a bandwidth-delay product on fast links and for several
// MiB in flight on loopback.
constexpr int kSocketBufferBytes = 4 << 20;

bool MatchesSpec(std::string_view name, std::string_view spec) {
  if (spec.empty()) {
    return !(name.starts_with("lo") || name.starts_with("docker") || name.starts_with("virbr"));
  }
  bool exclude = spec.front() == '^';
  if (exclude) spec.remove_prefix(1);
  bool exact = !spec.empty() && spec.front() == '=';
  if (exact) spec.remove_prefix(1);
  bool hit = false;
  for (absl::string_view item : absl::StrSplit(absl::string_view(spec.data(), spec.size()), ',', absl::SkipEmpty())) {
    std::string_view it(item.data(), item.size());
    if (exact ? name == it : name.starts_with(it)) hit = true;
  }
  return exclude ? !hit : hit;
}

}  // namespace

absl::StatusOr<SocketAddress> MakeSocketAddress(const std::string& ip, uint16_t port) {
  SocketAddress address;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&address.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&address.storage);
  if (inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    address.length = sizeof(sockaddr_in);
    return address;
  }
  if (inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    address.length = sizeof(sockaddr_in6);
    return address;
  }
  return absl::InvalidArgumentError(absl::StrCat("'", ip, "' is not a numeric IP address"));
}

std::string AddressToString(const SocketAddress& address) {
  char text[INET6_ADDRSTRLEN] = {0};
  if (address.family() == AF_INET) {
    auto* v4 = reinterpret_cast<const sockaddr_in*>(&address.storage);
    inet_ntop(AF_INET, &v4->sin_addr, text, sizeof(text));
    return absl::StrCat(text, ":", ntohs(v4->sin_port));
  }
  auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address.storage);
  inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof(text));
  return absl::StrCat("[", text, "]:", ntohs(v6->sin6_port));
}

uint16_t AddressPort(const SocketAddress& address) {
  if (address.family() == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&address.storage)->sin_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in6*>(&address.storage)->sin6_port);
}

absl::StatusOr<std::string> SelectListenAddress(const std::string& ifname_spec) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return SystemError("getifaddrs", errno);
  std::string v4, v6;
  std::vector<std::string> seen;
  for (ifaddrs* ifa = list; ifa != nullptr; ifa = ifa->ifa_next) {
    if (ifa->ifa_addr == nullptr || !(ifa->ifa_flags & IFF_UP)) continue;
    int family = ifa->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    seen.push_back(ifa->ifa_name);
    if (!MatchesSpec(ifa->ifa_name, ifname_spec)) continue;
    char text[INET6_ADDRSTRLEN] = {0};
    if (family == AF_INET && v4.empty()) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(ifa->ifa_addr)->sin_addr, text,
                sizeof(text));
      v4 = text;
    } else if (family == AF_INET6 && v6.empty()) {
      auto* a6 = reinterpret_cast<sockaddr_in6*>(ifa->ifa_addr);
      if (IN6_IS_ADDR_LINKLOCAL(&a6->sin6_addr)) continue;  // needs a scope id; skip.
      inet_ntop(AF_INET6, &a6->sin6_addr, text, sizeof(text));
      v6 = text;
    }
  }
  freeifaddrs(list);
  if (!v4.empty()) return v4;
  if (!v6.empty()) return v6;
  if (ifname_spec.empty()) return std::string("127.0.0.1");
  return absl::FailedPreconditionError(absl::StrCat(
      "BRAID_SOCKET_IFNAME='", ifname_spec, "' matches no interface that is up with an address; "
      "interfaces found: ", absl::StrJoin(seen, ", "), ". Remedy: fix BRAID_SOCKET_IFNAME"));
}

absl::StatusOr<UniqueFd> NewTcpSocket(int family) {
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return SystemError("socket()", errno);
  int size = kSocketBufferBytes;
  // Best effort: the kernel clamps to net.core.{w,r}mem_max. 0 keeps kernel autotuning.
  if (size > 0) {
    setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  }
  return fd;
}

absl::Status TuneConnectedSocket(int fd) {
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
    return SystemError("setsockopt(TCP_NODELAY)", errno);
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    return SystemError("fcntl(O_NONBLOCK)", errno);
  }
  return absl::OkStatus();
}

}  // namespace braid::tcp
