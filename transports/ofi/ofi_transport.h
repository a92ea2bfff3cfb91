// The ofi transport: Braid over libfabric reliable-datagram (FI_EP_RDM) endpoints, written for
// AWS EFA and proven on any RDM provider (tcp;ofi_rxm, shm). Entry points for the registry.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "transports/transport.h"

namespace braid {

// Usable for automatic selection only with a hardware provider (efa, or any provider that is
// not a software one); software providers run only when BRAID_TRANSPORT=ofi forces them.
ProbeResult ProbeOfiTransport(const Config& config);
absl::StatusOr<std::unique_ptr<Transport>> CreateOfiTransport(const TransportContext& context);

}  // namespace braid
