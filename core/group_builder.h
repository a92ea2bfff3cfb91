// Building a communicator over a set of ranks whose blobs travel some other way than the TCP
// rendezvous: the parent communicator's own connections (braidCommSplit), the application's
// collective (braidCommInitFromAllGather, e.g. MPI), or the survivors of a failure (shrink).
// The caller says who the members are and how to all-gather one blob among them; BuildGroup
// starts the transport, swaps listen blobs through that exchange and connects every member.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/config.h"
#include "core/deadline.h"
#include "transports/transport.h"

namespace braid {

class Communicator;

struct GroupSpec {
  int rank = 0;                     // this rank in the new group.
  int nranks = 1;
  std::vector<std::string> hosts;   // host name of every member, indexed by new rank.
  uint64_t comm_id = 0;             // must differ from every live communicator's id.
  std::vector<std::byte> secret;    // authenticates the transport's connections.
  // The data-path address, or why none could be chosen (published so every member fails alike).
  absl::StatusOr<std::string> local_address;
  Config config;
};

// All-gathers `mine` among the members: returns every member's blob indexed by new rank. Every
// member calls it kBuildGroupExchangeRounds times per BuildGroup (transport addresses, then
// recovery listeners); ranks that share the exchange but join no group must match that.
using BlobExchange =
    std::function<absl::StatusOr<std::vector<Blob>>(const Blob& mine, Deadline deadline)>;

inline constexpr int kBuildGroupExchangeRounds = 2;

absl::StatusOr<std::unique_ptr<Communicator>> BuildGroup(GroupSpec spec,
                                                         const BlobExchange& exchange,
                                                         Deadline deadline);

// The start of every creation entry point: checks 0 <= rank < nranks (naming `api` in the
// error), reads the BRAID_* configuration and applies its log level.
absl::StatusOr<Config> BeginCreation(absl::string_view api, int nranks, int rank);

// A stable id for a derived communicator (split, shrink): FNV-1a over the parent's id and the
// values that make the derivation unique.
uint64_t DeriveCommId(uint64_t parent, std::initializer_list<int64_t> salt);

// All-gathers variable-length blobs with a primitive that only moves equal-sized records
// (MPI_Allgather, the communicator's AllGather): one round of lengths, one of padded records.
using FixedAllGather = std::function<absl::Status(const void* mine, void* all, size_t bytes)>;
absl::StatusOr<std::vector<Blob>> AllGatherBlobs(const Blob& mine, int nranks,
                                                 const FixedAllGather& allgather);

}  // namespace braid

namespace braid {
// A communicator whose creation-time exchange runs over the caller's collective (braid_mpi.h's
// MPI_Allgather): core/init_from_allgather.cc.
absl::StatusOr<std::unique_ptr<Communicator>> CreateFromAllGather(int nranks, int rank,
                                                                  const FixedAllGather& allgather);
}  // namespace braid
