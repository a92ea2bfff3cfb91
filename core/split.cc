// braidCommSplit without a new global rendezvous: (color, key) and the new transport's listen
// blobs are all-gathered over the parent's own connections, then BuildGroup connects each
// color's members to each other.
#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/communicator.h"
#include "core/group_builder.h"
#include "core/status.h"

namespace braid {

absl::StatusOr<std::unique_ptr<Communicator>> Communicator::Split(int color, int key) {
  if (color < 0 && color != kSplitNoColor) {
    return MakeError(absl::StatusCode::kInvalidArgument, "braidCommSplit",
                     absl::StrCat("rank ", rank_, " passed color ", color),
                     "pass a color >= 0, or BRAID_SPLIT_NOCOLOR to stay out of every group");
  }
  // Every rank of the parent takes part in both rounds, including NOCOLOR ranks, so the
  // parent's collectives stay matched.
  const int64_t split_index = splits_++;
  Deadline deadline = Deadline::After(std::chrono::milliseconds(timeout_ms_.load()));
  int32_t mine[2] = {color, key};
  std::vector<int32_t> all(2 * static_cast<size_t>(nranks_));
  BRAID_RETURN_IF_ERROR(AllGather(mine, all.data(), 2, DataType::kInt32));

  // Members of my color in the new order: by key, ties broken by parent rank (as MPI does).
  std::vector<int> members;  // parent ranks, indexed by new rank.
  for (int r = 0; r < nranks_; ++r) {
    if (color != kSplitNoColor && all[2 * static_cast<size_t>(r)] == color) members.push_back(r);
  }
  std::stable_sort(members.begin(), members.end(), [&](int a, int b) {
    return all[2 * static_cast<size_t>(a) + 1] < all[2 * static_cast<size_t>(b) + 1];
  });

  // Blob rounds over the parent: every parent rank contributes (NOCOLOR ranks an empty blob);
  // each member keeps its own color's blobs.
  FixedAllGather over_parent = [&](const void* send, void* recv, size_t bytes) {
    return AllGather(send, recv, bytes, DataType::kUint8);
  };
  BlobExchange exchange = [&](const Blob& blob, Deadline) -> absl::StatusOr<std::vector<Blob>> {
    BRAID_ASSIGN_OR_RETURN(std::vector<Blob> everyone,
                           AllGatherBlobs(blob, nranks_, over_parent));
    std::vector<Blob> group;
    for (int parent_rank : members) {
      group.push_back(std::move(everyone[static_cast<size_t>(parent_rank)]));
    }
    return group;
  };
  if (color == kSplitNoColor) {
    for (int round = 0; round < kBuildGroupExchangeRounds; ++round) {
      BRAID_RETURN_IF_ERROR(exchange(Blob{}, deadline).status());
    }
    return std::unique_ptr<Communicator>();
  }

  GroupSpec spec;
  spec.nranks = static_cast<int>(members.size());
  spec.rank = static_cast<int>(std::find(members.begin(), members.end(), rank_) - members.begin());
  for (int parent_rank : members) spec.hosts.push_back(hosts_[static_cast<size_t>(parent_rank)]);
  spec.comm_id = DeriveCommId(comm_id_, {split_index, color});
  spec.secret = secret_;
  spec.local_address = local_address_;
  spec.config = config_;
  return BuildGroup(std::move(spec), exchange, deadline);
}

}  // namespace braid
