// nccl-tests' command line for the Braid perf tools: same letters, long names and defaults.
#include <getopt.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "perf_common.h"

namespace braidperf {
namespace {

struct TypeInfo {
  const char* name;
  braidDataType_t type;
  size_t size;
};
// nccl-tests' names and order (-d all runs them in this order).
constexpr TypeInfo kTypes[] = {
    {"int8", braidInt8, 1},         {"uint8", braidUint8, 1},   {"int32", braidInt32, 4},
    {"uint32", braidUint32, 4},     {"int64", braidInt64, 8},   {"uint64", braidUint64, 8},
    {"half", braidFloat16, 2},      {"float", braidFloat32, 4}, {"double", braidFloat64, 8},
    {"bfloat16", braidBfloat16, 2},
};
// Accepted aliases for -d, besides the names above.
constexpr struct {
  const char* alias;
  braidDataType_t type;
} kTypeAliases[] = {{"char", braidInt8},       {"int", braidInt32},       {"float16", braidFloat16},
                    {"float32", braidFloat32}, {"float64", braidFloat64}, {"bf16", braidBfloat16}};

constexpr struct {
  const char* name;
  braidRedOp_t op;
} kOps[] = {{"sum", braidSum},
            {"prod", braidProd},
            {"max", braidMax},
            {"min", braidMin},
            {"avg", braidAvg}};

const char* ToolName(Coll coll) {
  switch (coll) {
    case Coll::kAllReduce:
      return "allreduce_perf";
    case Coll::kAllGather:
      return "allgather_perf";
    case Coll::kReduceScatter:
      return "reduce_scatter_perf";
    case Coll::kBroadcast:
      return "broadcast_perf";
    case Coll::kReduce:
      return "reduce_perf";
    case Coll::kAllToAll:
      return "alltoall_perf";
    case Coll::kSendRecv:
      return "sendrecv_perf";
  }
  return "perf";
}

void Help(Coll coll) {
  std::printf(
      "Usage: braidrun -n NRANKS %s [options]   (or under mpirun / srun / torchrun)\n"
      "nccl-tests compatible flags:\n"
      "  -b, --minbytes <n>       smallest size in bytes, K/M/G suffixes (default 32M)\n"
      "  -e, --maxbytes <n>       largest size in bytes (default 32M)\n"
      "  -i, --stepbytes <n>      increment between sizes when -f is 1 (default 1M)\n"
      "  -f, --stepfactor <n>     multiply the size by n between sizes (default 1: use -i)\n"
      "  -n, --iters <n>          timed iterations per size (default 20)\n"
      "  -w, --warmup_iters <n>   untimed iterations per size (default 5)\n"
      "  -c, --check <0/1>        check every result exactly (default 1)\n"
      "  -d, --datatype <type>    int8 uint8 int32 uint32 int64 uint64 half float double\n"
      "                           bfloat16 or all (default float)\n"
      "  -o, --op <op>            sum prod max min avg or all (default sum)\n"
      "  -r, --root <rank>        root rank of broadcast and reduce (default 0)\n"
      "  -z, --blocking <0/1>     1: one blocking call per iteration; 0: start every iteration\n"
      "                           with the nonblocking form, then wait for all (default 0)\n"
      "  -a, --average <0..3>     time reported: 0 rank 0's, 1 average, 2 min, 3 max over\n"
      "                           ranks (default 1)\n"
      "  -g, --ngpus / -t, --nthreads <1>   accepted for compatibility; only 1 (CPU-only)\n"
      "  -m, --agg_iters <1>      accepted for compatibility; only 1\n"
      "  -G, --cudagraph <0>      accepted for compatibility; only 0\n"
      "  -h, --help               this text\n"
      "Columns: size is the total bytes (of the gathered/scattered buffer for allgather and\n"
      "reduce_scatter, of one rank's send buffer for alltoall; count is then per rank), algbw =\n"
      "size/time, busbw = algbw * factor (allreduce 2(n-1)/n, allgather, reduce_scatter and\n"
      "alltoall (n-1)/n, broadcast, reduce and sendrecv 1), as in nccl-tests. sendrecv: every\n"
      "rank sends to rank+1 and receives from rank-1 in one braidGroupStart/End.\n",
      ToolName(coll));
}

bool ParseSize(const char* s, size_t* out) {
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s, &end);
  if (end == s || errno != 0 || v < 0) return false;
  double mult = 1;
  switch (*end) {
    case 'k':
    case 'K':
      mult = 1024.0;
      ++end;
      break;
    case 'm':
    case 'M':
      mult = 1024.0 * 1024;
      ++end;
      break;
    case 'g':
    case 'G':
      mult = 1024.0 * 1024 * 1024;
      ++end;
      break;
    default:
      break;
  }
  if (*end == 'B' || *end == 'b') ++end;
  if (*end != '\0') return false;
  *out = static_cast<size_t>(v * mult);
  return true;
}

bool ParseInt(const char* s, long lo, long hi, long* out) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(s, &end, 10);
  if (end == s || *end != '\0' || errno != 0 || v < lo || v > hi) return false;
  *out = v;
  return true;
}

}  // namespace

const char* TypeName(braidDataType_t type) {
  for (const TypeInfo& t : kTypes)
    if (t.type == type) return t.name;
  return "?";
}

size_t TypeSize(braidDataType_t type) {
  for (const TypeInfo& t : kTypes)
    if (t.type == type) return t.size;
  return 1;
}

const char* OpName(braidRedOp_t op) {
  for (const auto& o : kOps)
    if (o.op == op) return o.name;
  return "?";
}

int ParseOptions(int argc, char** argv, Coll coll, bool print, Options* opts) {
  static const option kLong[] = {{"nthreads", required_argument, nullptr, 't'},
                                 {"ngpus", required_argument, nullptr, 'g'},
                                 {"minbytes", required_argument, nullptr, 'b'},
                                 {"maxbytes", required_argument, nullptr, 'e'},
                                 {"stepbytes", required_argument, nullptr, 'i'},
                                 {"stepfactor", required_argument, nullptr, 'f'},
                                 {"iters", required_argument, nullptr, 'n'},
                                 {"agg_iters", required_argument, nullptr, 'm'},
                                 {"warmup_iters", required_argument, nullptr, 'w'},
                                 {"check", required_argument, nullptr, 'c'},
                                 {"op", required_argument, nullptr, 'o'},
                                 {"datatype", required_argument, nullptr, 'd'},
                                 {"root", required_argument, nullptr, 'r'},
                                 {"blocking", required_argument, nullptr, 'z'},
                                 {"average", required_argument, nullptr, 'a'},
                                 {"cudagraph", required_argument, nullptr, 'G'},
                                 {"help", no_argument, nullptr, 'h'},
                                 {nullptr, 0, nullptr, 0}};
  auto fail = [&](const std::string& msg) {
    if (print)
      std::fprintf(stderr, "%s: %s (see %s -h)\n", ToolName(coll), msg.c_str(), ToolName(coll));
    return 2;
  };
  optind = 1;
  opterr = print ? 1 : 0;
  for (;;) {
    int c = getopt_long(argc, argv, "t:g:b:e:i:f:n:m:w:c:o:d:r:z:a:G:h", kLong, nullptr);
    if (c == -1) break;
    long v = 0;
    const std::string arg = optarg ? optarg : "";
    switch (c) {
      case 't':
      case 'g':
        if (!ParseInt(optarg, 1, 1, &v))
          return fail(std::string("-") + static_cast<char>(c) + " " + arg +
                      ": Braid is CPU-only: one rank per process, so only 1 is accepted; run "
                      "more ranks with braidrun -n N (or mpirun/srun)");
        break;
      case 'm':
        if (!ParseInt(optarg, 1, 1, &v)) return fail("-m " + arg + ": only 1 is supported");
        break;
      case 'G':
        if (!ParseInt(optarg, 0, 0, &v)) return fail("-G " + arg + ": Braid is CPU-only, use 0");
        break;
      case 'b':
        if (!ParseSize(optarg, &opts->min_bytes)) return fail("bad size for -b: " + arg);
        break;
      case 'e':
        if (!ParseSize(optarg, &opts->max_bytes)) return fail("bad size for -e: " + arg);
        break;
      case 'i':
        if (!ParseSize(optarg, &opts->step_bytes)) return fail("bad size for -i: " + arg);
        break;
      case 'f':
        if (!ParseInt(optarg, 1, 1 << 20, &v)) return fail("bad step factor for -f: " + arg);
        opts->step_factor = static_cast<size_t>(v);
        break;
      case 'n':
        if (!ParseInt(optarg, 1, 1 << 30, &v)) return fail("bad iteration count for -n: " + arg);
        opts->iters = static_cast<int>(v);
        break;
      case 'w':
        if (!ParseInt(optarg, 0, 1 << 30, &v)) return fail("bad warmup count for -w: " + arg);
        opts->warmup = static_cast<int>(v);
        break;
      case 'c':
        if (!ParseInt(optarg, 0, 1, &v)) return fail("-c wants 0 or 1, got " + arg);
        opts->check = static_cast<int>(v);
        break;
      case 'z':
        if (!ParseInt(optarg, 0, 1, &v)) return fail("-z wants 0 or 1, got " + arg);
        opts->blocking = static_cast<int>(v);
        break;
      case 'a':
        if (!ParseInt(optarg, 0, 3, &v)) return fail("-a wants 0, 1, 2 or 3, got " + arg);
        opts->average = static_cast<int>(v);
        break;
      case 'r':
        if (!ParseInt(optarg, 0, 1 << 30, &v)) return fail("bad root rank for -r: " + arg);
        opts->root = static_cast<int>(v);
        break;
      case 'd': {
        opts->types.clear();
        if (arg == "all") {
          for (const TypeInfo& t : kTypes) opts->types.push_back(t.type);
          break;
        }
        for (const TypeInfo& t : kTypes)
          if (arg == t.name) opts->types.push_back(t.type);
        for (const auto& a : kTypeAliases)
          if (arg == a.alias) opts->types.push_back(a.type);
        if (opts->types.empty())
          return fail("unknown datatype '" + arg +
                      "' (int8 uint8 int32 uint32 int64 uint64 half float double bfloat16 all)");
        break;
      }
      case 'o': {
        opts->ops.clear();
        for (const auto& o : kOps)
          if (arg == "all" || arg == o.name) opts->ops.push_back(o.op);
        if (opts->ops.empty()) return fail("unknown op '" + arg + "' (sum prod max min avg all)");
        break;
      }
      case 'h':
        if (print) Help(coll);
        return 0;
      default:
        return fail("unknown option");
    }
  }
  if (optind < argc) return fail(std::string("unexpected argument '") + argv[optind] + "'");
  if (opts->min_bytes > opts->max_bytes) return fail("-b (minbytes) is larger than -e (maxbytes)");
  if (opts->step_factor <= 1 && opts->step_bytes == 0 && opts->min_bytes != opts->max_bytes)
    return fail("-i 0 with -f 1 would never reach -e");
  if (opts->step_factor > 1 && opts->min_bytes == 0)
    return fail("-b 0 with -f > 1 would never reach -e; start at 1 or more");
  // Allgather and broadcast take no reduction op: one pass, printed as "none".
  if (coll == Coll::kAllGather || coll == Coll::kBroadcast || coll == Coll::kAllToAll ||
      coll == Coll::kSendRecv) {
    opts->ops.assign(1, braidSum);
  }
  return -1;
}

}  // namespace braidperf
