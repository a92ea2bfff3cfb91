// A simulated fabric: an in-process, deterministic, discrete-event transport that runs the real
// schedules of Braid's algorithms for thousands of ranks. Each rank is a fiber running the
// blocking algorithm; a wait suspends the fiber until a simulated completion. Each rank has a
// full-duplex port: a message occupies its sender for overhead + bytes * per_byte, arrives
// `latency` later and occupies the receiver's port for bytes * per_byte (a non-blocking switch,
// so only the ports of the two ends contend).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <queue>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "collectives/algorithms.h"
#include "collectives/context.h"
#include "core/progress.h"
#include "sim/fiber.h"
#include "transports/transport.h"

namespace braid::sim {

struct SimOptions {
  LinkModel link;
  // Each payload byte counts as `byte_scale` bytes on the wire: runs a large message's schedule
  // on a proportionally smaller buffer (chunk sizes must be scaled alike by the caller).
  double byte_scale = 1;
  size_t stack_bytes = 256 * 1024;
  bool shared_scratch = false;  // timing runs: ranks share scratch memory (results are garbage).
};

struct SimResult {
  absl::Status status;
  double seconds = 0;  // simulated time when the last rank finished.
  uint64_t messages = 0;
  double wire_bytes = 0;
};

// Runs `body` as every rank of an n-rank communicator, starting at time 0.
using SimBody = std::function<absl::Status(const CollectiveContext& ctx)>;
SimResult Simulate(int nranks, const SimOptions& options, const SimBody& body);

}  // namespace braid::sim
