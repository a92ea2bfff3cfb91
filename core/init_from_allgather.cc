// Communicator creation when the application already has a collective that can all-gather
// bytes (MPI_Allgather, a framework's store): no rendezvous root, no ports to agree on. One
// fixed-size round carries host names and rank 0's secret, id and address; BuildGroup then swaps
// the transport blobs through the same primitive, which is never used again.
#include <cstring>

#include "absl/strings/str_cat.h"
#include "bootstrap/bootstrap.h"
#include "bootstrap/tcp/socket.h"
#include "core/communicator.h"
#include "core/group_builder.h"
#include "core/log.h"
#include "core/status.h"

namespace braid {
namespace {

struct Introduction {
  uint32_t version = 1;
  int32_t nranks = 0;
  uint64_t comm_id = 0;         // rank 0's choice, used by all.
  std::byte secret[16] = {};    // rank 0's choice, used by all.
  char address[64] = {};        // rank 0's data-path address: the others pick the route to it.
  char host[256] = {};
};

void CopyString(char* dst, size_t size, const std::string& src) {
  std::memset(dst, 0, size);
  std::memcpy(dst, src.data(), std::min(size - 1, src.size()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Communicator>> CreateFromAllGather(int nranks, int rank,
                                                                  const FixedAllGather& allgather) {
  BRAID_ASSIGN_OR_RETURN(Config config,
                         BeginCreation("braidCommInitFromAllGather", nranks, rank));
  Deadline deadline = Deadline::After(config.timeout);

  Introduction mine;
  mine.nranks = nranks;
  CopyString(mine.host, sizeof(mine.host), LocalHostname());
  absl::StatusOr<std::string> rank0_address = std::string();
  if (rank == 0) {
    bootstrap::FillRandom(std::span<std::byte>(mine.secret, sizeof(mine.secret)));
    bootstrap::FillRandom(std::span<std::byte>(reinterpret_cast<std::byte*>(&mine.comm_id), 8));
    rank0_address = SelectLocalAddress(config.socket_ifname, "");
    if (rank0_address.ok()) CopyString(mine.address, sizeof(mine.address), *rank0_address);
  }
  std::vector<Introduction> all(static_cast<size_t>(nranks));
  BRAID_RETURN_IF_ERROR(allgather(&mine, all.data(), sizeof(Introduction)));

  GroupSpec spec;
  spec.rank = rank;
  spec.nranks = nranks;
  for (int r = 0; r < nranks; ++r) {
    const Introduction& theirs = all[static_cast<size_t>(r)];
    std::string host(theirs.host, strnlen(theirs.host, sizeof(theirs.host)));
    if (theirs.version != mine.version || theirs.nranks != nranks) {
      return MakeError(absl::StatusCode::kFailedPrecondition, "braidCommInitFromAllGather",
                       absl::StrCat(DescribeRank(r, host), " announced ", theirs.nranks,
                                    " ranks (version ", theirs.version, ") but rank ", rank,
                                    " has ", nranks, " (version ", mine.version, ")"),
                       "call it collectively with the same group on every rank, same Braid");
    }
    spec.hosts.push_back(std::move(host));
  }
  SetLogIdentity(rank, spec.hosts[static_cast<size_t>(rank)]);
  spec.comm_id = all[0].comm_id;
  spec.secret.assign(all[0].secret, all[0].secret + sizeof(all[0].secret));
  std::string root_address(all[0].address, strnlen(all[0].address, sizeof(all[0].address)));
  spec.local_address =
      rank == 0 ? rank0_address : SelectLocalAddress(config.socket_ifname, root_address);
  spec.config = config;
  BlobExchange exchange = [&](const Blob& blob, Deadline) {
    return AllGatherBlobs(blob, nranks, allgather);
  };
  return BuildGroup(std::move(spec), exchange, deadline);
}

}  // namespace braid
