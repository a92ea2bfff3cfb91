// Communicator: one rank's membership in a group. Owns the transport, its connections and the
// progress engine, runs collectives in the order they were issued, and records the first
// asynchronous error. The C and C++ APIs are thin layers over it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "collectives/algorithms.h"
#include "collectives/context.h"
#include "core/config.h"
#include "core/datatype.h"
#include "core/progress.h"
#include "transports/transport.h"

namespace braid {

struct UniqueId;

// "AllReduce (float, 1024 elements)": how errors and logs name a collective call.
std::string DescribeCollective(absl::string_view name, DataType type, size_t count);

// Completion state of a nonblocking collective.
class Operation {
 public:
  bool done() const;
  absl::Status Wait();  // blocks until done.
  absl::Status status() const;
 private:
  friend class Communicator;
  void Finish(absl::Status status);
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  absl::Status status_;
};

class Communicator {
 public:
  // Joins the rendezvous named by `id`, picks the transport and connects to every peer.
  static absl::StatusOr<std::unique_ptr<Communicator>> Create(const UniqueId& id, int nranks,
                                                              int rank);
  ~Communicator();

  int rank() const { return rank_; }
  int size() const { return nranks_; }
  const std::string& transport_name() const { return transport_name_; }
  const std::string& host(int rank) const { return hosts_[static_cast<size_t>(rank)]; }
  void set_timeout(std::chrono::milliseconds timeout) { timeout_ms_ = timeout.count(); }

  // Blocking collectives (validated; see include/braid/braid.h for buffer conventions).
  absl::Status AllReduce(const void* send, void* recv, size_t count, DataType t, RedOp op);
  absl::Status AllGather(const void* send, void* recv, size_t count, DataType t);
  absl::Status ReduceScatter(const void* send, void* recv, size_t count, DataType t, RedOp op);
  absl::Status Broadcast(const void* send, void* recv, size_t count, DataType t, int root);
  absl::Status Barrier();

  // A collective's work once its arguments are validated; Run executes it in issue order on
  // the calling thread, Start queues it for the worker thread (the nonblocking form).
  using Body = std::function<absl::Status(CollectiveContext&)>;
  absl::Status Run(std::string description, const Body& body);
  absl::StatusOr<std::shared_ptr<Operation>> Start(std::string description, Body body);
  // Builds the body of each collective after validating its arguments (shared by both forms).
  absl::StatusOr<Body> AllReduceBody(const void* send, void* recv, size_t count, DataType t,
                                     RedOp op);
  absl::StatusOr<Body> AllGatherBody(const void* send, void* recv, size_t count, DataType t);
  absl::StatusOr<Body> ReduceScatterBody(const void* send, void* recv, size_t count, DataType t,
                                         RedOp op);
  absl::StatusOr<Body> BroadcastBody(const void* send, void* recv, size_t count, DataType t,
                                     int root);
  Body BarrierBody();

  // The algorithm and chunk the selector picks for `collective` at `bytes` (issue 6).
  Choice ChooseAlgorithm(Collective collective, size_t bytes) const;

  // Thread-safe. In-flight and future operations fail with Cancelled promptly.
  void Abort();
  // The first error that broke the communicator (OK if none).
  absl::Status async_error() const;

 private:
  Communicator() = default;
  absl::Status Execute(uint64_t ticket, const std::string& description, const Body& body);
  void WorkerLoop();
  void RecordFailure(const absl::Status& status);
  absl::Status CheckUsable() const;
  absl::Status Tune();  // measures or loads the selector's link model.

  int rank_ = 0, nranks_ = 1;
  Config config_;
  std::vector<std::string> hosts_;
  std::string transport_name_;
  std::unique_ptr<Transport> transport_;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<Connection*> peers_;  // indexed by rank.
  std::unique_ptr<ProgressEngine> engine_;
  std::vector<std::byte> scratch_;
  Tuning tuning_;  // the selector's link model and BRAID_ALGO overrides.
  std::atomic<long long> timeout_ms_{0};

  // Issue order: every operation takes a ticket; tickets run strictly in order.
  std::mutex order_mutex_;
  std::condition_variable order_cv_;
  uint64_t next_ticket_ = 0, running_ticket_ = 0;

  // Worker for nonblocking operations.
  struct Pending {
    uint64_t ticket;
    std::string description;
    Body body;
    std::shared_ptr<Operation> operation;
  };
  std::deque<Pending> queue_;
  std::thread worker_;
  bool stopping_ = false;

  mutable std::mutex error_mutex_;
  absl::Status async_error_;
  std::atomic<bool> broken_{false};
};

}  // namespace braid
