// The ofi transport when Braid was configured without libfabric: the registry still lists it,
// and its probe says how to get it.
#include "transports/ofi/ofi_transport.h"

namespace braid {
namespace {
constexpr const char* kNotBuilt =
    "Braid was built without libfabric (install libfabric-dev, or configure with "
    "-DBRAID_LIBFABRIC_ROOT=/opt/amazon/efa, and rebuild)";
}  // namespace

ProbeResult ProbeOfiTransport(const Config&) { return ProbeResult{false, kNotBuilt}; }

absl::StatusOr<std::unique_ptr<Transport>> CreateOfiTransport(const TransportContext&) {
  return absl::FailedPreconditionError(kNotBuilt);
}

}  // namespace braid
