// Transport micro-benchmark (not a test): two forked ranks over a registered transport.
// Ping-pong latency for 8 B and bandwidth (ping-pong, one direction at a time) from 1 MiB to
// 128 MiB. Usage:
//   transport_bench [transport=tcp] [streams=0] [min_stripe_bytes=524288] [max_bytes=128Mi]
#include <poll.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/conformance/harness.h"

using namespace braid;
using namespace braid::conformance;

namespace {

// Waits like the progress engine: spins on progress() for 50 us, then sleeps on wait_fd.
absl::Status Spin(ChildEnv& env, const RequestPtr& a, const RequestPtr& b) {
  auto deadline = Deadline::After(std::chrono::seconds(60));
  auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
  while (!(a->done() && b->done())) {
    BRAID_RETURN_IF_ERROR(env.transport->progress());
    if (a->done() && b->done()) break;
    if (deadline.expired()) return absl::DeadlineExceededError("bench stuck");
    if (std::chrono::steady_clock::now() > spin_until) {
      env.transport->prepare_to_sleep();
      pollfd pfd{env.transport->wait_fd(), POLLIN, 0};
      poll(&pfd, 1, 100);
    }
  }
  BRAID_RETURN_IF_ERROR(a->status());
  return b->status();
}

absl::Status PingPong(ChildEnv& env, size_t size, int iters, double* seconds_per_trip) {
  const int me = env.context.rank, peer = 1 - me;
  static std::vector<char> out(128u << 20, 1), in(128u << 20);
  auto start = std::chrono::steady_clock::now();
  for (int i = -2; i < iters; ++i) {
    if (i == 0) start = std::chrono::steady_clock::now();
    if (me == 0) {
      BRAID_ASSIGN_OR_RETURN(auto r, env.to(peer).irecv(in.data(), size, 1));
      BRAID_ASSIGN_OR_RETURN(auto s, env.to(peer).isend(out.data(), size, 0));
      BRAID_RETURN_IF_ERROR(Spin(env, s, r));
    } else {
      BRAID_ASSIGN_OR_RETURN(auto r, env.to(peer).irecv(in.data(), size, 0));
      BRAID_RETURN_IF_ERROR(Spin(env, r, r));
      BRAID_ASSIGN_OR_RETURN(auto s, env.to(peer).isend(out.data(), size, 1));
      BRAID_RETURN_IF_ERROR(Spin(env, s, s));
    }
  }
  *seconds_per_trip = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / iters / 2;
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  std::string transport = argc > 1 ? argv[1] : "tcp";
  int streams = argc > 2 ? std::atoi(argv[2]) : 0;
  size_t stripe = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 512 * 1024;
  static size_t max_size = argc > 4 ? std::strtoull(argv[4], nullptr, 10) : (128u << 20);
  auto outcomes = RunRanks(
      transport, 2,
      [](ChildEnv& env) -> absl::Status {
        double t = 0;
        BRAID_RETURN_IF_ERROR(PingPong(env, 8, 20000, &t));
        if (env.context.rank == 0) std::printf("%12s %10.2f us one-way latency\n", "8 B", t * 1e6);
        for (size_t size = 1u << 20; size <= max_size; size *= 2) {
          int iters = static_cast<int>(std::max<size_t>(4, (1u << 30) / size));
          BRAID_RETURN_IF_ERROR(PingPong(env, size, iters, &t));
          if (env.context.rank == 0) {
            std::printf("%10zu B %10.2f us %8.2f GB/s\n", size, t * 1e6, size / t / 1e9);
          }
        }
        std::fflush(stdout);
        return absl::OkStatus();
      },
      std::chrono::seconds(300), [&](Config& config) {
        config.tcp_streams = streams;
        config.tcp_min_stripe_bytes = stripe;
      });
  int rc = 0;
  for (auto& o : outcomes) {
    if (!o.ok) {
      std::fprintf(stderr, "%s\n", o.message.c_str());
      rc = 1;
    }
  }
  return rc;
}
