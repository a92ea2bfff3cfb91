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

// For tests (tests/rxe): moves every queue pair of `transport`, a verbs transport, to the error
// state without telling anyone, so its peers' packets go unanswered as if this host had dropped
// off the fabric while its TCP liveness socket stays open.
absl::Status SilenceVerbsTransportForTesting(Transport& transport);

}  // namespace braid
