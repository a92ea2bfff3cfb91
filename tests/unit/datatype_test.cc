// Datatype names, sizes and the half/bfloat16 conversions, checked against references written
// here: GCC's _Float16 (libgcc soft-float, round to nearest even) for IEEE half, and a
// nearest-candidate search in double for bfloat16.
#include "core/datatype.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace braid {
namespace {

// ---- Names, sizes, enum ranges -------------------------------------------------------------

TEST(DataTypeTest, NamesFollowNcclTests) {
  EXPECT_EQ(DataTypeName(DataType::kInt8), "int8");
  EXPECT_EQ(DataTypeName(DataType::kUint8), "uint8");
  EXPECT_EQ(DataTypeName(DataType::kInt32), "int32");
  EXPECT_EQ(DataTypeName(DataType::kUint32), "uint32");
  EXPECT_EQ(DataTypeName(DataType::kInt64), "int64");
  EXPECT_EQ(DataTypeName(DataType::kUint64), "uint64");
  EXPECT_EQ(DataTypeName(DataType::kFloat16), "half");
  EXPECT_EQ(DataTypeName(DataType::kFloat32), "float");
  EXPECT_EQ(DataTypeName(DataType::kFloat64), "double");
  EXPECT_EQ(DataTypeName(DataType::kBfloat16), "bfloat16");
  EXPECT_EQ(RedOpName(RedOp::kSum), "sum");
  EXPECT_EQ(RedOpName(RedOp::kProd), "prod");
  EXPECT_EQ(RedOpName(RedOp::kMax), "max");
  EXPECT_EQ(RedOpName(RedOp::kMin), "min");
  EXPECT_EQ(RedOpName(RedOp::kAvg), "avg");
}

TEST(DataTypeTest, NameRoundTrips) {
  for (int i = 0; i < kNumDataTypes; ++i) {
    const std::optional<DataType> type = DataTypeFromInt(i);
    ASSERT_TRUE(type.has_value()) << i;
    EXPECT_EQ(static_cast<int>(*type), i);
    EXPECT_EQ(DataTypeFromName(DataTypeName(*type)), type) << DataTypeName(*type);
  }
  for (int i = 0; i < kNumRedOps; ++i) {
    const std::optional<RedOp> op = RedOpFromInt(i);
    ASSERT_TRUE(op.has_value()) << i;
    EXPECT_EQ(static_cast<int>(*op), i);
    EXPECT_EQ(RedOpFromName(RedOpName(*op)), op) << RedOpName(*op);
  }
}

TEST(DataTypeTest, AliasesAndUnknownNames) {
  EXPECT_EQ(DataTypeFromName("float16"), DataType::kFloat16);
  EXPECT_EQ(DataTypeFromName("fp16"), DataType::kFloat16);
  EXPECT_EQ(DataTypeFromName("float32"), DataType::kFloat32);
  EXPECT_EQ(DataTypeFromName("float64"), DataType::kFloat64);
  EXPECT_EQ(DataTypeFromName("bf16"), DataType::kBfloat16);
  EXPECT_EQ(DataTypeFromName(""), std::nullopt);
  EXPECT_EQ(DataTypeFromName("int16"), std::nullopt);
  EXPECT_EQ(DataTypeFromName("floatx"), std::nullopt);
  EXPECT_EQ(RedOpFromName("average"), std::nullopt);
  EXPECT_EQ(RedOpFromName(""), std::nullopt);
}

TEST(DataTypeTest, IntRangeAndSizes) {
  EXPECT_EQ(DataTypeFromInt(-1), std::nullopt);
  EXPECT_EQ(DataTypeFromInt(kNumDataTypes), std::nullopt);
  EXPECT_EQ(RedOpFromInt(-1), std::nullopt);
  EXPECT_EQ(RedOpFromInt(kNumRedOps), std::nullopt);
  EXPECT_EQ(DataTypeSize(DataType::kInt8), 1u);
  EXPECT_EQ(DataTypeSize(DataType::kUint8), 1u);
  EXPECT_EQ(DataTypeSize(DataType::kInt32), 4u);
  EXPECT_EQ(DataTypeSize(DataType::kUint32), 4u);
  EXPECT_EQ(DataTypeSize(DataType::kInt64), 8u);
  EXPECT_EQ(DataTypeSize(DataType::kUint64), 8u);
  EXPECT_EQ(DataTypeSize(DataType::kFloat16), 2u);
  EXPECT_EQ(DataTypeSize(DataType::kFloat32), 4u);
  EXPECT_EQ(DataTypeSize(DataType::kFloat64), 8u);
  EXPECT_EQ(DataTypeSize(DataType::kBfloat16), 2u);
}

// ---- References ----------------------------------------------------------------------------

float RefHalfToFloat(uint16_t bits) {
  _Float16 h;
  std::memcpy(&h, &bits, sizeof h);
  return static_cast<float>(h);
}

uint16_t RefFloatToHalf(float f) {
  const _Float16 h = static_cast<_Float16>(f);
  uint16_t bits;
  std::memcpy(&bits, &h, sizeof bits);
  return bits;
}

double RefBfloat16Value(uint16_t b) {  // finite patterns only
  const int exponent = (b >> 7) & 0xff;
  const int mantissa = b & 0x7f;
  const double magnitude = exponent == 0 ? std::ldexp(mantissa, -133)
                                         : std::ldexp(128 + mantissa, exponent - 134);
  return (b & 0x8000) ? -magnitude : magnitude;
}

// Nearest bfloat16 to a finite float, ties to the even pattern, by comparing the two
// candidates that bracket it in double (exact for these magnitudes).
uint16_t RefFloatToBfloat16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const uint16_t down = static_cast<uint16_t>(bits >> 16);  // toward zero
  const uint16_t up = static_cast<uint16_t>(down + 1);       // away from zero (may be inf)
  const double x = std::fabs(static_cast<double>(f));
  const double lo = std::fabs(RefBfloat16Value(down));
  const double hi = ((up & 0x7fff) == 0x7f80) ? std::ldexp(1.0, 128) : std::fabs(RefBfloat16Value(up));
  const double d_lo = x - lo;
  const double d_hi = hi - x;
  if (d_lo < d_hi) return down;
  if (d_hi < d_lo) return up;
  return (down & 1) ? up : down;
}

bool HalfIsNan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x03ff) != 0; }
bool Bf16IsNan(uint16_t b) { return (b & 0x7f80) == 0x7f80 && (b & 0x007f) != 0; }
uint32_t Bits(float f) { return std::bit_cast<uint32_t>(f); }

// ---- Exhaustive over all 16-bit patterns ---------------------------------------------------

TEST(HalfTest, AllPatternsWidenExactlyAndRoundTrip) {
  for (uint32_t i = 0; i <= 0xffff; ++i) {
    const uint16_t h = static_cast<uint16_t>(i);
    const float f = HalfToFloat(h);
    if (HalfIsNan(h)) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << i;
      ASSERT_TRUE(HalfIsNan(FloatToHalf(f))) << std::hex << i;
      ASSERT_EQ(std::signbit(f), (h & 0x8000) != 0) << std::hex << i;
      continue;
    }
    ASSERT_EQ(Bits(f), Bits(RefHalfToFloat(h))) << std::hex << i;
    ASSERT_EQ(FloatToHalf(f), h) << std::hex << i;
  }
}

TEST(Bfloat16Test, AllPatternsWidenExactlyAndRoundTrip) {
  for (uint32_t i = 0; i <= 0xffff; ++i) {
    const uint16_t b = static_cast<uint16_t>(i);
    const float f = Bfloat16ToFloat(b);
    if (Bf16IsNan(b)) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << i;
      ASSERT_TRUE(Bf16IsNan(FloatToBfloat16(f))) << std::hex << i;
      continue;
    }
    if ((b & 0x7fff) != 0x7f80) {
      ASSERT_EQ(static_cast<double>(f), RefBfloat16Value(b)) << std::hex << i;
    } else {
      ASSERT_TRUE(std::isinf(f)) << std::hex << i;
    }
    ASSERT_EQ(FloatToBfloat16(f), b) << std::hex << i;
  }
}

// Every midpoint between adjacent half values (the tie cases) and its float neighbours, for
// all finite halves including subnormals and the overflow threshold 65520.
TEST(HalfTest, EveryMidpointAndNeighbourMatchesReference) {
  for (uint32_t i = 0; i < 0x7c00; ++i) {
    const double lo = RefHalfToFloat(static_cast<uint16_t>(i));
    const double hi = i + 1 == 0x7c00 ? 65536.0 : RefHalfToFloat(static_cast<uint16_t>(i + 1));
    const float mid = static_cast<float>((lo + hi) / 2);  // 12 significant bits: exact
    ASSERT_EQ(static_cast<double>(mid), (lo + hi) / 2);
    for (float f : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e9f),
                    static_cast<float>(lo), -mid, -std::nextafter(mid, 1e9f)}) {
      ASSERT_EQ(FloatToHalf(f), RefFloatToHalf(f)) << std::hexfloat << f;
    }
  }
}

TEST(HalfTest, SampledFloatsMatchReference) {
  // A stride through all 2^32 patterns (odd, so every exponent and low-bit pattern shows up)
  // plus random patterns.
  for (uint64_t bits = 0; bits <= 0xffffffffu; bits += 40009) {
    const float f = std::bit_cast<float>(static_cast<uint32_t>(bits));
    if (std::isnan(f)) {
      ASSERT_TRUE(HalfIsNan(FloatToHalf(f))) << std::hex << bits;
    } else {
      ASSERT_EQ(FloatToHalf(f), RefFloatToHalf(f)) << std::hex << bits;
    }
  }
  std::mt19937 rng(1234);
  for (int i = 0; i < 200000; ++i) {
    // Concentrate on the half range: exponent in [2^-26, 2^17).
    const uint32_t bits = (rng() & 0x807fffffu) | ((101u + rng() % 43u) << 23);
    const float f = std::bit_cast<float>(bits);
    ASSERT_EQ(FloatToHalf(f), RefFloatToHalf(f)) << std::hexfloat << f;
  }
}

TEST(Bfloat16Test, EveryMidpointAndSampledFloatsMatchReference) {
  for (uint32_t i = 0; i < 0x7f80; ++i) {
    const uint32_t base = i << 16;
    for (uint32_t low : {0x0000u, 0x0001u, 0x7fffu, 0x8000u, 0x8001u, 0xffffu}) {
      for (uint32_t sign : {0u, 0x80000000u}) {
        const float f = std::bit_cast<float>(sign | base | low);
        ASSERT_EQ(FloatToBfloat16(f), RefFloatToBfloat16(f)) << std::hex << (sign | base | low);
      }
    }
  }
  std::mt19937 rng(99);
  for (int i = 0; i < 200000; ++i) {
    const float f = std::bit_cast<float>(static_cast<uint32_t>(rng()));
    if (std::isnan(f)) {
      ASSERT_TRUE(Bf16IsNan(FloatToBfloat16(f)));
    } else if (!std::isinf(f)) {
      ASSERT_EQ(FloatToBfloat16(f), RefFloatToBfloat16(f)) << std::hexfloat << f;
    }
  }
}

// ---- Hand-picked rounding cases ------------------------------------------------------------

TEST(HalfTest, RoundToNearestEvenTies) {
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(1.0f + 0x1p-11f), 0x3c00);             // tie: down to even
  EXPECT_EQ(FloatToHalf(1.0f + 3 * 0x1p-11f), 0x3c02);         // tie: up to even
  EXPECT_EQ(FloatToHalf(std::nextafter(1.0f + 0x1p-11f, 2.0f)), 0x3c01);  // above the tie
  EXPECT_EQ(FloatToHalf(-(1.0f + 0x1p-11f)), 0xbc00);
  EXPECT_EQ(FloatToHalf(2047.0f + 0.5f), 0x6800);              // 2047.5 -> 2048 (even)
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);                    // largest finite
  EXPECT_EQ(FloatToHalf(65519.0f), 0x7bff);
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7c00);                    // tie with "65536": to inf
  EXPECT_EQ(FloatToHalf(-65520.0f), 0xfc00);
  EXPECT_EQ(FloatToHalf(1e10f), 0x7c00);                       // overflow
  // Subnormals: units of 2^-24.
  EXPECT_EQ(FloatToHalf(0x1p-24f), 0x0001);
  EXPECT_EQ(FloatToHalf(0x1p-25f), 0x0000);                    // tie: to even zero
  EXPECT_EQ(FloatToHalf(std::nextafter(0x1p-25f, 1.0f)), 0x0001);
  EXPECT_EQ(FloatToHalf(-0x1p-25f), 0x8000);                   // keeps the sign
  EXPECT_EQ(FloatToHalf(3 * 0x1p-25f), 0x0002);                // 1.5 units: to even 2
  EXPECT_EQ(FloatToHalf(5 * 0x1p-25f), 0x0002);                // 2.5 units: to even 2
  EXPECT_EQ(FloatToHalf(1023.5f * 0x1p-24f), 0x0400);          // rounds up into the normals
  EXPECT_EQ(FloatToHalf(0x1p-14f), 0x0400);                    // smallest normal
  EXPECT_EQ(FloatToHalf(1e-30f), 0x0000);
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
}

TEST(HalfTest, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(FloatToHalf(inf), 0x7c00);
  EXPECT_EQ(FloatToHalf(-inf), 0xfc00);
  EXPECT_TRUE(HalfIsNan(FloatToHalf(std::numeric_limits<float>::quiet_NaN())));
  // A signalling NaN whose payload lives only in the low bits must not turn into inf.
  EXPECT_TRUE(HalfIsNan(FloatToHalf(std::bit_cast<float>(0x7f800001u))));
  EXPECT_TRUE(HalfIsNan(FloatToHalf(std::bit_cast<float>(0xff800001u))));
  EXPECT_EQ(FloatToHalf(std::bit_cast<float>(0xff800001u)) & 0x8000, 0x8000);
  EXPECT_TRUE(std::isinf(HalfToFloat(0x7c00)));
  EXPECT_EQ(HalfToFloat(0x0001), 0x1p-24f);
  EXPECT_EQ(HalfToFloat(0x03ff), 1023 * 0x1p-24f);
  EXPECT_EQ(HalfToFloat(0x7bff), 65504.0f);
  EXPECT_EQ(Bits(HalfToFloat(0x8000)), 0x80000000u);
}

TEST(Bfloat16Test, RoundToNearestEvenTies) {
  EXPECT_EQ(FloatToBfloat16(1.0f), 0x3f80);
  EXPECT_EQ(FloatToBfloat16(1.0f + 0x1p-8f), 0x3f80);          // tie: down to even
  EXPECT_EQ(FloatToBfloat16(1.0f + 3 * 0x1p-8f), 0x3f82);      // tie: up to even
  EXPECT_EQ(FloatToBfloat16(std::nextafter(1.0f + 0x1p-8f, 2.0f)), 0x3f81);
  EXPECT_EQ(FloatToBfloat16(-(1.0f + 3 * 0x1p-8f)), 0xbf82);
  EXPECT_EQ(FloatToBfloat16(std::numeric_limits<float>::max()), 0x7f80);  // overflow to inf
  EXPECT_EQ(FloatToBfloat16(std::bit_cast<float>(0x7f7f7fffu)), 0x7f7f);  // just below tie
  EXPECT_EQ(FloatToBfloat16(std::bit_cast<float>(0x00008000u)), 0x0000);  // subnormal tie
  EXPECT_EQ(FloatToBfloat16(std::bit_cast<float>(0x00018000u)), 0x0002);
  EXPECT_EQ(FloatToBfloat16(std::bit_cast<float>(0x00008001u)), 0x0001);
  EXPECT_EQ(FloatToBfloat16(-0.0f), 0x8000);
}

TEST(Bfloat16Test, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(FloatToBfloat16(inf), 0x7f80);
  EXPECT_EQ(FloatToBfloat16(-inf), 0xff80);
  EXPECT_TRUE(Bf16IsNan(FloatToBfloat16(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(Bf16IsNan(FloatToBfloat16(std::bit_cast<float>(0x7f800001u))));
  EXPECT_TRUE(Bf16IsNan(FloatToBfloat16(std::bit_cast<float>(0x7fffffffu))));  // no carry
  EXPECT_TRUE(Bf16IsNan(FloatToBfloat16(std::bit_cast<float>(0xffffffffu))));
  EXPECT_EQ(Bfloat16ToFloat(0x3f80), 1.0f);
  EXPECT_EQ(Bfloat16ToFloat(0x0001), std::bit_cast<float>(0x00010000u));
}

}  // namespace
}  // namespace braid
