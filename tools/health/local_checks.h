// Checks a host can make on its own: which transports can run and why not, RDMA devices and
// their ports, the locked-memory limit RDMA needs, the interface the data path uses, versions.
#pragma once

#include <string>
#include <vector>

#include "tools/health/model.h"

namespace braid::health {

// `transport` is the one the job uses (must be usable); `sysfs_root` is /sys normally (tests
// point it at a fake tree).
std::vector<LocalCheck> RunLocalChecks(const std::string& transport,
                                       const std::string& sysfs_root = "/sys");

}  // namespace braid::health
