// Exact test data for the perf tools. Every input is a small integer chosen per (rank, index) so
// that the reduction is exact in every datatype whatever the order of the reduction:
//   sum  values 0..m-1 with (m-1)*nranks within the type's exact range (half 2048, bf16 256,
//        int8 100, uint8 200);
//   avg  nranks * (0..m-1), so that the mean is an integer and every partial sum is exact;
//   prod 1 except a sparse 2 (at most as many 2s per element as the type holds exactly);
//   max/min values in -8..7 (0..15 for unsigned types);
//   copies (allgather, broadcast) values in -50..49 (0..99 unsigned).
// Each rank computes the expected result independently and compares it bit for bit.
#include <cstring>

#include "perf_common.h"

namespace braidperf {
namespace {

uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t a = x & 0x7fffffffu;
  if (a >= 0x7f800000u)
    return static_cast<uint16_t>(sign | 0x7c00u | (a > 0x7f800000u ? 0x200u : 0));
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to infinity
  if (a < 0x38800000u) {  // half subnormal (or zero): round(|f| * 2^24) to nearest even
    if (a < 0x33000000u) return static_cast<uint16_t>(sign);
    uint32_t mant = (a & 0x7fffffu) | 0x800000u;
    int shift = 126 - static_cast<int>(a >> 23);  // 14..24 bits to drop from the 24-bit mant
    uint32_t h = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = ((a >> 23) - 112) << 10 | ((a & 0x7fffffu) >> 13);
  uint32_t rem = a & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) ++h;
  return static_cast<uint16_t>(sign | h);
}

uint16_t FloatToBf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

template <typename T>
struct Plain {
  using Storage = T;
  static T Enc(int64_t v) { return static_cast<T>(v); }
};
struct Half {
  using Storage = uint16_t;
  static uint16_t Enc(int64_t v) { return FloatToHalf(static_cast<float>(v)); }
};
struct Bf16 {
  using Storage = uint16_t;
  static uint16_t Enc(int64_t v) { return FloatToBf16(static_cast<float>(v)); }
};

template <typename F>
void WithCodec(braidDataType_t type, F&& f) {
  switch (type) {
    case braidInt8:
      f(Plain<int8_t>{});
      break;
    case braidUint8:
      f(Plain<uint8_t>{});
      break;
    case braidInt32:
      f(Plain<int32_t>{});
      break;
    case braidUint32:
      f(Plain<uint32_t>{});
      break;
    case braidInt64:
      f(Plain<int64_t>{});
      break;
    case braidUint64:
      f(Plain<uint64_t>{});
      break;
    case braidFloat16:
      f(Half{});
      break;
    case braidFloat32:
      f(Plain<float>{});
      break;
    case braidFloat64:
      f(Plain<double>{});
      break;
    case braidBfloat16:
      f(Bf16{});
      break;
    default:
      break;
  }
}

bool IsUnsigned(braidDataType_t t) {
  return t == braidUint8 || t == braidUint32 || t == braidUint64;
}

// Largest sum that stays exact (and clear of overflow) in the type.
int64_t SumLimit(braidDataType_t t) {
  switch (t) {
    case braidInt8:
      return 100;
    case braidUint8:
      return 200;
    case braidFloat16:
      return 2048;
    case braidBfloat16:
      return 256;
    default:
      return 1 << 20;
  }
}

// Most factors of 2 a product may hold exactly.
int64_t MaxTwos(braidDataType_t t) {
  switch (t) {
    case braidInt8:
      return 6;
    case braidUint8:
      return 7;
    case braidFloat16:
      return 15;
    case braidInt32:
      return 30;
    case braidUint32:
      return 31;
    case braidInt64:
      return 62;
    case braidUint64:
      return 63;
    default:
      return 100;
  }
}

enum class Kind { kCopy, kSum, kAvg, kProd, kMax, kMin };

// The value of element j on rank r, and how ranks combine.
struct Gen {
  Kind kind;
  int64_t n, m = 1, period = 3, shift = 0;

  explicit Gen(const Pattern& p) : n(p.nranks) {
    bool reduce = p.coll == Coll::kAllReduce || p.coll == Coll::kReduceScatter ||
                  p.coll == Coll::kReduce;
    bool uns = IsUnsigned(p.type);
    int64_t limit = SumLimit(p.type);
    if (!reduce) {
      kind = Kind::kCopy;
      shift = uns ? 0 : 50;
      return;
    }
    switch (p.op) {
      case braidProd: {
        kind = Kind::kProd;
        int64_t twos = MaxTwos(p.type);
        period = std::max<int64_t>(3, (n + twos - 1) / twos);
        break;
      }
      case braidMax:
        kind = Kind::kMax;
        shift = uns ? 0 : 8;
        break;
      case braidMin:
        kind = Kind::kMin;
        shift = uns ? 0 : 8;
        break;
      case braidAvg:
        kind = Kind::kAvg;
        m = std::min<int64_t>(4, limit / (n * n) + 1);
        break;
      default:
        kind = Kind::kSum;
        m = std::min<int64_t>(4, limit / n + 1);
        break;
    }
  }

  int64_t V(int64_t r, uint64_t j) const {
    uint64_t ur = static_cast<uint64_t>(r);
    switch (kind) {
      case Kind::kCopy:
        return static_cast<int64_t>((j * 7 + ur * 13) % 100) - shift;
      case Kind::kSum:
        return static_cast<int64_t>((j * 7 + ur * 3) % static_cast<uint64_t>(m));
      case Kind::kAvg:
        return n * static_cast<int64_t>((j * 7 + ur * 3) % static_cast<uint64_t>(m));
      case Kind::kProd:
        return (j + ur) % static_cast<uint64_t>(period) == 0 ? 2 : 1;
      case Kind::kMax:
      case Kind::kMin:
        return static_cast<int64_t>((j * 5 + ur * 3) % 16) - shift;
    }
    return 0;
  }

  int64_t Reduced(uint64_t j) const {
    int64_t acc = V(0, j);
    for (int64_t q = 1; q < n; ++q) {
      int64_t v = V(q, j);
      switch (kind) {
        case Kind::kSum:
        case Kind::kAvg:
          acc += v;
          break;
        case Kind::kProd:
          acc *= v;
          break;
        case Kind::kMax:
          acc = std::max(acc, v);
          break;
        case Kind::kMin:
          acc = std::min(acc, v);
          break;
        case Kind::kCopy:
          break;
      }
    }
    return kind == Kind::kAvg ? acc / n : acc;
  }
};

}  // namespace

void Poison(void* buf, size_t bytes) { std::memset(buf, 0xA5, bytes); }

void FillInput(const Pattern& p, int rank, void* buf, size_t offset, size_t n) {
  Gen g(p);
  WithCodec(p.type, [&](auto codec) {
    using C = decltype(codec);
    auto* out = static_cast<typename C::Storage*>(buf);
    for (size_t i = 0; i < n; ++i) out[i] = C::Enc(g.V(rank, offset + i));
  });
}

uint64_t CountWrong(const Pattern& p, const void* result, size_t n) {
  Gen g(p);
  uint64_t wrong = 0;
  if (p.coll == Coll::kReduce && p.rank != p.root) return 0;  // recvbuff is the root's only.
  WithCodec(p.type, [&](auto codec) {
    using C = decltype(codec);
    using S = typename C::Storage;
    const auto* in = static_cast<const S*>(result);
    auto differs = [](S a, S b) { return std::memcmp(&a, &b, sizeof(S)) != 0; };
    for (size_t i = 0; i < n; ++i) {
      int64_t expected;
      switch (p.coll) {
        case Coll::kAllReduce:
          expected = g.Reduced(i);
          break;
        case Coll::kReduceScatter:
          expected = g.Reduced(p.rank * p.count + i);
          break;
        case Coll::kAllGather:
          expected = g.V(static_cast<int64_t>(i / p.count), i % p.count);
          break;
        case Coll::kReduce:
          expected = g.Reduced(i);
          break;
        case Coll::kAllToAll:  // block i / count came from that rank, cut from its slot for us.
          expected = g.V(static_cast<int64_t>(i / p.count), p.rank * p.count + i % p.count);
          break;
        case Coll::kSendRecv:
          expected = g.V((p.rank + p.nranks - 1) % p.nranks, i);
          break;
        default:
          expected = g.V(p.root, i);
          break;
      }
      wrong += differs(in[i], C::Enc(expected));
    }
  });
  return wrong;
}

}  // namespace braidperf
