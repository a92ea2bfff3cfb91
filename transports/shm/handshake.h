// Connection setup of the shm transport. Every rank listens on a unix socket whose path (and
// the host's kernel boot id) is its blob. For each pair the lower rank dials; each side sends
// a hello proving the communicator secret, with the memfd of its outgoing ring attached.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/deadline.h"
#include "core/unique_fd.h"
#include "transports/transport.h"

namespace braid::shm {

struct ListenBlob {
  std::string boot_id;  // /proc/sys/kernel/random/boot_id: same kernel = same host.
  std::string path;     // the unix socket.
};
Blob EncodeListenBlob(const ListenBlob& blob);
absl::StatusOr<ListenBlob> DecodeListenBlob(const Blob& blob);
std::string ReadBootId();

struct HandshakeParams {
  int rank = 0;
  uint64_t comm_id = 0;
  std::span<const std::byte> secret;
  std::span<const std::string> hosts;
};

struct PeerLink {
  UniqueFd socket;
  UniqueFd memfd;  // the peer's outgoing ring.
  pid_t pid = -1;
};

// `out_memfds[i]` is our ring to `peers[i]`. Returns each peer's socket, ring and pid, in the
// order of `peers`. Hellos with the wrong secret or communicator are refused and logged.
absl::StatusOr<std::vector<PeerLink>> Handshake(const HandshakeParams& params, int listen_fd,
                                                std::span<const int> peers,
                                                std::span<const int> out_memfds,
                                                std::span<const Blob> blobs, Deadline deadline);

}  // namespace braid::shm
