// The io_uring TCP transport: Braid's always-available fallback. Public entry points used by
// transports/registry.cc (probe + create) and by tests that need a fixed listen address.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "transports/transport.h"

namespace braid {

struct TcpTransportOptions {
  // Numeric IP to listen on and advertise; empty = chosen from BRAID_SOCKET_IFNAME (config).
  std::string listen_address;
};

ProbeResult ProbeTcpTransport(const Config& config);
absl::StatusOr<std::unique_ptr<Transport>> CreateTcpTransport(const TransportContext& context);
absl::StatusOr<std::unique_ptr<Transport>> CreateTcpTransport(const TransportContext& context,
                                                              const TcpTransportOptions& options);

// Streams (sockets) per peer pair used when BRAID_TCP_STREAMS=0.
inline constexpr int kTcpDefaultStreams = 2;

}  // namespace braid
