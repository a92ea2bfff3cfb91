// Bootstrap: how ranks find each other at communicator creation. Used for out-of-band
// exchange of transport blobs only; never on the data path.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/deadline.h"
#include "transports/transport.h"

namespace braid {

// The decoded form of braidUniqueId (128 bytes on the wire, versioned).
struct UniqueId {
  std::string root_host;            // numeric IPv4/IPv6 address of the rendezvous root.
  uint16_t root_port = 0;
  std::vector<std::byte> secret;    // 16 random bytes; connections must prove they know it.
};
absl::StatusOr<UniqueId> DecodeUniqueId(std::span<const std::byte> bytes);
std::vector<std::byte> EncodeUniqueId(const UniqueId& id);  // exactly 128 bytes.

// Starts a rendezvous root in a background thread listening on `bind_host:port` (port 0 =
// ephemeral) with a fresh secret; it serves one rendezvous (the rank count is learned from the
// first rank and checked against every other) and then exits. Returns the id for every rank.
absl::StatusOr<UniqueId> StartRoot(const std::string& bind_host, uint16_t port);
// The same with a secret every rank already knows (launcher-started jobs: BRAID_SECRET), for
// rank 0 hosting the root on the launcher's fixed port. For both: a bind_host of "" / "0.0.0.0" /
// "::" listens on all addresses and advertises SelectLocalAddress(BRAID_SOCKET_IFNAME, ""). The
// root lives until every rank has called Close() (or disconnected), or until the rendezvous or
// an AllGather round exceeds BRAID_TIMEOUT; the process may exit at any time meanwhile.
absl::StatusOr<UniqueId> StartRoot(const std::string& bind_host, uint16_t port,
                                   std::span<const std::byte> secret);

// Launcher environment: BRAID_RANK/BRAID_WORLD_SIZE/BRAID_ROOT, torchrun's RANK/WORLD_SIZE/
// MASTER_ADDR/MASTER_PORT, Open MPI's OMPI_COMM_WORLD_RANK/SIZE, Slurm's SLURM_PROCID/NTASKS.
struct LaunchEnvironment {
  int rank = -1;
  int world_size = -1;
  std::string root_host;  // may be a hostname; resolved at connect time.
  uint16_t root_port = 0;
  std::string source;     // which launcher's variables were used, e.g. "torchrun".
};
absl::StatusOr<LaunchEnvironment> DetectLaunchEnvironment();
// Same, reading variables through `getenv_fn` (tests inject their own environment).
absl::StatusOr<LaunchEnvironment> DetectLaunchEnvironment(
    const std::function<const char*(const char*)>& getenv_fn);

// This rank's membership in one rendezvous.
class Bootstrap {
 public:
  // Connects to the root named by `id`, proves the secret, sends `rank`/`nranks` and this
  // host's name, and waits until all ranks have joined.
  static absl::StatusOr<std::unique_ptr<Bootstrap>> Join(const UniqueId& id, int rank,
                                                         int nranks, Deadline deadline);
  virtual ~Bootstrap() = default;

  // Every rank contributes `mine`; returns all contributions indexed by rank. Collective.
  virtual absl::StatusOr<std::vector<Blob>> AllGather(const Blob& mine, Deadline deadline) = 0;
  // Host name of every rank (known after Join).
  virtual const std::vector<std::string>& hosts() const = 0;
  // Releases the connection to the root; later AllGather calls fail.
  virtual void Close() = 0;
};

// This rank's host name: BRAID_HOSTNAME if set (network namespaces share the kernel's name),
// else gethostname(). Ranks with equal names are treated as one host.
std::string LocalHostname();

// The local address to listen on for the data path: BRAID_SOCKET_IFNAME's interface (prefix
// match, "^" to exclude, "=" exact, like NCCL_SOCKET_IFNAME), else the interface that routes to
// `root_host`, else the first non-loopback interface that is up, else loopback.
absl::StatusOr<std::string> SelectLocalAddress(const std::string& ifname_spec,
                                               const std::string& root_host);

}  // namespace braid
