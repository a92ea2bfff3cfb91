// Connection establishment for the TCP transport: for each pair the lower rank dials, the
// higher accepts, and both prove the communicator secret in a hello before any data flows.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/deadline.h"
#include "transports/tcp/socket_util.h"
#include "transports/transport.h"

namespace braid::tcp {

struct HandshakeParams {
  int rank = 0;
  uint64_t comm_id = 0;
  std::span<const std::byte> secret;
  std::span<const std::string> hosts;  // for error messages; may be empty.
  int nstreams = 1;
};

// Returns, for each entry of `peers`, its `nstreams` connected sockets ordered by stream index.
// Connections that fail the hello (wrong secret, communicator, rank or version) are refused
// and logged; accepting continues until every expected socket arrived or `deadline` passes.
absl::StatusOr<std::vector<std::vector<UniqueFd>>> EstablishSockets(
    const HandshakeParams& params, int listen_fd, std::span<const int> peers,
    std::span<const Blob> blobs, Deadline deadline);

}  // namespace braid::tcp
