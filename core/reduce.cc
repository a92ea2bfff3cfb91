// Reduction kernels. One loop template per (type, op), chosen by a single switch per call so
// the inner loops are plain typed loops that GCC vectorizes at -O3.
//
// Semantics every kernel follows (tests/unit/reduce_test.cc checks them bit for bit):
// - Integer sum and prod wrap around modulo 2^bits (computed in unsigned arithmetic, so signed
//   types never overflow; C++20 defines the conversion back).
// - max/min on floating types: a NaN in either input yields NaN (unlike fmax, which drops it:
//   a NaN anywhere in an allreduce should be visible). Otherwise max returns a if a > b, else b;
//   so max(+0, -0) and max(-0, +0) return the second operand (likewise for min).
// - float16/bfloat16: both inputs are widened to float (exact), reduced in float, and rounded
//   back to nearest even. NaN results become a quiet NaN.
// - kAvg sums; ScaleForAverage divides once all contributions are in.
#include "core/reduce.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace braid {
namespace {

// ---- Operations ----------------------------------------------------------------------------

// The type arithmetic happens in: unsigned for integers (wraps, no UB), itself otherwise.
template <typename T, bool = std::is_integral_v<T>>
struct ArithmeticType {
  using type = T;
};
template <typename T>
struct ArithmeticType<T, true> {
  using type = std::make_unsigned_t<T>;
};
template <typename T>
using Wide = typename ArithmeticType<T>::type;

struct SumOp {
  template <typename T>
  static T Apply(T a, T b) {
    return static_cast<T>(static_cast<Wide<T>>(a) + static_cast<Wide<T>>(b));
  }
};

struct ProdOp {
  template <typename T>
  static T Apply(T a, T b) {
    // uint8 operands promote to int; 255 * 255 fits, so no signed overflow there either.
    return static_cast<T>(static_cast<Wide<T>>(a) * static_cast<Wide<T>>(b));
  }
};

struct MaxOp {
  template <typename T>
  static T Apply(T a, T b) {
    if constexpr (std::is_floating_point_v<T>) {
      // a NaN: return a. b NaN: `a > b` is false, so b. Compiles to cmpunord + max + blend.
      return a != a ? a : (a > b ? a : b);
    } else {
      return a > b ? a : b;
    }
  }
};

struct MinOp {
  template <typename T>
  static T Apply(T a, T b) {
    if constexpr (std::is_floating_point_v<T>) {
      return a != a ? a : (a < b ? a : b);
    } else {
      return a < b ? a : b;
    }
  }
};

// ---- Branch-free half conversions (same results as the scalar ones in datatype.cc) --------
//
// Selections are written as bit masks, not `?:`: a conditional lets GCC sink the float
// arithmetic into one arm, and with -ftrapping-math (the default) it then refuses to
// if-convert the loop, leaving it scalar. With masks every lane computes every candidate.

inline uint32_t MaskIf(bool condition) { return 0u - static_cast<uint32_t>(condition); }
inline uint32_t Blend(uint32_t mask, uint32_t if_set, uint32_t if_clear) {
  return (if_set & mask) | (if_clear & ~mask);
}

inline float HalfBitsToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t em = static_cast<uint32_t>(h & 0x7fffu) << 13;  // exponent+mantissa, aligned
  const uint32_t exponent = em & 0x0f800000u;
  const uint32_t normal = em + ((127u - 15u) << 23);
  const uint32_t inf_nan = em + ((255u - 31u) << 23);
  // Subnormal or zero: rebias as if normal with exponent 1, then subtract 2^-14 (exact).
  const uint32_t sub = std::bit_cast<uint32_t>(std::bit_cast<float>(em + (113u << 23)) -
                                               std::bit_cast<float>(113u << 23));
  uint32_t bits = Blend(MaskIf(exponent == 0x0f800000u), inf_nan, normal);
  bits = Blend(MaskIf(exponent == 0), sub, bits);
  return std::bit_cast<float>(bits | sign);
}

inline uint16_t FloatToHalfBits(float f) {
  const uint32_t all = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (all >> 16) & 0x8000u;
  const uint32_t u = all & 0x7fffffffu;
  // Normal half: rebias the exponent and round the 13 dropped bits to nearest even.
  const uint32_t normal = (u + ((15u - 127u) << 23) + 0xfffu + ((u >> 13) & 1u)) >> 13;
  // Subnormal half: adding 0.5f aligns the result's last place with float's last place, so the
  // float adder performs the round to nearest even for us (default rounding mode assumed).
  const uint32_t sub = std::bit_cast<uint32_t>(std::bit_cast<float>(u) + 0.5f) - (126u << 23);
  const uint32_t inf_nan = 0x7c00u | (MaskIf(u > 0x7f800000u) & 0x0200u);
  uint32_t bits = Blend(MaskIf(u < (113u << 23)), sub, normal);
  bits = Blend(MaskIf(u >= (143u << 23)), inf_nan, bits);
  return static_cast<uint16_t>(bits | sign);
}

inline float Bf16BitsToFloat(uint16_t b) {
  return std::bit_cast<float>(static_cast<uint32_t>(b) << 16);
}

inline uint16_t FloatToBf16Bits(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const uint32_t nan = (u >> 16) | 0x40u;
  return static_cast<uint16_t>(Blend(MaskIf((u & 0x7fffffffu) > 0x7f800000u), nan, rounded));
}

struct Half {
  static float ToFloat(uint16_t h) { return HalfBitsToFloat(h); }
  static uint16_t FromFloat(float f) { return FloatToHalfBits(f); }
};
struct Bf16 {
  static float ToFloat(uint16_t b) { return Bf16BitsToFloat(b); }
  static uint16_t FromFloat(float f) { return FloatToBf16Bits(f); }
};

// ---- Kernels -------------------------------------------------------------------------------

// Three separate pointers. dst == a or dst == b is routed to the two-pointer kernels below
// instead, so the vectorizer's runtime overlap check passes in the common in-place case.
template <typename T, typename Op>
void Kernel3(T* dst, const T* a, const T* b, size_t count) {
  for (size_t i = 0; i < count; ++i) dst[i] = Op::Apply(a[i], b[i]);
}

// dst[i] = op(dst[i], src[i]) (kSwap: op(src[i], dst[i]), which matters for NaN/±0 ties).
template <typename T, typename Op, bool kSwap>
void Kernel2(T* dst, const T* src, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    dst[i] = kSwap ? Op::Apply(src[i], dst[i]) : Op::Apply(dst[i], src[i]);
  }
}

template <typename T, typename Op>
void ReduceTyped(T* dst, const T* a, const T* b, size_t count) {
  if (dst == a) {
    Kernel2<T, Op, false>(dst, b, count);
  } else if (dst == b) {
    Kernel2<T, Op, true>(dst, a, count);
  } else {
    Kernel3<T, Op>(dst, a, b, count);
  }
}

// Half types: widen a block of both inputs into float scratch, reduce there, narrow back.
// Each pass is a simple loop the vectorizer handles; the block stays in L1. Reading a whole
// block before writing it makes dst == a / dst == b safe.
constexpr size_t kHalfBlock = 256;

template <typename Conv, typename Op>
void HalfBlock(uint16_t* dst, const uint16_t* a, const uint16_t* b, size_t n) {
  alignas(64) float fa[kHalfBlock];
  alignas(64) float fb[kHalfBlock];
  for (size_t i = 0; i < n; ++i) fa[i] = Conv::ToFloat(a[i]);
  for (size_t i = 0; i < n; ++i) fb[i] = Conv::ToFloat(b[i]);
  for (size_t i = 0; i < n; ++i) fa[i] = Op::Apply(fa[i], fb[i]);
  for (size_t i = 0; i < n; ++i) dst[i] = Conv::FromFloat(fa[i]);
}

template <typename Conv, typename Op>
void ReduceHalfTyped(uint16_t* dst, const uint16_t* a, const uint16_t* b, size_t count) {
  size_t i = 0;
  for (; i + kHalfBlock <= count; i += kHalfBlock) {
    HalfBlock<Conv, Op>(dst + i, a + i, b + i, kHalfBlock);  // constant trip count
  }
  if (i < count) HalfBlock<Conv, Op>(dst + i, a + i, b + i, count - i);
}

template <typename T>
void ReduceForType(void* dst, const void* a, const void* b, size_t count, RedOp op) {
  auto* d = static_cast<T*>(dst);
  const auto* x = static_cast<const T*>(a);
  const auto* y = static_cast<const T*>(b);
  switch (op) {
    case RedOp::kSum:
    case RedOp::kAvg:
      return ReduceTyped<T, SumOp>(d, x, y, count);
    case RedOp::kProd:
      return ReduceTyped<T, ProdOp>(d, x, y, count);
    case RedOp::kMax:
      return ReduceTyped<T, MaxOp>(d, x, y, count);
    case RedOp::kMin:
      return ReduceTyped<T, MinOp>(d, x, y, count);
  }
}

template <typename Conv>
void ReduceForHalf(void* dst, const void* a, const void* b, size_t count, RedOp op) {
  auto* d = static_cast<uint16_t*>(dst);
  const auto* x = static_cast<const uint16_t*>(a);
  const auto* y = static_cast<const uint16_t*>(b);
  switch (op) {
    case RedOp::kSum:
    case RedOp::kAvg:
      return ReduceHalfTyped<Conv, SumOp>(d, x, y, count);
    case RedOp::kProd:
      return ReduceHalfTyped<Conv, ProdOp>(d, x, y, count);
    case RedOp::kMax:
      return ReduceHalfTyped<Conv, MaxOp>(d, x, y, count);
    case RedOp::kMin:
      return ReduceHalfTyped<Conv, MinOp>(d, x, y, count);
  }
}

template <typename T>
void ScaleTyped(void* dst, size_t count, int divisor) {
  auto* d = static_cast<T*>(dst);
  if constexpr (std::is_floating_point_v<T>) {
    const T n = static_cast<T>(divisor);
    for (size_t i = 0; i < count; ++i) d[i] = d[i] / n;  // divide: correctly rounded
  } else {
    // Truncating division. divisor > 1 here, so INT_MIN / divisor cannot overflow. 8-bit
    // types divide in int so a divisor above 127 (or 255) is not narrowed.
    using D = std::conditional_t<(sizeof(T) < sizeof(int)), int, T>;
    const D n = static_cast<D>(divisor);
    for (size_t i = 0; i < count; ++i) d[i] = static_cast<T>(d[i] / n);
  }
}

template <typename Conv>
void ScaleHalf(void* dst, size_t count, int divisor) {
  auto* d = static_cast<uint16_t*>(dst);
  const float n = static_cast<float>(divisor);
  for (size_t i = 0; i < count; ++i) d[i] = Conv::FromFloat(Conv::ToFloat(d[i]) / n);
}

// On x86-64 with GCC, the whole kernel set is compiled twice, for the x86-64 baseline (SSE2)
// and for x86-64-v3 (AVX2, FMA, BMI2), and glibc's ifunc resolver picks one at load time from
// the CPU's features: runtime detection, no intrinsics, and the same source either way.
// `flatten` inlines every kernel into each clone so the clones really use the wider ISA.
// Define BRAID_NO_KERNEL_CLONES to build only the baseline (e.g. to test it on an AVX2 host).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__) && \
    !defined(BRAID_NO_KERNEL_CLONES)
#define BRAID_KERNEL_CLONES __attribute__((flatten, target_clones("arch=x86-64-v3", "default")))
#else
#define BRAID_KERNEL_CLONES
#endif

BRAID_KERNEL_CLONES
void ReduceDispatch(void* dst, const void* a, const void* b, size_t count, DataType type,
                    RedOp op) {
  switch (type) {
    case DataType::kInt8:
      return ReduceForType<int8_t>(dst, a, b, count, op);
    case DataType::kUint8:
      return ReduceForType<uint8_t>(dst, a, b, count, op);
    case DataType::kInt32:
      return ReduceForType<int32_t>(dst, a, b, count, op);
    case DataType::kUint32:
      return ReduceForType<uint32_t>(dst, a, b, count, op);
    case DataType::kInt64:
      return ReduceForType<int64_t>(dst, a, b, count, op);
    case DataType::kUint64:
      return ReduceForType<uint64_t>(dst, a, b, count, op);
    case DataType::kFloat16:
      return ReduceForHalf<Half>(dst, a, b, count, op);
    case DataType::kFloat32:
      return ReduceForType<float>(dst, a, b, count, op);
    case DataType::kFloat64:
      return ReduceForType<double>(dst, a, b, count, op);
    case DataType::kBfloat16:
      return ReduceForHalf<Bf16>(dst, a, b, count, op);
  }
}

bool Misaligned(const void* p, size_t alignment) {
  return reinterpret_cast<uintptr_t>(p) % alignment != 0;
}

// Buffers not aligned to their element size (a byte buffer, a numpy view at an odd offset)
// cannot be accessed as typed arrays: reduce them through aligned blocks on the stack.
void ReduceMisaligned(void* dst, const void* a, const void* b, size_t count, DataType type,
                      RedOp op) {
  constexpr size_t kBlockBytes = 4096;
  alignas(64) std::byte x[kBlockBytes], y[kBlockBytes];
  const size_t size = DataTypeSize(type), per_block = kBlockBytes / size;
  for (size_t first = 0; first < count; first += per_block) {
    size_t n = std::min(per_block, count - first), bytes = n * size, at = first * size;
    std::memcpy(x, static_cast<const std::byte*>(a) + at, bytes);
    std::memcpy(y, static_cast<const std::byte*>(b) + at, bytes);
    ReduceDispatch(x, x, y, n, type, op);
    std::memcpy(static_cast<std::byte*>(dst) + at, x, bytes);
  }
}

void ScaleAligned(void* dst, size_t count, DataType type, int divisor) {
  switch (type) {
    case DataType::kInt8:
      return ScaleTyped<int8_t>(dst, count, divisor);
    case DataType::kUint8:
      return ScaleTyped<uint8_t>(dst, count, divisor);
    case DataType::kInt32:
      return ScaleTyped<int32_t>(dst, count, divisor);
    case DataType::kUint32:
      return ScaleTyped<uint32_t>(dst, count, divisor);
    case DataType::kInt64:
      return ScaleTyped<int64_t>(dst, count, divisor);
    case DataType::kUint64:
      return ScaleTyped<uint64_t>(dst, count, divisor);
    case DataType::kFloat16:
      return ScaleHalf<Half>(dst, count, divisor);
    case DataType::kFloat32:
      return ScaleTyped<float>(dst, count, divisor);
    case DataType::kFloat64:
      return ScaleTyped<double>(dst, count, divisor);
    case DataType::kBfloat16:
      return ScaleHalf<Bf16>(dst, count, divisor);
  }
}


}  // namespace

void Reduce(void* dst, const void* a, const void* b, size_t count, DataType type, RedOp op) {
  if (count == 0) return;
  const size_t size = DataTypeSize(type);
  if (Misaligned(dst, size) || Misaligned(a, size) || Misaligned(b, size)) {
    return ReduceMisaligned(dst, a, b, count, type, op);
  }
  ReduceDispatch(dst, a, b, count, type, op);
}

void ScaleForAverage(void* dst, size_t count, DataType type, int divisor) {
  // Average over zero or a negative number of contributions is meaningless, and dividing by 1
  // is the identity: leave the data alone rather than divide by zero.
  if (count == 0 || divisor <= 1) return;
  const size_t size = DataTypeSize(type);
  if (!Misaligned(dst, size)) return ScaleAligned(dst, count, type, divisor);
  constexpr size_t kBlockBytes = 4096;
  alignas(64) std::byte x[kBlockBytes];
  const size_t per_block = kBlockBytes / size;
  for (size_t first = 0; first < count; first += per_block) {
    size_t n = std::min(per_block, count - first), at = first * size;
    std::memcpy(x, static_cast<std::byte*>(dst) + at, n * size);
    ScaleAligned(x, n, type, divisor);
    std::memcpy(static_cast<std::byte*>(dst) + at, x, n * size);
  }
}

}  // namespace braid
