// Collective signatures: the check byte every tag carries (cheap, always on) and the full
// agreement round of BRAID_DEBUG=CHECK, which describes both sides of a mismatch.
#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "collectives/context.h"
#include "core/siphash.h"
#include "core/status.h"

namespace braid {
namespace {

// Fixed-size wire form of a signature for the agreement round (host byte order: both ends
// run this code in one job). Names are truncated to 31 bytes.
struct WireSignature {
  char name[32];
  uint64_t sequence;
  uint64_t count;
  int32_t type;
  int32_t op;
  int32_t root;
  int32_t reserved;
};
static_assert(sizeof(WireSignature) == kWireSignatureBytes);

WireSignature ToWire(const CollectiveSignature& s, uint64_t sequence) {
  WireSignature w{};
  std::memcpy(w.name, s.name.data(), std::min<size_t>(s.name.size(), sizeof(w.name) - 1));
  w.sequence = sequence;
  w.count = s.count;
  w.type = static_cast<int32_t>(s.type);
  w.op = s.op;
  w.root = s.root;
  return w;
}

uint8_t CheckByte(const CollectiveSignature& s) {
  WireSignature w = ToWire(s, 0);
  static const std::array<std::byte, 16> kKey{};  // a hash, not a secret: fixed key.
  uint64_t h = SipHash24(kKey, std::as_bytes(std::span(&w, 1)));
  // Seven bits: the tag's top bit marks point-to-point messages (transport.h).
  return static_cast<uint8_t>((h ^ (h >> 8) ^ (h >> 16) ^ (h >> 24)) & kTagCheckMask);
}

}  // namespace

std::array<std::byte, kWireSignatureBytes> EncodeSignature(const CollectiveSignature& signature,
                                                           uint64_t sequence) {
  WireSignature w = ToWire(signature, sequence);
  std::array<std::byte, kWireSignatureBytes> out;
  std::memcpy(out.data(), &w, sizeof(w));
  return out;
}

absl::StatusOr<CollectiveSignature> DecodeSignature(std::span<const std::byte> bytes,
                                                    uint64_t* sequence) {
  WireSignature w;
  if (bytes.size() != sizeof(w)) {
    return absl::DataLossError(absl::StrCat("collective signature of ", bytes.size(),
                                            " bytes, expected ", sizeof(w)));
  }
  std::memcpy(&w, bytes.data(), sizeof(w));
  if (std::memchr(w.name, 0, sizeof(w.name)) == nullptr || w.reserved != 0) {
    return absl::DataLossError("malformed collective signature");
  }
  CollectiveSignature s;
  s.name = w.name;
  s.count = w.count;
  s.type = static_cast<DataType>(w.type);
  s.op = w.op;
  s.root = w.root;
  *sequence = w.sequence;
  return s;
}

std::string DescribeSignature(const CollectiveSignature& s) {
  int type = static_cast<int>(s.type);
  std::string text = absl::StrCat(s.name, "(", type >= 0 && type < kNumDataTypes
                                                   ? std::string(DataTypeName(s.type))
                                                   : absl::StrCat("datatype ", type),
                                  ", ", s.count, " elements");
  if (s.op >= 0) {
    absl::StrAppend(&text, ", op ", s.op < kNumRedOps ? std::string(RedOpName(static_cast<RedOp>(s.op)))
                                                      : absl::StrCat(s.op));
  }
  if (s.root >= 0) absl::StrAppend(&text, ", root ", s.root);
  return text + ")";
}

absl::Status BeginCollective(CollectiveContext& ctx, const CollectiveSignature& signature) {
  ctx.check = CheckByte(signature);
  if (!ctx.agreement_round || ctx.nranks == 1) return absl::OkStatus();
  // Every rank sends its call to every other: O(n) small messages, for debugging only. The
  // round's tags carry check byte 0 so that disagreeing ranks still match each other here.
  uint8_t check = ctx.check;
  ctx.check = 0;
  const uint64_t tag = ctx.tag(CollectiveContext::kReservedStep, 0);
  ctx.check = check;
  auto mine = EncodeSignature(signature, ctx.sequence);
  std::vector<std::array<std::byte, kWireSignatureBytes>> theirs(static_cast<size_t>(ctx.nranks));
  std::vector<RequestPtr> requests;
  for (int r = 0; r < ctx.nranks; ++r) {
    if (r == ctx.rank) continue;
    BRAID_ASSIGN_OR_RETURN(RequestPtr recv,
                           ctx.peer(r).irecv(theirs[r].data(), kWireSignatureBytes, tag));
    BRAID_ASSIGN_OR_RETURN(RequestPtr send,
                           ctx.peer(r).isend(mine.data(), kWireSignatureBytes, tag));
    requests.push_back(recv);
    requests.push_back(send);
  }
  BRAID_RETURN_IF_ERROR(WaitAllWithPeer(ctx, requests, -1));
  for (int r = 0; r < ctx.nranks; ++r) {
    if (r == ctx.rank) continue;
    const auto& other = theirs[static_cast<size_t>(r)];
    if (other == mine) continue;
    uint64_t other_sequence = 0;
    absl::StatusOr<CollectiveSignature> decoded = DecodeSignature(other, &other_sequence);
    std::string theirs_text = decoded.ok() ? DescribeSignature(*decoded)
                                           : std::string(decoded.status().message());
    return MakeError(
        absl::StatusCode::kInvalidArgument,
        absl::StrCat("BRAID_DEBUG=CHECK: ", ctx.operation, " on rank ", ctx.rank),
        absl::StrCat("collective mismatch: this rank called ", DescribeSignature(signature),
                     " as collective #", ctx.sequence, " but ", DescribeRank(r, ctx.host(r)),
                     " called ", theirs_text, " as collective #", other_sequence),
        "make every rank issue the same collectives with the same arguments in the same order");
  }
  return absl::OkStatus();
}

}  // namespace braid
