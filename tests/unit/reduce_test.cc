// Reduce and ScaleForAverage for every datatype x operation against a scalar reference written
// here, compared bit for bit (any two NaNs count as equal: payloads are hardware-specific).
#include "core/reduce.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "core/datatype.h"
#include "gtest/gtest.h"

namespace braid {

// Readable failure messages for the test parameters (found by argument-dependent lookup).
void PrintTo(DataType type, std::ostream* os) { *os << DataTypeName(type); }
void PrintTo(RedOp op, std::ostream* os) { *os << RedOpName(op); }

namespace {

// ---- Scalar reference ----------------------------------------------------------------------

// Half via GCC's _Float16 (libgcc soft-float); bfloat16 by widening the bits and rounding with
// an explicit remainder test.
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
float RefBf16ToFloat(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }
uint16_t RefFloatToBf16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  if (std::isnan(f)) return 0x7fc0;
  uint32_t kept = bits >> 16;
  const uint32_t dropped = bits & 0xffff;
  if (dropped > 0x8000 || (dropped == 0x8000 && (kept & 1))) ++kept;
  return static_cast<uint16_t>(kept);
}

// Integer ops computed exactly in a wider type, then wrapped modulo 2^bits.
template <typename T>
T Wrap(int64_t exact) {
  return static_cast<T>(static_cast<uint64_t>(exact));
}

template <typename T>
T RefApply(RedOp op, T a, T b) {
  if constexpr (std::is_floating_point_v<T>) {
    switch (op) {
      case RedOp::kSum:
      case RedOp::kAvg:
        return a + b;
      case RedOp::kProd:
        return a * b;
      case RedOp::kMax:
        if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<T>::quiet_NaN();
        return a > b ? a : b;  // ties (+0 vs -0) give the second operand
      case RedOp::kMin:
        if (std::isnan(a) || std::isnan(b)) return std::numeric_limits<T>::quiet_NaN();
        return a < b ? a : b;
    }
  } else if constexpr (sizeof(T) < 8) {
    const int64_t x = a, y = b;  // exact for 8- and 32-bit operands
    switch (op) {
      case RedOp::kSum:
      case RedOp::kAvg:
        return Wrap<T>(x + y);
      case RedOp::kProd:  // uint32 * uint32 can exceed int64; the low 32 bits are exact
        return static_cast<T>(static_cast<uint64_t>(x) * static_cast<uint64_t>(y));
      case RedOp::kMax:
        return x > y ? a : b;
      case RedOp::kMin:
        return x < y ? a : b;
    }
  } else {
    const uint64_t x = static_cast<uint64_t>(a), y = static_cast<uint64_t>(b);
    switch (op) {
      case RedOp::kSum:
      case RedOp::kAvg:
        return static_cast<T>(x + y);
      case RedOp::kProd:
        return static_cast<T>(x * y);
      case RedOp::kMax:
        return a > b ? a : b;
      case RedOp::kMin:
        return a < b ? a : b;
    }
  }
  return T{};
}

// Element-wise reference over raw bytes. Half types go through float.
void RefReduce(std::vector<uint8_t>& out, const uint8_t* a, const uint8_t* b, size_t count,
               DataType type, RedOp op) {
  const size_t size = DataTypeSize(type);
  out.assign(count * size, 0);
  auto typed = [&](auto tag) {
    using T = decltype(tag);
    for (size_t i = 0; i < count; ++i) {
      T x, y;
      std::memcpy(&x, a + i * size, size);
      std::memcpy(&y, b + i * size, size);
      const T r = RefApply<T>(op, x, y);
      std::memcpy(&out[i * size], &r, size);
    }
  };
  auto half = [&](auto to_float, auto from_float) {
    for (size_t i = 0; i < count; ++i) {
      uint16_t x, y;
      std::memcpy(&x, a + i * 2, 2);
      std::memcpy(&y, b + i * 2, 2);
      const uint16_t r = from_float(RefApply<float>(op, to_float(x), to_float(y)));
      std::memcpy(&out[i * 2], &r, 2);
    }
  };
  switch (type) {
    case DataType::kInt8: return typed(int8_t{});
    case DataType::kUint8: return typed(uint8_t{});
    case DataType::kInt32: return typed(int32_t{});
    case DataType::kUint32: return typed(uint32_t{});
    case DataType::kInt64: return typed(int64_t{});
    case DataType::kUint64: return typed(uint64_t{});
    case DataType::kFloat32: return typed(float{});
    case DataType::kFloat64: return typed(double{});
    case DataType::kFloat16: return half(RefHalfToFloat, RefFloatToHalf);
    case DataType::kBfloat16: return half(RefBf16ToFloat, RefFloatToBf16);
  }
}

bool IsNanElement(const uint8_t* p, DataType type) {
  switch (type) {
    case DataType::kFloat32: {
      float f;
      std::memcpy(&f, p, 4);
      return std::isnan(f);
    }
    case DataType::kFloat64: {
      double d;
      std::memcpy(&d, p, 8);
      return std::isnan(d);
    }
    case DataType::kFloat16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0;
    }
    case DataType::kBfloat16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return (h & 0x7f80) == 0x7f80 && (h & 0x7f) != 0;
    }
    default:
      return false;
  }
}

// Index of the first element that differs (NaN == NaN), or -1.
int64_t FirstMismatch(const uint8_t* got, const uint8_t* want, size_t count, DataType type) {
  const size_t size = DataTypeSize(type);
  for (size_t i = 0; i < count; ++i) {
    const uint8_t* g = got + i * size;
    const uint8_t* w = want + i * size;
    if (std::memcmp(g, w, size) == 0) continue;
    if (IsNanElement(g, type) && IsNanElement(w, type)) continue;
    return static_cast<int64_t>(i);
  }
  return -1;
}

// ---- Inputs --------------------------------------------------------------------------------

// Random inputs that cover each type's interesting values: full-range integers (so sums and
// products wrap), and for floating types a mix of ordinary values, exact ties, zeros of both
// signs, subnormals, infinities, NaNs and raw random bit patterns.
std::vector<uint8_t> MakeInput(DataType type, size_t count, uint32_t seed) {
  const size_t size = DataTypeSize(type);
  std::vector<uint8_t> buf(count * size);
  std::mt19937_64 rng(seed);
  auto special_float = [&](uint64_t r) -> double {
    switch (r % 10) {
      case 0: return 0.0;
      case 1: return -0.0;
      case 2: return std::numeric_limits<double>::infinity();
      case 3: return -std::numeric_limits<double>::infinity();
      case 4: return std::numeric_limits<double>::quiet_NaN();
      case 5: return 1e-40;   // float subnormal
      case 6: return 3e-6;    // half subnormal
      case 7: return 65504.0;
      case 8: return 1.0;
      default: return -2.5;
    }
  };
  for (size_t i = 0; i < count; ++i) {
    const uint64_t r = rng();
    const uint64_t kind = r % 16;
    // Ordinary values: small integers and halves give exact ties and cancellation.
    const double ordinary = static_cast<double>(static_cast<int64_t>((r >> 8) % 2001) - 1000) /
                            static_cast<double>(1u << ((r >> 20) % 12));
    const double value = kind == 0 ? special_float(r >> 4) : ordinary;
    uint8_t* p = &buf[i * size];
    switch (type) {
      case DataType::kFloat32: {
        const float f = kind == 1 ? std::bit_cast<float>(static_cast<uint32_t>(r >> 32))
                                  : static_cast<float>(value);
        std::memcpy(p, &f, 4);
        break;
      }
      case DataType::kFloat64: {
        const double d = kind == 1 ? std::bit_cast<double>(rng()) : value;
        std::memcpy(p, &d, 8);
        break;
      }
      case DataType::kFloat16:
      case DataType::kBfloat16: {
        uint16_t h = static_cast<uint16_t>(r >> 40);
        if (kind != 1) {
          const float f = static_cast<float>(value);
          h = type == DataType::kFloat16 ? RefFloatToHalf(f) : RefFloatToBf16(f);
        }
        std::memcpy(p, &h, 2);
        break;
      }
      default: {
        // Integers: mostly raw bits; sometimes small values and the extremes.
        uint64_t v = rng();
        if (kind == 2) v = (r >> 8) % 7;
        if (kind == 3) v = uint64_t{1} << (8 * size - 1);  // most negative / top bit
        if (kind == 4) v = ~uint64_t{0};
        std::memcpy(p, &v, size);  // little-endian: low bytes
        break;
      }
    }
  }
  return buf;
}

// ---- Every type x op, counts, offsets, aliasing --------------------------------------------

constexpr DataType kAllTypes[] = {DataType::kInt8,    DataType::kUint8,   DataType::kInt32,
                                  DataType::kUint32,  DataType::kInt64,   DataType::kUint64,
                                  DataType::kFloat16, DataType::kFloat32, DataType::kFloat64,
                                  DataType::kBfloat16};
constexpr RedOp kAllOps[] = {RedOp::kSum, RedOp::kProd, RedOp::kMax, RedOp::kMin, RedOp::kAvg};

class ReduceAllTest : public ::testing::TestWithParam<std::tuple<DataType, RedOp>> {};

enum class Alias { kNone, kDstIsA, kDstIsB };

// Buffers hold count + 2 elements: one in front so every pointer starts one element past the
// allocation (unaligned for vector loads), and one guard behind that must stay untouched.
void CheckReduce(DataType type, RedOp op, size_t count, Alias alias, std::vector<uint8_t> a,
                 std::vector<uint8_t> b, std::vector<uint8_t> dst,
                 const std::vector<uint8_t>& want) {
  SCOPED_TRACE(::testing::Message() << DataTypeName(type) << " " << RedOpName(op) << " count="
                                    << count << " alias=" << static_cast<int>(alias));
  const size_t size = DataTypeSize(type);

  uint8_t* out = dst.data();
  if (alias == Alias::kDstIsA) out = a.data();
  if (alias == Alias::kDstIsB) out = b.data();
  const std::vector<uint8_t> before = alias == Alias::kDstIsA ? a
                                      : alias == Alias::kDstIsB ? b
                                                                : dst;
  Reduce(out + size, a.data() + size, b.data() + size, count, type, op);

  const int64_t bad = FirstMismatch(out + size, want.data(), count, type);
  ASSERT_EQ(bad, -1) << "first mismatch at element " << bad;
  EXPECT_EQ(std::memcmp(out, before.data(), size), 0) << "wrote before dst";
  EXPECT_EQ(std::memcmp(out + (count + 1) * size, before.data() + (count + 1) * size, size), 0)
      << "wrote past dst";
}

TEST_P(ReduceAllTest, MatchesReference) {
  const auto [type, op] = GetParam();
  const size_t size = DataTypeSize(type);
  uint32_t seed = 1;
  for (size_t count : {size_t{0}, size_t{1}, size_t{3}, size_t{17}, size_t{1000003}}) {
    const std::vector<uint8_t> a = MakeInput(type, count + 2, seed += 7);
    const std::vector<uint8_t> b = MakeInput(type, count + 2, seed += 7);
    const std::vector<uint8_t> dst = MakeInput(type, count + 2, seed += 7);
    std::vector<uint8_t> want;
    RefReduce(want, a.data() + size, b.data() + size, count, type, op);
    for (Alias alias : {Alias::kNone, Alias::kDstIsA, Alias::kDstIsB}) {
      CheckReduce(type, op, count, alias, a, b, dst, want);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllTypesAndOps, ReduceAllTest,
    ::testing::Combine(::testing::ValuesIn(kAllTypes), ::testing::ValuesIn(kAllOps)),
    [](const ::testing::TestParamInfo<ReduceAllTest::ParamType>& info) {
      return std::string(DataTypeName(std::get<0>(info.param))) + "_" +
             std::string(RedOpName(std::get<1>(info.param)));
    });

TEST(ReduceTest, ZeroCountTouchesNothing) {
  Reduce(nullptr, nullptr, nullptr, 0, DataType::kFloat32, RedOp::kSum);
  ScaleForAverage(nullptr, 0, DataType::kFloat16, 4);
}

// ---- Specific semantics --------------------------------------------------------------------

TEST(ReduceTest, IntegerWraparound) {
  const int8_t a8[] = {127, -128, 100, -1};
  const int8_t b8[] = {1, -1, 100, -128};
  int8_t sum8[4], prod8[4];
  Reduce(sum8, a8, b8, 4, DataType::kInt8, RedOp::kSum);
  Reduce(prod8, a8, b8, 4, DataType::kInt8, RedOp::kProd);
  EXPECT_EQ(sum8[0], -128);
  EXPECT_EQ(sum8[1], 127);
  EXPECT_EQ(sum8[2], -56);
  EXPECT_EQ(sum8[3], 127);
  EXPECT_EQ(prod8[0], 127);
  EXPECT_EQ(prod8[1], -128);  // -128 * -1 = 128 wraps to -128
  EXPECT_EQ(prod8[2], 16);    // 10000 mod 256
  EXPECT_EQ(prod8[3], -128);

  const uint8_t au8[] = {255, 200};
  const uint8_t bu8[] = {1, 200};
  uint8_t u8[2];
  Reduce(u8, au8, bu8, 2, DataType::kUint8, RedOp::kSum);
  EXPECT_EQ(u8[0], 0);
  EXPECT_EQ(u8[1], 144);
  Reduce(u8, au8, bu8, 2, DataType::kUint8, RedOp::kProd);
  EXPECT_EQ(u8[0], 255);
  EXPECT_EQ(u8[1], 64);  // 40000 mod 256

  const int32_t a32[] = {std::numeric_limits<int32_t>::max(), std::numeric_limits<int32_t>::min()};
  const int32_t b32[] = {1, -1};
  int32_t r32[2];
  Reduce(r32, a32, b32, 2, DataType::kInt32, RedOp::kSum);
  EXPECT_EQ(r32[0], std::numeric_limits<int32_t>::min());
  EXPECT_EQ(r32[1], std::numeric_limits<int32_t>::max());
  Reduce(r32, a32, a32, 2, DataType::kInt32, RedOp::kProd);
  EXPECT_EQ(r32[0], 1);  // (2^31-1)^2 mod 2^32
  EXPECT_EQ(r32[1], 0);  // 2^62 mod 2^32

  const int64_t a64[] = {std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min()};
  const int64_t b64[] = {1, -1};
  int64_t r64[2];
  Reduce(r64, a64, b64, 2, DataType::kInt64, RedOp::kSum);
  EXPECT_EQ(r64[0], std::numeric_limits<int64_t>::min());
  EXPECT_EQ(r64[1], std::numeric_limits<int64_t>::max());
  Reduce(r64, a64, a64, 2, DataType::kInt64, RedOp::kProd);
  EXPECT_EQ(r64[0], 1);
  EXPECT_EQ(r64[1], 0);

  const uint64_t au64[] = {~uint64_t{0}};
  const uint64_t bu64[] = {2};
  uint64_t ru64[1];
  Reduce(ru64, au64, bu64, 1, DataType::kUint64, RedOp::kSum);
  EXPECT_EQ(ru64[0], 1u);
  Reduce(ru64, au64, bu64, 1, DataType::kUint64, RedOp::kProd);
  EXPECT_EQ(ru64[0], ~uint64_t{1});
}

TEST(ReduceTest, MaxMinPropagateNanFromEitherSide) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float a[] = {nan, 1.0f, nan, -0.0f, 0.0f};
  const float b[] = {1.0f, nan, nan, 0.0f, -0.0f};
  float out[5];
  for (RedOp op : {RedOp::kMax, RedOp::kMin}) {
    Reduce(out, a, b, 5, DataType::kFloat32, op);
    EXPECT_TRUE(std::isnan(out[0]));
    EXPECT_TRUE(std::isnan(out[1]));
    EXPECT_TRUE(std::isnan(out[2]));
    // Equal operands (+0 == -0): the second one wins, as documented.
    EXPECT_FALSE(std::signbit(out[3]));
    EXPECT_TRUE(std::signbit(out[4]));
  }
  uint16_t hout[2];
  for (DataType type : {DataType::kFloat16, DataType::kBfloat16}) {
    const uint16_t one = type == DataType::kFloat16 ? 0x3c00 : 0x3f80;
    const uint16_t nan16 = type == DataType::kFloat16 ? 0x7e00 : 0x7fc0;
    const uint16_t xa[] = {nan16, one};
    const uint16_t xb[] = {one, nan16};
    for (RedOp op : {RedOp::kMax, RedOp::kMin}) {
      Reduce(hout, xa, xb, 2, type, op);
      EXPECT_TRUE(IsNanElement(reinterpret_cast<uint8_t*>(&hout[0]), type));
      EXPECT_TRUE(IsNanElement(reinterpret_cast<uint8_t*>(&hout[1]), type));
    }
  }
}

// Every 16-bit pattern through the vectorized conversions: max(x, x) returns x itself (NaNs
// stay NaN), and x + (-0) is x (for x = -0 too).
TEST(ReduceTest, HalfKernelsPreserveEveryPattern) {
  std::vector<uint16_t> all(65536), neg_zero(65536, 0x8000), out(65536);
  for (uint32_t i = 0; i < 65536; ++i) all[i] = static_cast<uint16_t>(i);
  for (DataType type : {DataType::kFloat16, DataType::kBfloat16}) {
    for (RedOp op : {RedOp::kMax, RedOp::kMin, RedOp::kSum}) {
      const std::vector<uint16_t>& other = op == RedOp::kSum ? neg_zero : all;
      Reduce(out.data(), all.data(), other.data(), all.size(), type, op);
      for (uint32_t i = 0; i < 65536; ++i) {
        const bool nan = IsNanElement(reinterpret_cast<const uint8_t*>(&all[i]), type);
        if (nan) {
          ASSERT_TRUE(IsNanElement(reinterpret_cast<const uint8_t*>(&out[i]), type))
              << DataTypeName(type) << " " << std::hex << i;
        } else {
          ASSERT_EQ(out[i], all[i]) << DataTypeName(type) << " " << RedOpName(op) << " "
                                    << std::hex << i;
        }
      }
    }
  }
}

// Half sums that round: every pair (x, y) of halves with x from a sweep and y a fixed set of
// addends, so ties, subnormal results and overflow to inf are all exercised.
TEST(ReduceTest, HalfSumsRoundLikeReference) {
  for (DataType type : {DataType::kFloat16, DataType::kBfloat16}) {
    std::vector<uint16_t> x(65536), y(65536), out(65536), want(65536);
    for (uint16_t addend : {uint16_t{0x0001}, uint16_t{0x3c00}, uint16_t{0x1400},
                            uint16_t{0x7bff}, uint16_t{0x8401}, uint16_t{0x3555}}) {
      for (uint32_t i = 0; i < 65536; ++i) {
        x[i] = static_cast<uint16_t>(i);
        y[i] = addend;
      }
      Reduce(out.data(), x.data(), y.data(), x.size(), type, RedOp::kSum);
      for (uint32_t i = 0; i < 65536; ++i) {
        float fx, fy;
        if (type == DataType::kFloat16) {
          fx = RefHalfToFloat(x[i]);
          fy = RefHalfToFloat(y[i]);
        } else {
          fx = RefBf16ToFloat(x[i]);
          fy = RefBf16ToFloat(y[i]);
        }
        const uint16_t w =
            type == DataType::kFloat16 ? RefFloatToHalf(fx + fy) : RefFloatToBf16(fx + fy);
        if (IsNanElement(reinterpret_cast<const uint8_t*>(&w), type)) {
          ASSERT_TRUE(IsNanElement(reinterpret_cast<const uint8_t*>(&out[i]), type));
        } else {
          ASSERT_EQ(out[i], w) << DataTypeName(type) << std::hex << " x=" << x[i]
                               << " y=" << addend;
        }
      }
    }
  }
}

// ---- Averages ------------------------------------------------------------------------------

TEST(ScaleForAverageTest, IntegersTruncateTowardZero) {
  int32_t i32[] = {7, -7, 8, std::numeric_limits<int32_t>::min(), 1};
  ScaleForAverage(i32, 5, DataType::kInt32, 2);
  EXPECT_EQ(i32[0], 3);
  EXPECT_EQ(i32[1], -3);
  EXPECT_EQ(i32[2], 4);
  EXPECT_EQ(i32[3], std::numeric_limits<int32_t>::min() / 2);
  EXPECT_EQ(i32[4], 0);

  int8_t i8[] = {-128, 127, -5};
  ScaleForAverage(i8, 3, DataType::kInt8, 3);
  EXPECT_EQ(i8[0], -42);
  EXPECT_EQ(i8[1], 42);
  EXPECT_EQ(i8[2], -1);
  int8_t i8b[] = {-128, 127};
  ScaleForAverage(i8b, 2, DataType::kInt8, 200);  // divisor wider than the type
  EXPECT_EQ(i8b[0], 0);
  EXPECT_EQ(i8b[1], 0);

  uint8_t u8[] = {255, 10};
  ScaleForAverage(u8, 2, DataType::kUint8, 256);
  EXPECT_EQ(u8[0], 0);
  EXPECT_EQ(u8[1], 0);
  uint8_t u8b[] = {255};
  ScaleForAverage(u8b, 1, DataType::kUint8, 4);
  EXPECT_EQ(u8b[0], 63);

  uint32_t u32[] = {0xffffffffu};
  ScaleForAverage(u32, 1, DataType::kUint32, 3);
  EXPECT_EQ(u32[0], 0x55555555u);
  int64_t i64[] = {-9, std::numeric_limits<int64_t>::max()};
  ScaleForAverage(i64, 2, DataType::kInt64, 4);
  EXPECT_EQ(i64[0], -2);
  EXPECT_EQ(i64[1], std::numeric_limits<int64_t>::max() / 4);
  uint64_t u64[] = {~uint64_t{0}};
  ScaleForAverage(u64, 1, DataType::kUint64, 1000);
  EXPECT_EQ(u64[0], ~uint64_t{0} / 1000);
}

TEST(ScaleForAverageTest, FloatsDivide) {
  std::vector<float> f = {3.0f, 1.0f, -0.0f, std::numeric_limits<float>::infinity(), 1e-45f};
  std::vector<float> want;
  for (float v : f) want.push_back(v / 3.0f);
  ScaleForAverage(f.data(), f.size(), DataType::kFloat32, 3);
  for (size_t i = 0; i < f.size(); ++i) {
    EXPECT_EQ(std::bit_cast<uint32_t>(f[i]), std::bit_cast<uint32_t>(want[i])) << i;
  }
  std::vector<double> d = {1.0, 10.0, -7.5};
  ScaleForAverage(d.data(), d.size(), DataType::kFloat64, 7);
  EXPECT_EQ(d[0], 1.0 / 7);
  EXPECT_EQ(d[1], 10.0 / 7);
  EXPECT_EQ(d[2], -7.5 / 7);
}

TEST(ScaleForAverageTest, HalfTypesDivideInFloatAndRound) {
  for (DataType type : {DataType::kFloat16, DataType::kBfloat16}) {
    std::vector<uint16_t> v(65536);
    for (uint32_t i = 0; i < 65536; ++i) v[i] = static_cast<uint16_t>(i);
    std::vector<uint16_t> scaled = v;
    ScaleForAverage(scaled.data(), scaled.size(), type, 3);
    for (uint32_t i = 0; i < 65536; ++i) {
      uint16_t w;
      if (type == DataType::kFloat16) {
        w = RefFloatToHalf(RefHalfToFloat(v[i]) / 3.0f);
      } else {
        w = RefFloatToBf16(RefBf16ToFloat(v[i]) / 3.0f);
      }
      if (IsNanElement(reinterpret_cast<const uint8_t*>(&w), type)) {
        ASSERT_TRUE(IsNanElement(reinterpret_cast<const uint8_t*>(&scaled[i]), type));
      } else {
        ASSERT_EQ(scaled[i], w) << DataTypeName(type) << " " << std::hex << i;
      }
    }
  }
}

TEST(ScaleForAverageTest, AvgIsSumThenScale) {
  // Four ranks' contributions averaged the way a collective does it.
  const float r[4][3] = {{1, 2, 3}, {5, 6, 7}, {9, 10, 11}, {13, 14, 15}};
  float acc[3];
  Reduce(acc, r[0], r[1], 3, DataType::kFloat32, RedOp::kAvg);
  Reduce(acc, acc, r[2], 3, DataType::kFloat32, RedOp::kAvg);
  Reduce(acc, r[3], acc, 3, DataType::kFloat32, RedOp::kAvg);
  ScaleForAverage(acc, 3, DataType::kFloat32, 4);
  EXPECT_EQ(acc[0], 7.0f);
  EXPECT_EQ(acc[1], 8.0f);
  EXPECT_EQ(acc[2], 9.0f);

  int32_t i[2] = {7, -7};
  const int32_t j[2] = {0, 0};
  Reduce(i, i, j, 2, DataType::kInt32, RedOp::kAvg);
  ScaleForAverage(i, 2, DataType::kInt32, 2);
  EXPECT_EQ(i[0], 3);
  EXPECT_EQ(i[1], -3);
}

TEST(ScaleForAverageTest, DivisorOneOrLessLeavesDataAlone) {
  float f[] = {1.5f, -2.0f};
  ScaleForAverage(f, 2, DataType::kFloat32, 1);
  ScaleForAverage(f, 2, DataType::kFloat32, 0);
  ScaleForAverage(f, 2, DataType::kFloat32, -3);
  EXPECT_EQ(f[0], 1.5f);
  EXPECT_EQ(f[1], -2.0f);
}

}  // namespace
}  // namespace braid
