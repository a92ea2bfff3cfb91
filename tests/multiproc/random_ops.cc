#include "tests/multiproc/random_ops.h"

#include <cstring>

#include "tests/multiproc/rank_harness.h"
#include "tests/multiproc/reference.h"

namespace braid::testing {
namespace {

size_t RandomCount(std::mt19937_64& rng, size_t max_count) {
  switch (rng() % 4) {
    case 0: return rng() % 3;                          // 0, 1, 2
    case 1: return rng() % 64;
    case 2: return rng() % std::min<size_t>(max_count, 2048) + 1;
    default: return rng() % max_count + 1;
  }
}

std::string Describe(const char* name, braidDataType_t t, size_t count, int extra) {
  return std::string(name) + "(type " + std::to_string(t) + ", count " + std::to_string(count) +
         ", op/root " + std::to_string(extra) + ")";
}

}  // namespace

std::string RunRandomCollective(std::mt19937_64& rng, int rank, int n, braidComm_t comm,
                                const RandomOpLimits& limits, braidResult_t* rc) {
  const int kind = static_cast<int>(rng() % 5);
  const braidDataType_t t = kTypes[rng() % std::size(kTypes)];
  const braidRedOp_t op = kOps[rng() % std::size(kOps)];
  const size_t count = RandomCount(rng, limits.max_count);
  const int root = static_cast<int>(rng() % static_cast<uint64_t>(n));
  const size_t size = TypeSize(t);
  std::vector<std::byte> out, want;
  std::string what;
  switch (kind) {
    case 0: {  // AllReduce, in place half of the time.
      what = Describe("AllReduce", t, count, op);
      std::vector<std::byte> in = MakeInput(t, op, rank, n, count);
      out = in;
      bool inplace = rng() % 2;
      *rc = braidAllReduce(inplace ? out.data() : in.data(), out.data(), count, t, op, comm);
      want.resize(count * size);
      for (size_t i = 0; i < count; ++i) StoreExpected(want.data(), i, t, op, n);
      break;
    }
    case 1: {  // AllGather of each rank's sum input.
      what = Describe("AllGather", t, count, -1);
      std::vector<std::byte> in = MakeInput(t, braidSum, rank, n, count);
      out.resize(count * size * n);
      *rc = braidAllGather(in.data(), out.data(), count, t, comm);
      for (int r = 0; r < n; ++r) {
        std::vector<std::byte> part = MakeInput(t, braidSum, r, n, count);
        want.insert(want.end(), part.begin(), part.end());
      }
      break;
    }
    case 2: {  // ReduceScatter: rank r gets block r of the reduction.
      what = Describe("ReduceScatter", t, count, op);
      std::vector<std::byte> in = MakeInput(t, op, rank, n, count * n);
      out.resize(count * size);
      *rc = braidReduceScatter(in.data(), out.data(), count, t, op, comm);
      want.resize(count * size);
      for (size_t i = 0; i < count; ++i) StoreExpected(want.data(), i, t, op, n, rank * count + i);
      break;
    }
    case 3: {  // Broadcast of the root's input.
      what = Describe("Broadcast", t, count, root);
      want = MakeInput(t, braidSum, root, n, count);
      out.assign(count * size, std::byte{0x5a});
      *rc = braidBroadcast(rank == root ? want.data() : nullptr, out.data(), count, t, root, comm);
      break;
    }
    default:
      what = "Barrier";
      *rc = braidBarrier(comm);
      return *rc == braidSuccess ? "" : what + ": " + ResultText(*rc);
  }
  if (*rc != braidSuccess) return what + ": " + ResultText(*rc);
  long long bad = FirstMismatch(out.data(), want.data(), want.size() / size, t);
  if (bad >= 0) return what + ": WRONG RESULT at element " + std::to_string(bad);
  return "";
}

}  // namespace braid::testing
