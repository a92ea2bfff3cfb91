// Socket helpers private to the bootstrap: address resolution, an owning fd, connect with retry
// and deadline-bounded (poll-based) reads and writes on non-blocking sockets.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/deadline.h"
#include "core/unique_fd.h"

namespace braid::bootstrap {


struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family() const { return storage.ss_family; }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

// "host:port", or "[host]:port" when host is an IPv6 literal.
std::string FormatHostPort(absl::string_view host, uint16_t port);

// Resolves `host` (numeric or a name; "" = wildcard when `passive`) to its first address.
absl::StatusOr<SocketAddress> ResolveAddress(const std::string& host, uint16_t port, bool passive);

// The numeric host of `address` ("10.0.0.1", "fe80::1"), and its port.
std::string NumericHost(const sockaddr* address);
uint16_t AddressPort(const sockaddr* address);
bool IsWildcardHost(absl::string_view host);

absl::Status SetNonBlocking(int fd);

// Fills `out` with cryptographically random bytes (getrandom, absl as fallback).
void FillRandom(std::span<std::byte> out);

// Short description of a duration for messages: "30 s", "1.5 s", "forever".
std::string DescribeSeconds(std::chrono::nanoseconds duration);

// Connects to host:port, retrying refused/unreachable attempts with a small backoff until
// `deadline`. The returned socket is non-blocking with TCP_NODELAY. On timeout the error names
// the address and the last failure, with `remedy`.
absl::StatusOr<UniqueFd> ConnectWithRetry(const std::string& host, uint16_t port, Deadline deadline,
                                          absl::string_view remedy);

// One connect attempt bounded by `deadline`: 0 on success (`out` is then the non-blocking
// socket), else the errno (ETIMEDOUT when the deadline passed).
int ConnectOnce(const SocketAddress& address, Deadline deadline, UniqueFd* out);

// Deadline-bounded I/O on a non-blocking socket. `what` names the exchange for messages,
// e.g. "the challenge from the bootstrap root at 10.0.0.1:29500". A peer that closes reports
// Unavailable; a timeout DeadlineExceeded.
absl::Status WriteFully(int fd, std::span<const std::byte> data, Deadline deadline,
                        absl::string_view what);
absl::Status ReadFully(int fd, std::span<std::byte> data, Deadline deadline,
                       absl::string_view what);

}  // namespace braid::bootstrap
