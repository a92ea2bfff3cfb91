// The rendezvous root's knobs, private to the bootstrap and its tests: how long an
// unauthenticated connection may stay silent, and how long the rendezvous and each AllGather
// round may take before the root gives up and tells every rank why.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bootstrap/bootstrap.h"
#include "bootstrap/tcp/socket.h"

namespace braid::bootstrap {

struct RootOptions {
  std::chrono::milliseconds handshake_timeout{5000};
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};  // BRAID_TIMEOUT (seconds).
};

// Defaults, with `timeout` from BRAID_TIMEOUT when it is set to a positive number of seconds.
RootOptions DefaultRootOptions();

// StartRoot with explicit options; an empty `secret` means a fresh random one.
absl::StatusOr<UniqueId> StartRootWithOptions(const std::string& bind_host, uint16_t port,
                                              std::span<const std::byte> secret,
                                              const RootOptions& options);

// Serves one rendezvous on `listen_fd` until every rank has left or it fails or times out.
// Owns all its state, touches no global state: the process may exit while it runs.
void ServeRendezvous(UniqueFd listen_fd, std::vector<std::byte> secret, RootOptions options);

}  // namespace braid::bootstrap
