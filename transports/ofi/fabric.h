// libfabric resources of the ofi transport: choosing the provider and its NICs (fi_getinfo with
// the capabilities, mode and mr_mode bits EFA demands), one rail (domain, endpoint, completion
// queue, address vector) per NIC, and memory registration that honours the mr_mode returned.
#pragma once

#include <rdma/fabric.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/config.h"

namespace braid::ofi {

// The libfabric API version Braid asks for: the headers' own, so an EFA install (>= 1.18)
// enables device RDMA by default.
inline constexpr uint32_t kFabricVersion = FI_VERSION(FI_MAJOR_VERSION, FI_MINOR_VERSION);

// "tcp;ofi_rxm" -> "tcp": the provider that drives the device.
std::string CoreProvider(const char* prov_name);
// Providers that are software over the kernel's sockets or shared memory (not a NIC).
bool IsSoftwareProvider(const std::string& core);

struct InfoDeleter {
  void operator()(fi_info* info) const { fi_freeinfo(info); }
};
using InfoPtr = std::unique_ptr<fi_info, InfoDeleter>;

// The provider's offers, one fi_info per NIC (distinct domain), best provider first: the one
// named by BRAID_OFI_PROVIDER (or FI_PROVIDER), else efa, else the first non-shm provider.
// `nics` (BRAID_OFI_NICS) keeps a count or named subset. Errors say which capability failed.
struct FabricChoice {
  InfoPtr all;                    // owns the list the pointers below point into.
  std::vector<fi_info*> nics;     // one per rail.
  std::string provider;           // e.g. "tcp;ofi_rxm".
};
absl::StatusOr<FabricChoice> ChooseFabric(const Config& config, std::string* tried = nullptr);

// One NIC: its domain, endpoint, completion queue (TX and RX) and address vector.
class Rail {
 public:
  ~Rail();
  static absl::StatusOr<std::unique_ptr<Rail>> Open(fi_info* info, int index, bool strict);

  // Registers [base, base+length) for send/recv on this rail (binding it to the endpoint when
  // FI_MR_ENDPOINT applies). Returns null without error when registration is not needed.
  absl::StatusOr<fid_mr*> Register(const void* base, size_t length, bool always = false);
  bool needs_local_mr() const { return local_mr_; }

  fi_info* info = nullptr;
  int index = 0;
  fid_fabric* fabric = nullptr;
  fid_domain* domain = nullptr;
  fid_ep* ep = nullptr;
  fid_cq* cq = nullptr;
  fid_av* av = nullptr;
  int wait_fd = -1;                // the CQ's wait object, or -1 when the provider has none.
  std::vector<std::byte> address;  // fi_getname.
  size_t max_msg = 0;              // largest message (max_msg_size).
  // One-sided writes: FI_RMA with remote CQ data granted, and MR addresses that are virtual
  // addresses (FI_MR_VIRT_ADDR), so a peer's advertised pointer is the write target as is.
  bool can_write = false;

 private:
  bool local_mr_ = false;          // FI_MR_LOCAL (or strict): descriptors on every operation.
  bool bind_mr_ = false;           // FI_MR_ENDPOINT: bind and enable each MR.
  bool prov_key_ = false;          // FI_MR_PROV_KEY.
  bool rma_ = false;               // FI_RMA granted: MRs are also write sources and targets.
  uint64_t next_key_ = 1;          // unique requested keys (tcp < 2.2 insists on them).
};

// "what failed: fi_strerror (code)".
std::string FabricError(const char* call, int rc);

}  // namespace braid::ofi
