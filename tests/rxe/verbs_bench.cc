// Point-to-point benchmark of a Braid transport shaped like perftest, so tests/rxe/compare.sh
// can report ratios against ib_send_lat and ib_write_bw measured in the same guest:
//   latency:   ping-pong of SIZE-byte messages, typical (median) one-way time = RTT / 2, like
//              ib_send_lat's t_typical;
//   bandwidth: rank 0 streams ITERS messages of BW_SIZE bytes from registered memory with
//              WINDOW in flight (ib_write_bw keeps a queue of writes in flight too); MB/s as
//              perftest counts it (2^20 bytes).
// Usage: verbs_bench [transport=verbs] [lat_size=2] [lat_iters=1000] [bw_size=1048576]
//                    [bw_iters=50] [window=8] [spin_us=50] [bw_receiver_spin_us=50]
// spin_us applies to both latency ranks and the bandwidth sender; the bandwidth receiver spins
// bw_receiver_spin_us, then sleeps on the completion channel like the progress engine
// (ib_write_bw's receiver does not poll at all, and on soft-RoCE a spinning receiver takes the
// CPU the kernel needs to place the data and acknowledge it).
#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include <x86intrin.h>

#include <algorithm>
#include <optional>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/conformance/harness.h"

using namespace braid;
using namespace braid::conformance;
using Clock = std::chrono::steady_clock;

namespace {

size_t g_lat_size = 2, g_bw_size = 1 << 20;
int g_lat_iters = 1000, g_bw_iters = 50, g_window = 8;

// Waits like the progress engine: spins g_spin on progress(), then sleeps on wait_fd. perftest
// busy-polls, so compare.sh passes a long spin for a like-for-like latency.
std::chrono::microseconds g_spin{50}, g_bw_receiver_spin{50};

absl::Status WaitFor(ChildEnv& env, const RequestPtr& request,
                     std::chrono::microseconds spin = g_spin) {
  // perftest's polling loop reads no clock; here the clock is read from the 64th turn on, every
  // 64th turn (the guest's clocksource is the emulated HPET, where a read traps into QEMU).
  // The spin is measured from there: it runs at most 64 turns longer than asked.
  bool sleeping = spin.count() == 0;
  std::optional<Deadline> deadline;
  Clock::time_point spin_until{};
  for (unsigned turn = 1; !request->done(); ++turn) {
    BRAID_RETURN_IF_ERROR(env.transport->progress());
    if (request->done()) break;
    if (!sleeping && turn % 64 != 0) continue;
    if (!deadline) {
      deadline = Deadline::After(std::chrono::seconds(120));
      spin_until = Clock::now() + spin;
    }
    if (deadline->expired()) return absl::DeadlineExceededError("bench stuck");
    if (sleeping || Clock::now() > spin_until) {
      sleeping = true;
      env.transport->prepare_to_sleep();
      pollfd pfd{env.transport->wait_fd(), POLLIN, 0};
      poll(&pfd, 1, 100);
    }
  }
  return request->status();
}

absl::Status Latency(ChildEnv& env) {
  const int me = env.context.rank, peer = 1 - me;
  std::vector<char> out(std::max<size_t>(g_lat_size, 1), 1), in(std::max<size_t>(g_lat_size, 1));
  // Round trips are timed with the TSC like perftest (an HPET read costs microseconds under
  // TCG), converted with the steady clock over the whole loop.
  std::vector<uint64_t> trips;
  auto loop_start = Clock::now();
  uint64_t tsc_start = __rdtsc();
  for (int i = -10; i < g_lat_iters; ++i) {
    uint64_t start = __rdtsc();
    if (me == 0) {
      BRAID_ASSIGN_OR_RETURN(auto r, env.to(peer).irecv(in.data(), g_lat_size, 1));
      BRAID_ASSIGN_OR_RETURN(auto s, env.to(peer).isend(out.data(), g_lat_size, 0));
      BRAID_RETURN_IF_ERROR(WaitFor(env, r));
      BRAID_RETURN_IF_ERROR(WaitFor(env, s));
    } else {
      BRAID_ASSIGN_OR_RETURN(auto r, env.to(peer).irecv(in.data(), g_lat_size, 0));
      BRAID_RETURN_IF_ERROR(WaitFor(env, r));
      BRAID_ASSIGN_OR_RETURN(auto s, env.to(peer).isend(out.data(), g_lat_size, 1));
      BRAID_RETURN_IF_ERROR(WaitFor(env, s));
    }
    if (i >= 0) trips.push_back(__rdtsc() - start);
  }
  double seconds_per_tick = std::chrono::duration<double>(Clock::now() - loop_start).count() /
                            static_cast<double>(__rdtsc() - tsc_start);
  if (me == 0 && !trips.empty()) {
    std::sort(trips.begin(), trips.end());
    std::printf("braid_lat_typical_us %.2f\n",
                static_cast<double>(trips[trips.size() / 2]) * seconds_per_tick / 2 * 1e6);
  }
  return absl::OkStatus();
}

absl::Status Bandwidth(ChildEnv& env) {
  const int me = env.context.rank, peer = 1 - me;
  std::vector<char> buffer(g_bw_size * g_window, static_cast<char>(me + 1));
  BRAID_ASSIGN_OR_RETURN(MemoryRegion * region,
                         env.transport->register_memory(buffer.data(), buffer.size()));
  std::vector<RequestPtr> inflight(g_window);
  char go = 0;
  // Both sides ready before the clock starts.
  if (me == 1) {
    BRAID_ASSIGN_OR_RETURN(auto s, env.to(peer).isend(&go, 1, 7));
    BRAID_RETURN_IF_ERROR(WaitFor(env, s));
  } else {
    BRAID_ASSIGN_OR_RETURN(auto r, env.to(peer).irecv(&go, 1, 7));
    BRAID_RETURN_IF_ERROR(WaitFor(env, r));
  }
  auto start = Clock::now();
  for (int i = 0; i < g_bw_iters + g_window; ++i) {
    int slot = i % g_window;
    if (inflight[slot]) {
      BRAID_RETURN_IF_ERROR(WaitFor(env, inflight[slot], me == 0 ? g_spin : g_bw_receiver_spin));
    }
    inflight[slot].reset();
    if (i >= g_bw_iters) continue;
    char* data = buffer.data() + slot * g_bw_size;
    uint64_t tag = 100 + static_cast<uint64_t>(i);
    if (me == 0) {
      BRAID_ASSIGN_OR_RETURN(inflight[slot], env.to(peer).isend(data, g_bw_size, tag, region));
    } else {
      BRAID_ASSIGN_OR_RETURN(inflight[slot], env.to(peer).irecv(data, g_bw_size, tag, region));
    }
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (me == 1) {
    std::printf("braid_bw_MBps %.2f\n", g_bw_size * double(g_bw_iters) / seconds / (1 << 20));
  }
  std::fflush(stdout);
  return env.transport->deregister_memory(region);
}

// BRAID_BENCH_PIN=1: rank r runs on CPU r only. Two ranks that busy-poll must not share a CPU
// (a ping-pong between them would then wait for the scheduler's time slices, milliseconds);
// perftest's client and server are two unrelated processes that the scheduler spreads.
void PinIfAsked(int rank) {
  const char* pin = std::getenv("BRAID_BENCH_PIN");
  if (pin == nullptr || std::string(pin) != "1") return;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus < 2) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(rank % cpus, &set);
  sched_setaffinity(0, sizeof(set), &set);
}

}  // namespace

int main(int argc, char** argv) {
  std::string transport = argc > 1 ? argv[1] : "verbs";
  if (argc > 2) g_lat_size = std::strtoull(argv[2], nullptr, 10);
  if (argc > 3) g_lat_iters = std::atoi(argv[3]);
  if (argc > 4) g_bw_size = std::strtoull(argv[4], nullptr, 10);
  if (argc > 5) g_bw_iters = std::atoi(argv[5]);
  if (argc > 6) g_window = std::max(1, std::atoi(argv[6]));
  if (argc > 7) g_spin = std::chrono::microseconds(std::atoll(argv[7]));
  if (argc > 8) g_bw_receiver_spin = std::chrono::microseconds(std::atoll(argv[8]));
  auto outcomes = RunRanks(transport, 2, [](ChildEnv& env) -> absl::Status {
    PinIfAsked(env.context.rank);
    BRAID_RETURN_IF_ERROR(Latency(env));
    return Bandwidth(env);
  }, std::chrono::seconds(600));
  int rc = 0;
  for (auto& o : outcomes) {
    if (!o.ok) {
      std::fprintf(stderr, "%s\n", o.message.c_str());
      rc = 1;
    }
  }
  return rc;
}
