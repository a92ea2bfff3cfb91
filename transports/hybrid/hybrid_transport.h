// The node-aware composite transport: peers on this rank's host go through the host-local
// transport (shm), all others through the network transport. Collectives see one transport
// and one Connection per peer, exactly as with any other transport.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "transports/transport.h"

namespace braid {

absl::StatusOr<std::unique_ptr<Transport>> CreateHybridTransport(
    const TransportContext& context, std::unique_ptr<Transport> local,
    std::unique_ptr<Transport> network);

}  // namespace braid
