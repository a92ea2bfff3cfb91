#include "core/datatype.h"

#include <array>
#include <bit>
#include <cmath>
#include <utility>

namespace braid {
namespace {

struct TypeInfo {
  DataType type;
  size_t size;
  std::string_view name;  // nccl-tests spelling
};

constexpr std::array<TypeInfo, kNumDataTypes> kTypes = {{
    {DataType::kInt8, 1, "int8"},
    {DataType::kUint8, 1, "uint8"},
    {DataType::kInt32, 4, "int32"},
    {DataType::kUint32, 4, "uint32"},
    {DataType::kInt64, 8, "int64"},
    {DataType::kUint64, 8, "uint64"},
    {DataType::kFloat16, 2, "half"},
    {DataType::kFloat32, 4, "float"},
    {DataType::kFloat64, 8, "double"},
    {DataType::kBfloat16, 2, "bfloat16"},
}};

// Extra spellings accepted by DataTypeFromName only; DataTypeName never returns them.
constexpr std::array<std::pair<std::string_view, DataType>, 7> kTypeAliases = {{
    {"float16", DataType::kFloat16},
    {"fp16", DataType::kFloat16},
    {"float32", DataType::kFloat32},
    {"fp32", DataType::kFloat32},
    {"float64", DataType::kFloat64},
    {"fp64", DataType::kFloat64},
    {"bf16", DataType::kBfloat16},
}};

constexpr std::array<std::string_view, kNumRedOps> kOpNames = {"sum", "prod", "max", "min",
                                                               "avg"};

// The table is indexed by the enum value; keep the two in step.
static_assert([] {
  for (int i = 0; i < kNumDataTypes; ++i) {
    if (static_cast<int>(kTypes[i].type) != i) return false;
  }
  return true;
}());

}  // namespace

std::optional<DataType> DataTypeFromInt(int value) {
  if (value < 0 || value >= kNumDataTypes) return std::nullopt;
  return static_cast<DataType>(value);
}

std::optional<RedOp> RedOpFromInt(int value) {
  if (value < 0 || value >= kNumRedOps) return std::nullopt;
  return static_cast<RedOp>(value);
}

size_t DataTypeSize(DataType type) {
  const int i = static_cast<int>(type);
  return (i >= 0 && i < kNumDataTypes) ? kTypes[i].size : 0;
}

std::string_view DataTypeName(DataType type) {
  const int i = static_cast<int>(type);
  return (i >= 0 && i < kNumDataTypes) ? kTypes[i].name : std::string_view("unknown");
}

std::string_view RedOpName(RedOp op) {
  const int i = static_cast<int>(op);
  return (i >= 0 && i < kNumRedOps) ? kOpNames[i] : std::string_view("unknown");
}

std::optional<DataType> DataTypeFromName(std::string_view name) {
  for (const TypeInfo& info : kTypes) {
    if (info.name == name) return info.type;
  }
  for (const auto& [alias, type] : kTypeAliases) {
    if (alias == name) return type;
  }
  return std::nullopt;
}

std::optional<RedOp> RedOpFromName(std::string_view name) {
  for (int i = 0; i < kNumRedOps; ++i) {
    if (kOpNames[i] == name) return static_cast<RedOp>(i);
  }
  return std::nullopt;
}

// These scalar conversions are written for clarity; core/reduce.cc has branch-free copies
// that vectorize, and the unit tests check the two agree on every half/bfloat16 pattern.

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) {  // inf, or NaN with its payload (quiet bit included) kept
    return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  }
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24, exact in float
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return std::bit_cast<float>(sign | std::bit_cast<uint32_t>(magnitude));
  }
  return std::bit_cast<float>(sign | ((exponent + 127 - 15) << 23) | (mantissa << 13));
}

uint16_t FloatToHalf(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7fffffffu;
  const uint32_t exponent = magnitude >> 23;  // biased float exponent
  if (magnitude > 0x7f800000u) {
    // NaN: keep the top payload bits and force the quiet bit so it cannot become inf.
    return static_cast<uint16_t>(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
  }
  if (exponent >= 127 + 16) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65536 or inf

  // Value = m * 2^(exponent - 150) with the implicit bit included. In half the result is
  // m >> shift units of the half's last place; round the dropped bits to nearest even.
  uint32_t m = (magnitude & 0x7fffffu) | (exponent != 0 ? 0x800000u : 0u);
  uint32_t shift;
  uint32_t base;  // half exponent field contribution
  if (exponent >= 127 - 14) {  // normal half: keep 10 mantissa bits
    shift = 13;
    base = (exponent - (127 - 15)) << 10;
    m &= 0x7fffffu;  // the implicit bit is carried by `base`
  } else {  // subnormal half: units of 2^-24
    shift = 126 - exponent;
    if (shift >= 25) return sign;  // below half of the smallest subnormal: rounds to zero
    base = 0;
  }
  uint32_t result = m >> shift;
  const uint32_t remainder = m & ((1u << shift) - 1u);
  const uint32_t halfway = 1u << (shift - 1u);
  if (remainder > halfway || (remainder == halfway && (result & 1u))) ++result;
  // A carry out of the mantissa bumps the exponent, and from the top binade lands on inf.
  return static_cast<uint16_t>(sign | (base + result));
}

float Bfloat16ToFloat(uint16_t b) {
  return std::bit_cast<float>(static_cast<uint32_t>(b) << 16);
}

uint16_t FloatToBfloat16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) {
    return static_cast<uint16_t>((bits >> 16) | 0x40u);  // NaN stays NaN: force the quiet bit
  }
  // Round to nearest even on the 16 dropped bits; overflow carries into inf, as it should.
  const uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

}  // namespace braid
