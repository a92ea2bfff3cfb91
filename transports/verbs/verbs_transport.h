// The InfiniBand verbs / RoCE transport: RC queue pairs on one RDMA port, eager messages through
// pre-registered staging slots and rendezvous RDMA writes into receiver buffers for large ones.
// Entry points used by transports/registry.cc.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "transports/transport.h"

namespace braid {

ProbeResult ProbeVerbsTransport(const Config& config);
absl::StatusOr<std::unique_ptr<Transport>> CreateVerbsTransport(const TransportContext& context);

}  // namespace braid
