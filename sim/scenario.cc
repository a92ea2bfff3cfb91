#include "sim/scenario.h"

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "collectives/collectives.h"
#include "core/reduce.h"
#include "core/status.h"

namespace braid::sim {
namespace {

void Store(std::byte* buffer, size_t index, DataType type, double value) {
  std::byte* p = buffer + index * DataTypeSize(type);
  auto put = [&](auto v) { std::memcpy(p, &v, sizeof(v)); };
  auto wrapped = static_cast<uint64_t>(static_cast<int64_t>(value));
  switch (type) {
    case DataType::kInt8: put(static_cast<int8_t>(wrapped)); break;
    case DataType::kUint8: put(static_cast<uint8_t>(wrapped)); break;
    case DataType::kInt32: put(static_cast<int32_t>(wrapped)); break;
    case DataType::kUint32: put(static_cast<uint32_t>(wrapped)); break;
    case DataType::kInt64: put(static_cast<int64_t>(wrapped)); break;
    case DataType::kUint64: put(wrapped); break;
    case DataType::kFloat16: put(FloatToHalf(static_cast<float>(value))); break;
    case DataType::kBfloat16: put(FloatToBfloat16(static_cast<float>(value))); break;
    case DataType::kFloat32: put(static_cast<float>(value)); break;
    case DataType::kFloat64: put(value); break;
  }
}

// Exact inputs: sparse small values, so every partial sum or product of any subset of ranks is
// exactly representable even in bfloat16 at 4096 ranks; then any reduction order gives the
// same bits as the sequential reference.
double ExactValue(RedOp op, int n, int rank, size_t index) {
  const size_t r = static_cast<size_t>(rank);
  switch (op) {
    case RedOp::kProd: {
      size_t every = static_cast<size_t>(std::max(1, n / 6));
      return (index + r) % every == 0 ? 2.0 : 1.0;
    }
    case RedOp::kMax:
    case RedOp::kMin: return static_cast<double>((index * 31 + r * 17) % 97);
    default: {
      size_t every = static_cast<size_t>(std::max(1, n / 60));
      return (index * 7 + r) % every == 0 ? static_cast<double>(1 + (index + r) % 3) : 0.0;
    }
  }
}

std::vector<std::byte> Input(const Scenario& s, int rank, size_t elements) {
  std::vector<std::byte> data(elements * DataTypeSize(s.type));
  std::mt19937_64 random(static_cast<uint64_t>(rank) * 7919 + 17);
  std::uniform_real_distribution<double> uniform(-1, 1);
  for (size_t i = 0; i < elements; ++i) {
    Store(data.data(), i, s.type, s.random_values ? uniform(random) : ExactValue(s.op, s.nranks, rank, i));
  }
  return data;
}

}  // namespace

Outcome RunChecked(const Scenario& s, const SimOptions& options) {
  const int n = s.nranks;
  const size_t elem = DataTypeSize(s.type);
  const bool gathers = s.collective == Collective::kAllGather;
  const bool scatters = s.collective == Collective::kReduceScatter;
  const size_t in_elems = scatters ? s.count * static_cast<size_t>(n) : s.count;
  const size_t out_elems = gathers ? s.count * static_cast<size_t>(n) : s.count;
  std::vector<std::vector<std::byte>> inputs(static_cast<size_t>(n)), outputs(inputs.size());
  for (int r = 0; r < n; ++r) {
    inputs[static_cast<size_t>(r)] = Input(s, r, in_elems);
    outputs[static_cast<size_t>(r)].assign(out_elems * elem, std::byte{0xEE});
  }
  // The reference: the sequential reduction (exact inputs make the order irrelevant).
  std::vector<std::byte> reduced = inputs[0];
  if (!gathers && s.collective != Collective::kBroadcast) {
    for (int r = 1; r < n; ++r) {
      Reduce(reduced.data(), reduced.data(), inputs[static_cast<size_t>(r)].data(), in_elems,
             s.type, s.op);
    }
    if (s.op == RedOp::kAvg) ScaleForAverage(reduced.data(), in_elems, s.type, n);
  }
  Tuning tuning;
  tuning.link = options.link;
  tuning.chunk_override = s.chunk_bytes;
  tuning.overrides.forced[static_cast<size_t>(s.collective)] = s.algorithm;
  SimResult result = Simulate(n, options, [&](const CollectiveContext& base) -> absl::Status {
    CollectiveContext ctx = base;
    ctx.tuning = &tuning;
    size_t r = static_cast<size_t>(ctx.rank);
    std::byte* out = outputs[r].data();
    const std::byte* in = inputs[r].data();
    if (s.inplace) {  // the in-place layouts of include/braid/braid.h.
      if (gathers) {
        std::memcpy(out + r * s.count * elem, in, s.count * elem);
        in = out + r * s.count * elem;
      } else if (scatters) {
        out = inputs[r].data() + r * s.count * elem;
      } else if (s.collective != Collective::kBroadcast || ctx.rank == s.root) {
        std::memcpy(out, in, s.count * elem);
        in = out;
      }
    }
    switch (s.collective) {
      case Collective::kAllReduce: return AllReduce(ctx, in, out, s.count, s.type, s.op);
      case Collective::kAllGather: return AllGather(ctx, in, out, s.count, s.type);
      case Collective::kReduceScatter:
        BRAID_RETURN_IF_ERROR(ReduceScatter(ctx, in, out, s.count, s.type, s.op));
        if (s.inplace) std::memcpy(outputs[r].data(), out, s.count * elem);
        return absl::OkStatus();
      case Collective::kBroadcast:
        return Broadcast(ctx, ctx.rank == s.root ? in : nullptr, out, s.count, s.type, s.root);
    }
    return absl::OkStatus();
  });
  Outcome outcome{result.status, result.seconds, result.messages};
  if (!outcome.status.ok()) return outcome;
  for (int r = 0; r < n; ++r) {
    const std::byte* want;
    if (s.random_values) want = outputs[0].data();  // bit-identical to rank 0.
    else if (gathers) want = nullptr;
    else if (scatters) want = reduced.data() + static_cast<size_t>(r) * s.count * elem;
    else if (s.collective == Collective::kBroadcast) want = inputs[static_cast<size_t>(s.root)].data();
    else want = reduced.data();
    for (size_t i = 0; i < out_elems; ++i) {
      const std::byte* got = outputs[static_cast<size_t>(r)].data() + i * elem;
      const std::byte* w = want ? want + i * elem
                                : inputs[i / s.count].data() + (i % s.count) * elem;
      if (std::memcmp(got, w, elem) != 0) {
        outcome.status = absl::InternalError(absl::StrCat(
            CollectiveName(s.collective), " ", AlgorithmName(s.algorithm), " on ", n,
            " simulated ranks: rank ", r, " element ", i, " of ", out_elems,
            s.random_values ? " differs from rank 0's" : " is wrong"));
        return outcome;
      }
    }
  }
  return outcome;
}

Outcome RunTiming(Collective collective, Algorithm algorithm, int nranks, size_t bytes,
                  const SimOptions& options, size_t chunk_bytes) {
  Tuning tuning;
  tuning.link = options.link;
  tuning.chunk_override = chunk_bytes;
  tuning.overrides.forced[static_cast<size_t>(collective)] = algorithm;
  Choice choice = Select(collective, nranks, bytes, tuning);
  // Resolve "auto" at the real size: the scaled-down call must not choose again.
  tuning.overrides.forced[static_cast<size_t>(collective)] = choice.algorithm;
  size_t chunk = chunk_bytes ? chunk_bytes : choice.chunk_bytes;
  // Scale the buffer down to ~256 KiB per rank (at least 32 floats per rank's block), and the
  // chunk alike, so the schedule keeps its shape: the same blocks, chunks and messages.
  const size_t target = std::max<size_t>(256 * 1024, static_cast<size_t>(nranks) * 128);
  size_t scale = std::max<size_t>(1, bytes / target);
  if (chunk) scale = std::min(scale, std::max<size_t>(1, chunk / 4));
  const size_t elem = 4;
  size_t total = std::max<size_t>(bytes / scale / elem, 1);
  size_t count = collective == Collective::kAllGather || collective == Collective::kReduceScatter
                     ? std::max<size_t>(1, total / static_cast<size_t>(nranks))
                     : total;
  SimOptions scaled = options;
  scaled.byte_scale = static_cast<double>(bytes) /
                      static_cast<double>(std::max<size_t>(1, total * elem));
  scaled.shared_scratch = true;
  tuning.chunk_override = chunk ? std::max<size_t>(elem, chunk / scale / elem * elem) : 0;
  size_t in_elems = collective == Collective::kReduceScatter ? count * static_cast<size_t>(nranks) : count;
  size_t out_elems = collective == Collective::kAllGather ? count * static_cast<size_t>(nranks) : count;
  std::vector<std::byte> in(in_elems * elem), out(out_elems * elem);
  SimResult result = Simulate(nranks, scaled, [&](const CollectiveContext& base) -> absl::Status {
    CollectiveContext ctx = base;
    ctx.tuning = &tuning;
    switch (collective) {
      case Collective::kAllReduce:
        return AllReduce(ctx, in.data(), out.data(), count, DataType::kFloat32, RedOp::kSum);
      case Collective::kAllGather:
        return AllGather(ctx, in.data(), out.data(), count, DataType::kFloat32);
      case Collective::kReduceScatter:
        return ReduceScatter(ctx, in.data(), out.data(), count, DataType::kFloat32, RedOp::kSum);
      case Collective::kBroadcast:
        return Broadcast(ctx, in.data(), out.data(), count, DataType::kFloat32, 0);
    }
    return absl::OkStatus();
  });
  return {result.status, result.seconds, result.messages};
}

}  // namespace braid::sim
