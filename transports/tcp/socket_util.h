// Small POSIX socket helpers for the TCP transport: an owning fd, address parsing, listen-address
// selection (BRAID_SOCKET_IFNAME semantics) and per-socket tuning.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/unique_fd.h"

namespace braid::tcp {


struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family() const { return storage.ss_family; }
};

absl::StatusOr<SocketAddress> MakeSocketAddress(const std::string& ip, uint16_t port);
std::string AddressToString(const SocketAddress& address);  // "ip:port" / "[ip6]:port".
uint16_t AddressPort(const SocketAddress& address);

// Numeric address to listen on: the first address of the interface chosen by `ifname_spec`
// (NCCL_SOCKET_IFNAME syntax: "eth,ib" prefixes, "^docker" excludes, "=eth0" exact), else the
// first up non-loopback interface (IPv4 preferred), else loopback.
absl::StatusOr<std::string> SelectListenAddress(const std::string& ifname_spec);

// Non-blocking, close-on-exec TCP socket of `family` with Braid's buffer sizes set (before
// connect/listen, so window scaling sees them).
absl::StatusOr<UniqueFd> NewTcpSocket(int family);
// TCP_NODELAY and the like on a connected socket.
absl::Status TuneConnectedSocket(int fd);

}  // namespace braid::tcp
