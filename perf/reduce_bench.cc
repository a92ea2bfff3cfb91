// reduce_bench: throughput of the Reduce kernels against memcpy of the same bytes, for chunk
// sizes that stay in cache (what collectives reduce at a time) and for one large buffer.
//
// Usage: reduce_bench [--reps N] [--min-ms M]
// GB/s counts bytes of dst written per second (1 GB = 1e9 bytes); ratio = reduce / memcpy.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/datatype.h"
#include "core/reduce.h"

namespace {

using Clock = std::chrono::steady_clock;

// Keeps the compiler from deleting work whose result is never read.
void Clobber(void* p) { asm volatile("" : : "g"(p) : "memory"); }

// Runs `body` enough times to fill min_ms, `reps` times; returns the median seconds per call.
template <typename Body>
double MedianSecondsPerCall(int reps, double min_ms, Body&& body) {
  // Calibrate the inner iteration count once.
  size_t iters = 1;
  for (;;) {
    const auto start = Clock::now();
    for (size_t i = 0; i < iters; ++i) body();
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (ms >= min_ms || iters >= (size_t{1} << 30)) break;
    iters = ms <= 0.01 ? iters * 16 : static_cast<size_t>(iters * (min_ms * 1.2 / ms)) + 1;
  }
  std::vector<double> samples;
  for (int r = 0; r < reps; ++r) {
    const auto start = Clock::now();
    for (size_t i = 0; i < iters; ++i) body();
    samples.push_back(std::chrono::duration<double>(Clock::now() - start).count() /
                      static_cast<double>(iters));
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

void FillBuffer(std::vector<uint8_t>& buf, braid::DataType type, unsigned seed) {
  const size_t elem = braid::DataTypeSize(type);
  const size_t count = buf.size() / elem;
  for (size_t i = 0; i < count; ++i) {
    // Small values so sums stay finite in every float type.
    const float v = static_cast<float>((i * 7 + seed) % 13) * 0.125f;
    if (type == braid::DataType::kFloat32) {
      std::memcpy(&buf[i * elem], &v, sizeof v);
    } else if (type == braid::DataType::kFloat16) {
      const uint16_t h = braid::FloatToHalf(v);
      std::memcpy(&buf[i * elem], &h, sizeof h);
    } else if (type == braid::DataType::kBfloat16) {
      const uint16_t h = braid::FloatToBfloat16(v);
      std::memcpy(&buf[i * elem], &h, sizeof h);
    } else {
      buf[i * elem] = static_cast<uint8_t>(seed + i);
    }
  }
}

struct Row {
  std::string type;
  std::string mode;
  size_t bytes;
  double reduce_gbps;
  double memcpy_gbps;
};

Row Measure(braid::DataType type, bool in_place, size_t bytes, int reps, double min_ms) {
  std::vector<uint8_t> a(bytes), b(bytes), dst(bytes), copy_dst(bytes);
  FillBuffer(a, type, 1);
  FillBuffer(b, type, 2);
  const size_t count = bytes / braid::DataTypeSize(type);
  void* out = in_place ? static_cast<void*>(a.data()) : dst.data();
  const double t_reduce = MedianSecondsPerCall(reps, min_ms, [&] {
    // In place, repeated sums grow the values; for the sizes measured they stay finite and
    // the kernels' speed does not depend on the values anyway.
    braid::Reduce(out, a.data(), b.data(), count, type, braid::RedOp::kSum);
    Clobber(out);
  });
  const double t_copy = MedianSecondsPerCall(reps, min_ms, [&] {
    std::memcpy(copy_dst.data(), b.data(), bytes);
    Clobber(copy_dst.data());
  });
  return Row{std::string(braid::DataTypeName(type)), in_place ? "dst=a" : "dst!=a,b", bytes,
             static_cast<double>(bytes) / t_reduce / 1e9,
             static_cast<double>(bytes) / t_copy / 1e9};
}

std::string HumanBytes(size_t bytes) {
  if (bytes >= (size_t{1} << 20)) return std::to_string(bytes >> 20) + " MiB";
  return std::to_string(bytes >> 10) + " KiB";
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 7;
  double min_ms = 20.0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--reps" && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--min-ms" && i + 1 < argc) {
      min_ms = std::max(0.1, std::atof(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: %s [--reps N] [--min-ms M]\n", argv[0]);
      return arg == "--help" || arg == "-h" ? 0 : 2;
    }
  }

  const size_t sizes[] = {size_t{32} << 10, size_t{256} << 10, size_t{1} << 20,
                          size_t{64} << 20};
  const braid::DataType types[] = {braid::DataType::kFloat32, braid::DataType::kFloat16,
                                   braid::DataType::kBfloat16};
  std::printf("# Reduce(sum) vs memcpy; GB/s of dst written; median of %d reps\n", reps);
  std::printf("%-9s %-9s %9s %12s %12s %7s\n", "type", "mode", "bytes", "reduce GB/s",
              "memcpy GB/s", "ratio");
  for (braid::DataType type : types) {
    for (bool in_place : {false, true}) {
      for (size_t bytes : sizes) {
        const Row row = Measure(type, in_place, bytes, reps, min_ms);
        std::printf("%-9s %-9s %9s %12.2f %12.2f %7.2f\n", row.type.c_str(), row.mode.c_str(),
                    HumanBytes(row.bytes).c_str(), row.reduce_gbps, row.memcpy_gbps,
                    row.reduce_gbps / row.memcpy_gbps);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
