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

}  // namespace braid
