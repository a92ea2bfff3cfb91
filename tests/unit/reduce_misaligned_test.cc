// Reduce and ScaleForAverage on buffers not aligned to their element size (byte buffers, odd
// numpy offsets): results equal the aligned computation, and UBSan sees no misaligned access.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/reduce.h"

namespace braid {
namespace {

TEST(ReduceMisaligned, MatchesAlignedResultForEveryType) {
  for (int t = 0; t < kNumDataTypes; ++t) {
    DataType type = static_cast<DataType>(t);
    size_t size = DataTypeSize(type);
    if (size == 1) continue;  // bytes are always aligned.
    const size_t count = 5003;  // spans several internal blocks.
    std::vector<std::byte> a(count * size), b(count * size);
    for (size_t i = 0; i < a.size(); ++i) {
      a[i] = std::byte(static_cast<uint8_t>(i * 7 % 61));  // small finite values in any type
      b[i] = std::byte(static_cast<uint8_t>(i * 3 % 59));
    }
    for (int op = 0; op < kNumRedOps; ++op) {
      std::vector<std::byte> want(count * size);
      Reduce(want.data(), a.data(), b.data(), count, type, static_cast<RedOp>(op));
      ScaleForAverage(want.data(), count, type, 3);
      // The same data one byte off alignment, for each operand in turn.
      for (int which = 0; which < 3; ++which) {
        std::vector<std::byte> sa(count * size + 1), sb(count * size + 1), sd(count * size + 1);
        std::byte* pa = which == 0 ? sa.data() + 1 : sa.data();
        std::byte* pb = which == 1 ? sb.data() + 1 : sb.data();
        std::byte* pd = which == 2 ? sd.data() + 1 : sd.data();
        std::memcpy(pa, a.data(), a.size());
        std::memcpy(pb, b.data(), b.size());
        Reduce(pd, pa, pb, count, type, static_cast<RedOp>(op));
        ScaleForAverage(pd, count, type, 3);
        EXPECT_EQ(std::memcmp(pd, want.data(), want.size()), 0)
            << "type " << t << " op " << op << " misaligned operand " << which;
      }
    }
  }
}

}  // namespace
}  // namespace braid
