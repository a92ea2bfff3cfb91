// Datatypes and reduction operations as the core sees them, with the half-precision
// conversions the reduction kernels use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace braid {

// Values match braidDataType_t in include/braid/braid.h.
enum class DataType : int {
  kInt8 = 0,
  kUint8 = 1,
  kInt32 = 2,
  kUint32 = 3,
  kInt64 = 4,
  kUint64 = 5,
  kFloat16 = 6,
  kFloat32 = 7,
  kFloat64 = 8,
  kBfloat16 = 9,
};
inline constexpr int kNumDataTypes = 10;

// Values match braidRedOp_t in include/braid/braid.h.
enum class RedOp : int { kSum = 0, kProd = 1, kMax = 2, kMin = 3, kAvg = 4 };
inline constexpr int kNumRedOps = 5;

std::optional<DataType> DataTypeFromInt(int value);
std::optional<RedOp> RedOpFromInt(int value);
size_t DataTypeSize(DataType type);
std::string_view DataTypeName(DataType type);  // nccl-tests spelling: "float", "half", "bfloat16"...
std::string_view RedOpName(RedOp op);          // "sum", "prod", "max", "min", "avg"
std::optional<DataType> DataTypeFromName(std::string_view name);
std::optional<RedOp> RedOpFromName(std::string_view name);

// IEEE binary16 and bfloat16 conversions, rounding to nearest even.
float HalfToFloat(uint16_t h);
uint16_t FloatToHalf(float f);
float Bfloat16ToFloat(uint16_t b);
uint16_t FloatToBfloat16(float f);

}  // namespace braid
