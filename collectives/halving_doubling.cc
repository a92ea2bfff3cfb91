#include "collectives/halving_doubling.h"

#include <algorithm>

#include "core/reduce.h"
#include "core/status.h"

namespace braid {

int Log2Floor(int n) {
  int k = 0;
  while ((2 << k) <= n) ++k;
  return k;
}

VirtualRanks VirtualRanks::For(int n, int rank) {
  VirtualRanks vr;
  vr.p = 1 << Log2Floor(n);
  vr.rem = n - vr.p;
  if (rank < 2 * vr.rem) vr.vrank = rank % 2 == 1 ? rank / 2 : -1;
  else vr.vrank = rank - vr.rem;
  return vr;
}

absl::Status SendRecv(const CollectiveContext& ctx, int to, const void* send, size_t send_len,
                      int from, void* recv, size_t recv_len, uint32_t step) {
  RequestPtr requests[2];
  size_t n = 0;
  if (recv_len) {
    BRAID_ASSIGN_OR_RETURN(requests[n++], ctx.peer(from).irecv(recv, recv_len, ctx.tag(step, 0)));
  }
  if (send_len) {
    BRAID_ASSIGN_OR_RETURN(requests[n++], ctx.peer(to).isend(send, send_len, ctx.tag(step, 0)));
  }
  if (n == 0) return absl::OkStatus();
  return WaitAllWithPeer(ctx, std::span<const RequestPtr>(requests, n),
                         recv_len && send_len && to != from ? -1 : (recv_len ? from : to));
}

absl::Status Exchange(const CollectiveContext& ctx, int peer, const void* send, size_t send_len,
                      void* recv, size_t recv_len, uint32_t step) {
  return SendRecv(ctx, peer, send, send_len, peer, recv, recv_len, step);
}

absl::Status SendTo(const CollectiveContext& ctx, int peer, const void* buf, size_t len,
                    uint32_t step) {
  return Exchange(ctx, peer, buf, len, nullptr, 0, step);
}

absl::Status RecvFrom(const CollectiveContext& ctx, int peer, void* buf, size_t len,
                      uint32_t step) {
  return Exchange(ctx, peer, nullptr, 0, buf, len, step);
}

absl::Status RecursiveHalving(const CollectiveContext& ctx, const VirtualRanks& vr,
                              std::byte* work, const std::vector<size_t>& vbegin, DataType type,
                              RedOp op, uint32_t first_step) {
  const size_t elem = DataTypeSize(type);
  const int v = vr.vrank;
  auto at = [&](int virtual_rank) { return vbegin[static_cast<size_t>(virtual_rank)]; };
  size_t half_max = 0;  // the largest range this rank receives.
  for (int lo = 0, hi = vr.p, mask = vr.p / 2; mask >= 1; mask /= 2) {
    int mid = lo + mask;
    half_max = std::max({half_max, at(mid) - at(lo), at(hi) - at(mid)});
    if (v < mid) hi = mid;
    else lo = mid;
  }
  if (ctx.scratch->size() < half_max * elem) ctx.scratch->resize(half_max * elem);
  std::byte* incoming = ctx.scratch->data();
  uint32_t step = first_step;
  for (int lo = 0, hi = vr.p, mask = vr.p / 2; mask >= 1; mask /= 2, ++step) {
    int mid = lo + mask;
    bool lower = v < mid;
    int keep_lo = lower ? lo : mid, keep_hi = lower ? mid : hi;
    int give_lo = lower ? mid : lo, give_hi = lower ? hi : mid;
    size_t keep = at(keep_hi) - at(keep_lo), give = at(give_hi) - at(give_lo);
    int peer = vr.Real(v ^ mask);
    BRAID_RETURN_IF_ERROR(Exchange(ctx, peer, work + at(give_lo) * elem, give * elem, incoming,
                                   keep * elem, step));
    std::byte* kept = work + at(keep_lo) * elem;
    Reduce(kept, kept, incoming, keep, type, op);
    lo = keep_lo;
    hi = keep_hi;
  }
  return absl::OkStatus();
}

absl::Status RecursiveDoublingGather(const CollectiveContext& ctx, const VirtualRanks& vr,
                                     std::byte* work, const std::vector<size_t>& vbegin,
                                     size_t elem, uint32_t first_step) {
  const int v = vr.vrank;
  auto at = [&](int virtual_rank) { return vbegin[static_cast<size_t>(virtual_rank)]; };
  // Undo the halving in reverse: the step numbers mirror it so each pair's tags are distinct.
  uint32_t step = first_step + static_cast<uint32_t>(Log2Floor(vr.p));
  for (int mask = 1; mask < vr.p; mask *= 2) {
    --step;
    int mine = v - v % mask, theirs = mine ^ mask;
    int peer = vr.Real(v ^ mask);
    size_t my_len = at(mine + mask) - at(mine), their_len = at(theirs + mask) - at(theirs);
    BRAID_RETURN_IF_ERROR(Exchange(ctx, peer, work + at(mine) * elem, my_len * elem,
                                   work + at(theirs) * elem, their_len * elem, step));
  }
  return absl::OkStatus();
}

}  // namespace braid
