// The perf tools' main loop: communicator from the launcher environment, the size sweep, timing
// (aggregated across ranks as -a says), the exact check and nccl-tests' table on rank 0.
#include "perf_common.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#ifdef BRAID_PERF_MPI
#include "braid/braid_mpi.h"
#endif

namespace braidperf {
namespace {

int g_rank = -1;

[[noreturn]] void Die(const char* what, braidResult_t r) {
  char host[256] = "?";
  gethostname(host, sizeof(host) - 1);
  std::fprintf(stderr, "rank %d (%s pid %d): %s failed: %s: %s\n", g_rank, host,
               static_cast<int>(getpid()), what, braidGetErrorString(r), braidGetLastError());
  std::fflush(stderr);
  std::exit(2);
}

void Check(braidResult_t r, const char* what) {
  if (r != braidSuccess) Die(what, r);
}

// The rank a launcher gave this process (before the communicator exists), or null if none.
const char* LauncherRank() {
  // The variables bootstrap/environment.cc understands, so the tools and the library agree.
  const char* vars[] = {"BRAID_RANK", "RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID"};
  for (const char* v : vars)
    if (const char* value = std::getenv(v)) return value;
  return nullptr;
}

double BusFactor(Coll coll, int n) {
  switch (coll) {
    case Coll::kAllReduce:
      return 2.0 * (n - 1) / n;
    case Coll::kAllGather:
    case Coll::kReduceScatter:
      return static_cast<double>(n - 1) / n;
    case Coll::kBroadcast:
    case Coll::kReduce:
    case Coll::kSendRecv:
      return 1.0;
    case Coll::kAllToAll:
      return static_cast<double>(n - 1) / n;
  }
  return 1.0;
}

// 4 KiB aligned, never null (so that count 0 still passes valid pointers).
void* Alloc(size_t bytes) {
  size_t rounded = (std::max<size_t>(bytes, 1) + 4095) / 4096 * 4096;
  void* p = std::aligned_alloc(4096, rounded);
  if (!p) {
    std::fprintf(stderr, "rank %d: cannot allocate %zu bytes\n", g_rank, rounded);
    std::exit(2);
  }
  return p;
}

std::string FormatTime(double us) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), us >= 10000 ? "%7.0f" : us >= 100 ? "%7.1f" : "%7.2f", us);
  return buf;
}

class Bench {
 public:
  Bench(Coll coll, const Options& o, braidComm_t comm, int rank, int nranks)
      : coll_(coll), o_(o), comm_(comm), rank_(rank), n_(nranks) {
    send_ = static_cast<char*>(Alloc(o.max_bytes));
    recv_ = static_cast<char*>(Alloc(o.max_bytes));
    Poison(send_, o.max_bytes);
    Poison(recv_, o.max_bytes);
    reqs_.resize(2 * static_cast<size_t>(std::max(o.iters, o.warmup)));  // sendrecv: 2 each.
  }
  ~Bench() {
    std::free(send_);
    std::free(recv_);
  }

  void Sweep(braidDataType_t type, braidRedOp_t op) {
    const size_t ts = TypeSize(type);
    for (size_t size = o_.min_bytes; size <= o_.max_bytes;
         size = o_.step_factor > 1 ? size * o_.step_factor : size + o_.step_bytes) {
      // count: per-rank elements for allgather/reduce_scatter (their size column is the total).
      bool per_rank = coll_ == Coll::kAllGather || coll_ == Coll::kReduceScatter ||
                      coll_ == Coll::kAllToAll;
      size_t count = per_rank ? size / (ts * static_cast<size_t>(n_)) : size / ts;
      size_t bytes = count * ts * (per_rank ? static_cast<size_t>(n_) : 1);
      Pattern p{coll_, type, op, n_, rank_, o_.root, count};
      Result oop = RunOne(p, false), inp = RunOne(p, true);
      if (rank_ == 0) {
        bool has_op = coll_ == Coll::kAllReduce || coll_ == Coll::kReduceScatter ||
                      coll_ == Coll::kReduce;
        bool has_root = coll_ == Coll::kBroadcast || coll_ == Coll::kReduce;
        std::printf("%12zu  %12zu  %8s  %6s  %6d", bytes, count, TypeName(type),
                    has_op ? OpName(op) : "none", has_root ? o_.root : -1);
        for (const Result& r : {oop, inp}) {
          double algbw = r.us > 0 ? static_cast<double>(bytes) / 1e3 / r.us : 0;
          double busbw = algbw * BusFactor(coll_, n_);
          bw_sum_ += busbw;
          ++bw_count_;
          std::string wrong = o_.check ? std::to_string(r.wrong) : "N/A";
          std::printf("  %7s  %6.2f  %6.2f  %5s", FormatTime(r.us).c_str(), algbw, busbw,
                      wrong.c_str());
        }
        std::printf("\n");
        std::fflush(stdout);
      }
      Note(bytes);
      total_wrong_ += oop.wrong + inp.wrong;
      if (o_.step_factor <= 1 && o_.step_bytes == 0) break;
      if (o_.step_factor > 1 && size > o_.max_bytes / o_.step_factor) break;
    }
  }

  // The selector's choice per size, as comment lines after the table (nccl-tests parsers skip
  // '#' lines): consecutive sizes with the same choice share a line.
  void PrintAlgorithms() const {
    std::printf("# Algorithm per size (BRAID_ALGO forces one; BRAID_DEBUG=INFO logs each call):\n");
    for (size_t i = 0; i < choices_.size();) {
      size_t j = i;
      while (j + 1 < choices_.size() && choices_[j + 1].algorithm == choices_[i].algorithm &&
             choices_[j + 1].chunk == choices_[i].chunk) {
        ++j;
      }
      std::printf("#   %12zu .. %12zu B: %s", choices_[i].bytes, choices_[j].bytes,
                  choices_[i].algorithm.c_str());
      if (choices_[i].chunk) std::printf(", chunk %zu B", choices_[i].chunk);
      std::printf("\n");
      i = j + 1;
    }
  }

  uint64_t total_wrong() const { return total_wrong_; }
  double avg_busbw() const { return bw_count_ ? bw_sum_ / bw_count_ : 0; }

 private:
  struct Result {
    double us;
    uint64_t wrong;
  };
  struct ChoiceAt {
    size_t bytes;
    std::string algorithm;
    size_t chunk;
  };
  void Note(size_t bytes) {
    for (const ChoiceAt& c : choices_) {
      if (c.bytes == bytes) return;
    }
    const char* name = nullptr;
    size_t chunk = 0;
    static const char* const kNames[] = {"allreduce", "allgather", "reducescatter", "broadcast"};
    int which = coll_ == Coll::kAllReduce ? 0 : coll_ == Coll::kAllGather ? 1
                : coll_ == Coll::kReduceScatter ? 2 : 3;
    if (braidCommGetAlgorithm(comm_, kNames[which], bytes, &name, &chunk) == braidSuccess) {
      choices_.push_back({bytes, name, chunk});
    }
  }
  std::vector<ChoiceAt> choices_;
  struct Buffers {
    const void* send;
    void* recv;
  };

  Buffers Place(const Pattern& p, bool in_place) const {
    size_t slice = p.count * TypeSize(p.type) * static_cast<size_t>(rank_);
    if (!in_place) return {send_, recv_};
    switch (coll_) {
      case Coll::kAllGather:
        return {recv_ + slice, recv_};  // as NCCL: own slice of recvbuff
      case Coll::kReduceScatter:
        return {recv_, recv_ + slice};
      default:
        return {recv_, recv_};
    }
  }

  // Inputs in place, outputs poisoned (so an element that is never written is caught).
  void Init(const Pattern& p, Buffers b, bool in_place) {
    size_t ts = TypeSize(p.type), n = static_cast<size_t>(n_);
    void* send = const_cast<void*>(b.send);
    switch (coll_) {
      case Coll::kAllReduce:
        if (!in_place) Poison(b.recv, p.count * ts);
        FillInput(p, rank_, send, 0, p.count);
        break;
      case Coll::kAllGather:
        Poison(b.recv, p.count * ts * n);
        FillInput(p, rank_, send, 0, p.count);
        break;
      case Coll::kReduceScatter:
        if (!in_place) Poison(b.recv, p.count * ts);
        FillInput(p, rank_, send, 0, p.count * n);
        break;
      case Coll::kBroadcast:
        Poison(b.recv, p.count * ts);
        if (rank_ == p.root) FillInput(p, p.root, send, 0, p.count);
        break;
      case Coll::kReduce:
      case Coll::kSendRecv:
        if (!in_place) Poison(b.recv, p.count * ts);
        FillInput(p, rank_, send, 0, p.count);
        break;
      case Coll::kAllToAll:
        if (!in_place) Poison(b.recv, p.count * ts * n);
        FillInput(p, rank_, send, 0, p.count * n);
        break;
    }
  }

  // `req` (nonblocking) has room for two requests; sendrecv uses both.
  braidResult_t Start(const Pattern& p, Buffers b, braidRequest_t* req) {
    const bool nb = req != nullptr;
    switch (coll_) {
      case Coll::kReduce:
        return nb ? braidIreduce(b.send, b.recv, p.count, p.type, p.op, p.root, comm_, req)
                  : braidReduce(b.send, b.recv, p.count, p.type, p.op, p.root, comm_);
      case Coll::kAllToAll:
        return nb ? braidIallToAll(b.send, b.recv, p.count, p.type, comm_, req)
                  : braidAllToAll(b.send, b.recv, p.count, p.type, comm_);
      case Coll::kSendRecv: {
        int next = (rank_ + 1) % n_, prev = (rank_ + n_ - 1) % n_;
        braidResult_t r = braidGroupStart();
        if (r == braidSuccess)
          r = nb ? braidIsend(b.send, p.count, p.type, next, comm_, &req[0])
                 : braidSend(b.send, p.count, p.type, next, comm_);
        if (r == braidSuccess)
          r = nb ? braidIrecv(b.recv, p.count, p.type, prev, comm_, &req[1])
                 : braidRecv(b.recv, p.count, p.type, prev, comm_);
        braidResult_t end = braidGroupEnd();
        return r != braidSuccess ? r : end;
      }
      case Coll::kAllReduce:
        return nb ? braidIallReduce(b.send, b.recv, p.count, p.type, p.op, comm_, req)
                  : braidAllReduce(b.send, b.recv, p.count, p.type, p.op, comm_);
      case Coll::kAllGather:
        return nb ? braidIallGather(b.send, b.recv, p.count, p.type, comm_, req)
                  : braidAllGather(b.send, b.recv, p.count, p.type, comm_);
      case Coll::kReduceScatter:
        return nb ? braidIreduceScatter(b.send, b.recv, p.count, p.type, p.op, comm_, req)
                  : braidReduceScatter(b.send, b.recv, p.count, p.type, p.op, comm_);
      case Coll::kBroadcast:
        return nb ? braidIbroadcast(b.send, b.recv, p.count, p.type, p.root, comm_, req)
                  : braidBroadcast(b.send, b.recv, p.count, p.type, p.root, comm_);
    }
    return braidInvalidArgument;
  }

  const char* CollName() const {
    switch (coll_) {
      case Coll::kAllReduce:
        return "braidAllReduce";
      case Coll::kAllGather:
        return "braidAllGather";
      case Coll::kReduceScatter:
        return "braidReduceScatter";
      case Coll::kBroadcast:
        return "braidBroadcast";
      case Coll::kReduce:
        return "braidReduce";
      case Coll::kAllToAll:
        return "braidAllToAll";
      case Coll::kSendRecv:
        return "braidSend/braidRecv";
    }
    return "?";
  }

  // -z 1 (nccl-tests' "blocking collectives"): one blocking call per iteration. -z 0: like
  // nccl-tests' asynchronous launches, start every iteration with the nonblocking form, then
  // wait for all of them (Braid runs operations on a communicator in the order started).
  void Iterate(const Pattern& p, Buffers b, int iters) {
    if (o_.blocking) {
      for (int i = 0; i < iters; ++i) Check(Start(p, b, nullptr), CollName());
      return;
    }
    for (int i = 0; i < iters; ++i) Check(Start(p, b, &reqs_[2 * i]), CollName());
    for (braidRequest_t& r : reqs_) {
      if (r) Check(braidWait(r), "braidWait");
      r = nullptr;
    }
  }

  Result RunOne(const Pattern& p, bool in_place) {
    Buffers b = Place(p, in_place);
    Init(p, b, in_place);
    Iterate(p, b, o_.warmup);
    Check(braidBarrier(comm_), "braidBarrier");
    auto t0 = std::chrono::steady_clock::now();
    Iterate(p, b, o_.iters);
    auto t1 = std::chrono::steady_clock::now();
    double us = std::chrono::duration<double, std::micro>(t1 - t0).count() / o_.iters;
    if (o_.average != 0) {
      braidRedOp_t op = o_.average == 1 ? braidSum : o_.average == 2 ? braidMin : braidMax;
      double agg = 0;
      Check(braidAllReduce(&us, &agg, 1, braidFloat64, op, comm_), "braidAllReduce(timing)");
      us = o_.average == 1 ? agg / n_ : agg;
    }
    Result r{us, 0};
    if (o_.check) {
      // As nccl-tests: fresh inputs, one more operation, then the exact comparison.
      Init(p, b, in_place);
      Iterate(p, b, 1);
      size_t results = coll_ == Coll::kAllGather || coll_ == Coll::kAllToAll
                           ? p.count * static_cast<size_t>(n_)
                           : p.count;
      uint64_t mine = CountWrong(p, b.recv, results);
      if (mine)
        std::fprintf(stderr, "rank %d: %s %s %s count %zu %s: %llu wrong elements\n", rank_,
                     CollName(), TypeName(p.type), OpName(p.op), p.count,
                     in_place ? "in-place" : "out-of-place", static_cast<unsigned long long>(mine));
      Check(braidAllReduce(&mine, &r.wrong, 1, braidUint64, braidSum, comm_),
            "braidAllReduce(#wrong)");
    }
    return r;
  }

  Coll coll_;
  const Options& o_;
  braidComm_t comm_;
  int rank_, n_;
  char* send_;
  char* recv_;
  std::vector<braidRequest_t> reqs_;
  uint64_t total_wrong_ = 0;
  double bw_sum_ = 0;
  int bw_count_ = 0;
};

// One line per rank (rank 0 gathers fixed-size records with braidAllGather).
void PrintRanks(braidComm_t comm, int rank, int nranks) {
  constexpr size_t kRec = 192;
  char mine[kRec] = {};
  char host[64] = "?";
  if (const char* forced = std::getenv("BRAID_HOSTNAME"))
    std::snprintf(host, sizeof(host), "%s", forced);  // namespaces share the kernel's name
  else
    gethostname(host, sizeof(host) - 1);
  const char* transport = "?";
  Check(braidCommTransportName(comm, &transport), "braidCommTransportName");
  std::snprintf(mine, kRec, "#  Rank %2d Pid %6d on %10s transport %s", rank,
                static_cast<int>(getpid()), host, transport);
  std::vector<char> all(kRec * static_cast<size_t>(nranks));
  Check(braidAllGather(mine, all.data(), kRec, braidInt8, comm), "braidAllGather(hosts)");
  if (rank != 0) return;
  std::printf("#\n# Using ranks\n");
  for (int r = 0; r < nranks; ++r) std::printf("%s\n", all.data() + kRec * r);
  std::printf("#\n");
}

void PrintHeader() {
  std::printf(
      "# %10s  %12s  %8s  %6s  %6s           out-of-place                       "
      "in-place          \n",
      "", "", "", "", "");
  std::printf("# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s %6s  %7s  %6s  %6s %6s\n", "size",
              "count", "type", "redop", "root", "time", "algbw", "busbw", "#wrong", "time", "algbw",
              "busbw", "#wrong");
  std::printf("# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %5s  %7s  %6s  %6s  %5s\n", "(B)",
              "(elements)", "", "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)", "(GB/s)", "(GB/s)",
              "");
}

}  // namespace

int PerfMain(int argc, char** argv, Coll coll) {
  Options opts;
  // Parse quietly first: the rank is not known until the communicator exists, and only rank 0
  // should print; but -h and bad flags must not need a launcher.
  const char* env_rank = LauncherRank();
  bool launched = env_rank != nullptr;
  bool print = !launched || std::strcmp(env_rank, "0") == 0;
  int rc = ParseOptions(argc, argv, coll, print, &opts);
  if (rc >= 0) return rc;
  if (!launched) {
    std::fprintf(stderr,
                 "%s: no launcher environment found (BRAID_RANK/BRAID_WORLD_SIZE/BRAID_ROOT, "
                 "torchrun's RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT, Open MPI's "
                 "OMPI_COMM_WORLD_RANK or Slurm's SLURM_PROCID).\nRun it under the local "
                 "launcher, e.g.: braidrun -n 4 %s -b 8 -e 128M -f 2\n(or with mpirun / srun "
                 "across machines).\n",
                 argv[0], argv[0]);
    return 2;
  }
  g_rank = std::atoi(env_rank);  // for error messages until the communicator says
  braidComm_t comm = nullptr;
  bool use_mpi = false;
#ifdef BRAID_PERF_MPI
  // Started by mpirun and given no Braid root: MPI carries the creation-time exchange.
  use_mpi = std::getenv("OMPI_COMM_WORLD_RANK") != nullptr &&
            std::getenv("BRAID_ROOT") == nullptr;
  if (use_mpi) {
    MPI_Init(&argc, &argv);
    Check(braidCommInitFromMPI(&comm, MPI_COMM_WORLD), "braidCommInitFromMPI");
  }
#endif
  if (!use_mpi) Check(braidCommInitFromEnv(&comm), "braidCommInitFromEnv");
  int rank = 0, nranks = 0;
  Check(braidCommUserRank(comm, &rank), "braidCommUserRank");
  Check(braidCommCount(comm, &nranks), "braidCommCount");
  g_rank = rank;
  if ((coll == Coll::kBroadcast || coll == Coll::kReduce) && opts.root >= nranks) {
    if (rank == 0)
      std::fprintf(stderr, "%s: -r %d: root must be below the rank count %d\n", argv[0], opts.root,
                   nranks);
    braidCommDestroy(comm);
    return 2;
  }
  if (rank == 0) {
    int version = 0;
    braidGetVersion(&version);
    std::printf(
        "# nThread 1 nGpus 1 minBytes %zu maxBytes %zu step: %zu(%s) warmup iters: %d "
        "iters: %d agg iters: 1 validation: %d graph: 0\n",
        opts.min_bytes, opts.max_bytes, opts.step_factor > 1 ? opts.step_factor : opts.step_bytes,
        opts.step_factor > 1 ? "factor" : "bytes", opts.warmup, opts.iters, opts.check);
    std::printf("# Braid %d.%d.%d: %d ranks, blocking: %d, time: %s\n", version / 10000,
                version / 100 % 100, version % 100, nranks, opts.blocking,
                opts.average == 0   ? "rank 0"
                : opts.average == 1 ? "average over ranks"
                : opts.average == 2 ? "min over ranks"
                                    : "max over ranks");
  }
  PrintRanks(comm, rank, nranks);
  if (rank == 0) PrintHeader();
  std::fflush(stdout);

  uint64_t wrong = 0;
  double busbw = 0;
  {
    Bench bench(coll, opts, comm, rank, nranks);
    for (braidDataType_t type : opts.types)
      for (braidRedOp_t op : opts.ops) bench.Sweep(type, op);
    if (rank == 0) bench.PrintAlgorithms();
    wrong = bench.total_wrong();
    busbw = bench.avg_busbw();
  }
  Check(braidCommDestroy(comm), "braidCommDestroy");
#ifdef BRAID_PERF_MPI
  if (use_mpi) MPI_Finalize();
#endif
  if (rank == 0) {
    std::printf("# Out of bounds values : %llu %s\n", static_cast<unsigned long long>(wrong),
                wrong ? "FAILED" : "OK");
    std::printf("# Avg bus bandwidth    : %g \n#\n\n", busbw);
    std::fflush(stdout);
  }
  return wrong ? 1 : 0;
}

}  // namespace braidperf
