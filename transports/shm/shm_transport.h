// The shared-memory transport: ranks on one host exchange through rings in shared memory
// (memfd), and large messages are read straight from the sender's buffer (process_vm_readv).
// Public entry points used by transports/registry.cc (probe + create).
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "transports/transport.h"

namespace braid {

ProbeResult ProbeShmTransport(const Config& config);
absl::StatusOr<std::unique_ptr<Transport>> CreateShmTransport(const TransportContext& context);

// For a composite holding `shm`: another transport of this rank failed for `why`. Instead of
// a clean goodbye, shm peers are then told why this rank gives up, so their errors name the
// rank that really failed rather than this one.
void AbandonShmPeers(Transport& shm, const absl::Status& why);

}  // namespace braid
