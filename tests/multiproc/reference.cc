#include "tests/multiproc/reference.h"

#include <cmath>
#include <cstring>

#include "core/datatype.h"

namespace braid::testing {

size_t TypeSize(braidDataType_t type) {
  return DataTypeSize(static_cast<DataType>(static_cast<int>(type)));
}

void Store(void* buffer, size_t index, braidDataType_t type, double value) {
  auto* p = static_cast<std::byte*>(buffer) + index * TypeSize(type);
  auto put = [&](auto v) { std::memcpy(p, &v, sizeof(v)); };
  // Integers wrap modulo 2^bits, as Braid's kernels (and NCCL's) do.
  auto wrapped = static_cast<uint64_t>(static_cast<int64_t>(value));
  switch (type) {
    case braidInt8: put(static_cast<int8_t>(wrapped)); break;
    case braidUint8: put(static_cast<uint8_t>(wrapped)); break;
    case braidInt32: put(static_cast<int32_t>(wrapped)); break;
    case braidUint32: put(static_cast<uint32_t>(wrapped)); break;
    case braidInt64: put(static_cast<int64_t>(wrapped)); break;
    case braidUint64: put(wrapped); break;
    case braidFloat16: put(FloatToHalf(static_cast<float>(value))); break;
    case braidBfloat16: put(FloatToBfloat16(static_cast<float>(value))); break;
    case braidFloat32: put(static_cast<float>(value)); break;
    case braidFloat64: put(value); break;
    default: break;
  }
}

double InputValue(braidRedOp_t op, int rank, int nranks, size_t index) {
  switch (op) {
    case braidProd:  // 1s and a few 2s: products stay exact powers of two.
      return (index + static_cast<size_t>(rank)) % 3 == 0 ? 2.0 : 1.0;
    case braidAvg:  // sum = n * (base + 1): the average is exact in every type.
      return static_cast<double>(index % 13) + (rank == 0 ? nranks : 0);
    default:  // small integers: sums up to 8 ranks stay below 127.
      return static_cast<double>((index * 7 + static_cast<size_t>(rank) * 3) % 11) + 1.0;
  }
}

void StoreExpected(void* buffer, size_t index, braidDataType_t type, braidRedOp_t op, int nranks,
                   size_t input_index) {
  double acc = InputValue(op, 0, nranks, input_index);
  for (int r = 1; r < nranks; ++r) {
    double v = InputValue(op, r, nranks, input_index);
    switch (op) {
      case braidSum:
      case braidAvg: acc += v; break;
      case braidProd: acc *= v; break;
      case braidMax: acc = std::max(acc, v); break;
      case braidMin: acc = std::min(acc, v); break;
      default: break;
    }
  }
  if (op == braidAvg) acc /= nranks;
  Store(buffer, index, type, acc);
}

std::vector<std::byte> MakeInput(braidDataType_t type, braidRedOp_t op, int rank, int nranks,
                                 size_t count) {
  std::vector<std::byte> out(count * TypeSize(type));
  for (size_t i = 0; i < count; ++i) Store(out.data(), i, type, InputValue(op, rank, nranks, i));
  return out;
}

long long FirstMismatch(const void* got, const void* want, size_t count, braidDataType_t type) {
  size_t size = TypeSize(type);
  auto* g = static_cast<const std::byte*>(got);
  auto* w = static_cast<const std::byte*>(want);
  for (size_t i = 0; i < count; ++i) {
    if (std::memcmp(g + i * size, w + i * size, size) != 0) return static_cast<long long>(i);
  }
  return -1;
}

}  // namespace braid::testing
