// Host-aware (hierarchical) AllReduce: reduce inside each host, AllReduce among one leader per
// host, broadcast inside each host. Inside a host the traffic goes over whatever the transport
// routes there (shared memory with the hybrid transport); only leaders touch the network.
#pragma once

#include <cstddef>

#include "absl/status/status.h"
#include "collectives/context.h"
#include "core/datatype.h"

namespace braid {

// True when ranks share hosts and more than one host is present (ctx.hosts).
bool UseHierarchicalAllReduce(const CollectiveContext& ctx);

absl::Status HierarchicalAllReduce(const CollectiveContext& ctx, const void* send, void* recv,
                                   size_t count, DataType type, RedOp op);

}  // namespace braid
