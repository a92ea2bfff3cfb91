#include "collectives/context.h"

#include "absl/strings/str_cat.h"
#include "core/status.h"

namespace braid {
namespace {

absl::Status Annotate(const CollectiveContext& ctx, const absl::Status& status, int peer) {
  if (status.ok()) return status;
  std::string who = peer >= 0 ? absl::StrCat(" with ", DescribeRank(peer, ctx.host(peer))) : "";
  return absl::Status(status.code(),
                      absl::StrCat(ctx.operation, " on rank ", ctx.rank, who, ": ",
                                   status.message()));
}

}  // namespace

absl::Status WaitWithPeer(const CollectiveContext& ctx, const RequestPtr& request, int peer) {
  if (request->done() && request->status().ok()) return absl::OkStatus();
  return Annotate(ctx, ctx.engine->Wait(request, ctx.deadline, "exchange"), peer);
}

absl::Status WaitForProgress(const CollectiveContext& ctx) {
  return Annotate(ctx, ctx.engine->Poll(), -1);
}

absl::Status WaitAllWithPeer(const CollectiveContext& ctx, std::span<const RequestPtr> requests,
                             int peer) {
  return Annotate(ctx, ctx.engine->WaitAll(requests, ctx.deadline, "exchange"), peer);
}

}  // namespace braid
