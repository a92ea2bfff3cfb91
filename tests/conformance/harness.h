// Multi-process harness for the transport conformance suite: forks one process per rank, each
// creates the transport through the registry, exchanges listen blobs through the parent over
// pipes, and runs a scenario over real sockets. Every wait is bounded; the parent kills the
// children on timeout, so a broken transport fails a test instead of hanging it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/deadline.h"
#include "core/status.h"
#include "transports/transport.h"

namespace braid::conformance {

// What a scenario body sees inside its child process.
struct ChildEnv {
  int child = 0;  // index among the forked processes.
  TransportContext context;
  std::unique_ptr<Transport> transport;
  std::vector<Blob> blobs;                          // every child's listen blob, by child index.
  std::vector<std::unique_ptr<Connection>> conns;   // by peer rank after Connect().

  // Connects to `peers` using blobs indexed by rank (child index == rank).
  absl::Status Connect(std::span<const int> peers, Deadline deadline);
  absl::Status ConnectAll(Deadline deadline);  // every other rank.
  Connection& to(int rank) { return *conns.at(rank); }

  // Drives progress (sleeping on wait_fd after prepare_to_sleep, like the progress engine) until
  // all requests are done; returns the first progress() error, or DeadlineExceeded. Request
  // failures are left for the caller to check.
  absl::Status WaitAll(std::span<const RequestPtr> requests, Deadline deadline);
  absl::Status Wait(const RequestPtr& request, Deadline deadline) {
    return WaitAll(std::span<const RequestPtr>(&request, 1), deadline);
  }
  // Index of a not-yet-seen request that is done (`seen` marks those already returned).
  absl::StatusOr<size_t> WaitAny(std::span<const RequestPtr> requests, std::vector<bool>& seen,
                                 Deadline deadline);
  // Drives progress for `duration` regardless of requests.
  absl::Status Drive(std::chrono::milliseconds duration);

  // Reports success to the parent and exits at once without tearing the transport down (the
  // kernel closes the sockets, as when a rank crashes).
  [[noreturn]] void ExitNow();
};

using Body = std::function<absl::Status(ChildEnv&)>;

struct ChildSpec {
  TransportContext context;
  Body body;
  bool connect_all = true;  // harness calls ConnectAll before the body.
};

struct ChildOutcome {
  bool ok = false;
  std::string message;  // failure text (status, signal, timeout).
};

// Runs the children to completion (or kills them after `timeout`).
std::vector<ChildOutcome> RunChildren(const std::string& transport, std::vector<ChildSpec> specs,
                                      std::chrono::seconds timeout);

// `nranks` ranks of one communicator, each running `body` after connecting to every other rank.
// `tweak` may adjust each rank's config (e.g. streams).
std::vector<ChildOutcome> RunRanks(const std::string& transport, int nranks, const Body& body,
                                   std::chrono::seconds timeout = std::chrono::seconds(120),
                                   const std::function<void(Config&)>& tweak = nullptr);

TransportContext MakeContext(int rank, int nranks, uint64_t comm_id, uint8_t secret_seed);

// Deterministic contents: depends on position, size, sender rank and tag.
void FillPattern(std::byte* data, size_t size, int rank, uint64_t tag);
// Empty if equal, else a description of the first difference.
std::string CheckPattern(const std::byte* data, size_t size, int rank, uint64_t tag);

// Names of registered transports whose probe says usable.
std::vector<std::string> UsableTransports();

}  // namespace braid::conformance
