// Choosing the RDMA device, port and GID for the verbs transport: BRAID_IB_HCA filtering
// (NCCL_IB_HCA syntax), RoCE v2 GID selection from sysfs, and the memlock limit check. The
// parsing and selection are pure functions over names and a sysfs tree, so they are unit-tested
// without RDMA hardware.
#pragma once

#include <infiniband/verbs.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/config.h"

namespace braid::verbs {

// "mlx5_0:1,mlx5_1" selects by name prefix (optionally one port); "^..." excludes those;
// "=..." matches names exactly ("^=" both).
struct HcaFilter {
  struct Item {
    std::string name;
    int port = -1;  // -1: every port.
  };
  bool exclude = false;
  bool exact = false;
  std::vector<Item> items;
};
HcaFilter ParseHcaFilter(absl::string_view spec);
bool HcaSelected(const HcaFilter& filter, absl::string_view device, int port);

// Picks the GID index for RoCE from SYSFS_PORT_DIR (/sys/class/infiniband/DEV/ports/P): RoCE v2
// entries only, IPv4-mapped preferred, and among those the one whose address is
// `local_address` (the data-path address the communicator chose). NotFound when the port has no
// RoCE v2 GID at all.
absl::StatusOr<int> SelectRoceGid(const std::string& sysfs_port_dir,
                                  const std::string& local_address);

// The device, port and addressing this process uses.
struct PortChoice {
  std::string device;
  int port = 0;
  ibv_port_attr attr{};
  bool ethernet = false;  // RoCE: addressed by GID with a GRH; InfiniBand: by LID.
  int gid_index = 0;
  ibv_gid gid{};
};

// The first active port (device list order, then port order) that BRAID_IB_HCA selects, with
// its GID. `context` receives the opened device. Errors name what was found and the remedy.
absl::StatusOr<PortChoice> ChoosePort(const Config& config, const std::string& local_address,
                                      ibv_context** context);

// Why the transport cannot run here, or empty when a selected active port exists.
std::string WhyNoActivePort(const Config& config);

// RLIMIT_MEMLOCK as text ("unlimited" or "64 KiB"), and whether it is below `needed` for a
// process that cannot lock memory without limit (no CAP_IPC_LOCK).
std::string MemlockLimitText();
bool MemlockTooLow(size_t needed);

}  // namespace braid::verbs
