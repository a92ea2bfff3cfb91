// Hierarchical AllReduce. Each host's lowest rank is its leader. Phase 1: the other ranks of
// the host send their buffers to the leader in chunks, which it reduces as they arrive. Phase
// 2: the leaders run the ordinary (selected) AllReduce among themselves, so only one rank per
// host crosses the network and the network collective has one participant per host. Phase 3:
// each leader sends the result to its host's ranks. Every rank ends with the leaders' bits,
// which the flat algorithm already makes identical on all leaders.
#include <algorithm>
#include <cstring>
#include <map>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "collectives/collectives.h"
#include "collectives/hierarchical.h"
#include "core/log.h"
#include "core/reduce.h"
#include "core/status.h"

namespace braid {
namespace {

constexpr size_t kDefaultChunkBytes = 1 << 20;
constexpr uint32_t kReduceStep = 1, kBroadcastStep = 2;

// Ranks of each host (ascending), hosts in order of their lowest rank.
std::vector<std::vector<int>> RanksByHost(const CollectiveContext& ctx) {
  std::map<absl::string_view, size_t> index;
  std::vector<std::vector<int>> groups;
  for (int r = 0; r < ctx.nranks; ++r) {
    auto [it, fresh] = index.emplace(ctx.host(r), groups.size());
    if (fresh) groups.emplace_back();
    groups[it->second].push_back(r);
  }
  return groups;
}

// Splits `bytes` into element-aligned chunks that fit the tag's chunk bits.
size_t ChunkBytes(const CollectiveContext& ctx, size_t bytes, size_t elem) {
  size_t chunk = ctx.chunk_bytes > 0 ? ctx.chunk_bytes : kDefaultChunkBytes;
  chunk = std::max(elem, chunk / elem * elem);
  while ((bytes + chunk - 1) / chunk >= CollectiveContext::kMaxChunksPerStep) chunk *= 2;
  return chunk;
}

}  // namespace

bool UseHierarchicalAllReduce(const CollectiveContext& ctx) {
  if (ctx.hosts == nullptr || ctx.nranks < 3 || ctx.hosts->size() != static_cast<size_t>(ctx.nranks)) {
    return false;
  }
  // Runs on every AllReduce: the one-host case (the most common) costs one pass of compares.
  const auto& hosts = *ctx.hosts;
  if (std::all_of(hosts.begin(), hosts.end(), [&](const std::string& h) { return h == hosts[0]; })) {
    return false;
  }
  std::unordered_set<std::string_view> distinct(hosts.begin(), hosts.end());
  return distinct.size() < hosts.size();
}

absl::Status HierarchicalAllReduce(const CollectiveContext& ctx, const void* send, void* recv,
                                   size_t count, DataType type, RedOp op) {
  const size_t elem = DataTypeSize(type), bytes = count * elem;
  if (send != recv && count) std::memcpy(recv, send, bytes);
  if (count == 0) return absl::OkStatus();
  const auto groups = RanksByHost(ctx);
  std::vector<int> leaders;
  const std::vector<int>* mine = nullptr;
  for (const auto& group : groups) {
    leaders.push_back(group.front());
    if (std::find(group.begin(), group.end(), ctx.rank) != group.end()) mine = &group;
  }
  const int leader = mine->front();
  const bool is_leader = leader == ctx.rank;
  BRAID_LOG(kTrace, ctx.operation, ": hierarchical over ", groups.size(), " hosts, ",
            mine->size(), " rank(s) on this one, leader rank ", leader);
  const size_t chunk = ChunkBytes(ctx, bytes, elem);
  const uint32_t nchunks = static_cast<uint32_t>((bytes + chunk - 1) / chunk);
  auto* data = static_cast<std::byte*>(recv);
  auto chunk_len = [&](uint32_t c) { return std::min(chunk, bytes - c * chunk); };

  // Phase 1: reduce into the leader. All chunks of one member are posted at once, then
  // reduced in order as they land, so transfer and reduction overlap.
  if (is_leader) {
    if (ctx.scratch->size() < bytes) ctx.scratch->resize(bytes);
    std::byte* incoming = ctx.scratch->data();
    for (size_t m = 1; m < mine->size(); ++m) {
      const int member = (*mine)[m];
      std::vector<RequestPtr> requests(nchunks);
      for (uint32_t c = 0; c < nchunks; ++c) {
        BRAID_ASSIGN_OR_RETURN(requests[c], ctx.peer(member).irecv(incoming + c * chunk,
                                                                    chunk_len(c),
                                                                    ctx.tag(kReduceStep, c)));
      }
      for (uint32_t c = 0; c < nchunks; ++c) {
        BRAID_RETURN_IF_ERROR(WaitWithPeer(ctx, requests[c], member));
        Reduce(data + c * chunk, data + c * chunk, incoming + c * chunk, chunk_len(c) / elem,
               type, op);
      }
    }
  } else {
    std::vector<RequestPtr> requests(nchunks);
    for (uint32_t c = 0; c < nchunks; ++c) {
      BRAID_ASSIGN_OR_RETURN(requests[c], ctx.peer(leader).isend(data + c * chunk, chunk_len(c),
                                                                 ctx.tag(kReduceStep, c)));
    }
    BRAID_RETURN_IF_ERROR(WaitAllWithPeer(ctx, requests, leader));
  }

  // Phase 2: the leaders' AllReduce, on a context whose ranks are the leaders. Averages are
  // summed there and divided once by the full rank count.
  if (is_leader) {
    CollectiveContext sub = ctx;
    std::vector<Connection*> peers(leaders.size(), nullptr);
    std::vector<std::string> hosts(leaders.size());
    for (size_t i = 0; i < leaders.size(); ++i) {
      if (leaders[i] == ctx.rank) sub.rank = static_cast<int>(i);
      else peers[i] = ctx.peers[static_cast<size_t>(leaders[i])];
      hosts[i] = std::string(ctx.host(leaders[i]));
    }
    sub.nranks = static_cast<int>(leaders.size());
    sub.peers = peers;
    sub.hosts = &hosts;
    sub.operation = absl::StrCat(ctx.operation, " among the host leaders (ranks ",
                                 absl::StrJoin(leaders, ","), "; peers numbered by leader)");
    BRAID_RETURN_IF_ERROR(
        AllReduce(sub, data, data, count, type, op == RedOp::kAvg ? RedOp::kSum : op));
    if (op == RedOp::kAvg) ScaleForAverage(data, count, type, ctx.nranks);
  }

  // Phase 3: the leader hands the result to its host's ranks.
  std::vector<RequestPtr> requests;
  if (is_leader) {
    for (size_t m = 1; m < mine->size(); ++m) {
      for (uint32_t c = 0; c < nchunks; ++c) {
        BRAID_ASSIGN_OR_RETURN(RequestPtr s, ctx.peer((*mine)[m]).isend(
                                                 data + c * chunk, chunk_len(c),
                                                 ctx.tag(kBroadcastStep, c)));
        requests.push_back(std::move(s));
      }
    }
    return WaitAllWithPeer(ctx, requests, mine->size() == 2 ? (*mine)[1] : -1);
  }
  for (uint32_t c = 0; c < nchunks; ++c) {
    BRAID_ASSIGN_OR_RETURN(RequestPtr r, ctx.peer(leader).irecv(data + c * chunk, chunk_len(c),
                                                                ctx.tag(kBroadcastStep, c)));
    requests.push_back(std::move(r));
  }
  return WaitAllWithPeer(ctx, requests, leader);
}

}  // namespace braid
