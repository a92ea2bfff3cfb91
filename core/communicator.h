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
#include "collectives/point_to_point.h"
#include "core/config.h"
#include "core/datatype.h"
#include "core/group_builder.h"
#include "core/heartbeat.h"
#include "core/progress.h"
#include "transports/transport.h"

namespace braid {

struct UniqueId;
class Bootstrap;
class RecoveryListener;

// "AllReduce (float, 1024 elements)": how errors and logs name a collective call.
std::string DescribeCollective(absl::string_view name, DataType type, size_t count);

// Completion state of a nonblocking collective.
class Operation {
 public:
  bool done() const;
  absl::Status Wait();  // blocks until done.
  absl::Status status() const;
  // Completes it (by the communicator, or by a group whose calls could not be issued).
  void Finish(absl::Status status);

 private:
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
  // Only collectives (`collective`) number themselves for tags: point-to-point batches are seen
  // by one peer only, so they must not shift the numbering the other ranks agree on. Start
  // completes `operation` if given (groups create it when the call is made).
  using Body = std::function<absl::Status(CollectiveContext&)>;
  absl::Status Run(std::string description, const Body& body, bool collective = true);
  absl::StatusOr<std::shared_ptr<Operation>> Start(std::string description, Body body,
                                                   bool collective = true,
                                                   std::shared_ptr<Operation> operation = nullptr);
  // Builds the body of each collective after validating its arguments (shared by both forms).
  absl::StatusOr<Body> AllReduceBody(const void* send, void* recv, size_t count, DataType t,
                                     RedOp op);
  absl::StatusOr<Body> AllGatherBody(const void* send, void* recv, size_t count, DataType t);
  absl::StatusOr<Body> ReduceScatterBody(const void* send, void* recv, size_t count, DataType t,
                                         RedOp op);
  absl::StatusOr<Body> BroadcastBody(const void* send, void* recv, size_t count, DataType t,
                                     int root);
  Body BarrierBody();

  // ---- Reduce, AllToAll(v), point-to-point (core/communicator_ops.cc, communicator_p2p.cc) ----
  absl::StatusOr<Body> ReduceBody(const void* send, void* recv, size_t count, DataType t, RedOp op,
                                  int root);
  absl::StatusOr<Body> AllToAllBody(const void* send, void* recv, size_t count, DataType t);
  absl::StatusOr<Body> AllToAllvBody(const void* send, const size_t* send_counts,
                                     const size_t* send_displs, void* recv,
                                     const size_t* recv_counts, const size_t* recv_displs,
                                     DataType t);
  // Validates one braidSend/braidRecv and numbers it among this rank's transfers with `peer`
  // in its direction (the order that matches it with the peer's call).
  absl::StatusOr<PeerTransfer> PrepareTransfer(bool is_send, const void* buffer, size_t count,
                                               DataType t, int peer);
  // The body running a batch of transfers (self transfers must pair up inside it).
  absl::StatusOr<Body> PointToPointBody(std::vector<PeerTransfer> batch);
  // braidCommRegister / braidCommDeregister: long-lived registrations with the transport.
  absl::StatusOr<MemoryRegion*> RegisterMemory(void* buf, size_t size) {
    return transport_->register_memory(buf, size);
  }
  absl::Status DeregisterMemory(MemoryRegion* region) {
    return transport_->deregister_memory(region);
  }
  // The algorithm and chunk the selector picks for `collective` at `bytes` (issue 6).
  Choice ChooseAlgorithm(Collective collective, size_t bytes) const;

  // Thread-safe. In-flight and future operations fail with Cancelled promptly.
  void Abort();
  // The first error that broke the communicator (OK if none).
  absl::Status async_error() const;

  // braidCommSplit: collective over this communicator. Ranks passing the same color >= 0 form
  // a new communicator ordered by (key, parent rank); kSplitNoColor ranks take part in the
  // exchange and get nullptr. Blobs travel over this communicator's connections (core/split.cc).
  static constexpr int kSplitNoColor = -1;
  absl::StatusOr<std::unique_ptr<Communicator>> Split(int color, int key);
  uint64_t comm_id() const { return comm_id_; }
  // ---- Fault tolerance (core/shrink.cc).
  // Ranks this rank saw fail (crashed, silent past the heartbeat timeout, or named as the
  // first failure by a peer), in the order they were seen.
  std::vector<int> failed_ranks();
  // Survivors agree on who is alive and build a smaller communicator (ranks renumbered in
  // the old order). Collective over the survivors; works on a broken communicator.
  absl::StatusOr<std::unique_ptr<Communicator>> Shrink();

 private:
  Communicator() = default;
  friend absl::StatusOr<std::unique_ptr<Communicator>> BuildGroup(GroupSpec spec,
                                                                  const BlobExchange& exchange,
                                                                  Deadline deadline);
  absl::Status Execute(uint64_t ticket, const std::string& description, const Body& body,
                       bool collective);
  void WorkerLoop();
  void RecordFailure(const absl::Status& status);
  void RememberFailedRanks();  // from the transport, before it is closed.
  // Creation steps of the fault-tolerance machinery (core/shrink.cc).
  absl::Status PrepareRecovery(const BlobExchange& exchange, const std::string& local_address,
                               Deadline deadline);
  void StartHeartbeat();
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
  // What derived communicators (split, shrink) reuse: identity, secret, data-path address. The
  // secret also authenticates the shrink agreement.
  uint64_t comm_id_ = 0;
  std::vector<std::byte> secret_;
  std::string local_address_;
  int64_t splits_ = 0;  // braidCommSplit calls so far (collective, so equal on every rank).
  std::unique_ptr<RecoveryListener> recovery_;
  std::vector<Blob> recovery_blobs_;  // every rank's recovery listener address.
  std::unique_ptr<HeartbeatSender> heartbeat_;  // stopped before the transport is closed.
  std::vector<int> failed_ranks_;  // guarded by error_mutex_.

  // Issue order: every operation takes a ticket; tickets run strictly in order.
  std::mutex order_mutex_;
  std::condition_variable order_cv_;
  uint64_t next_ticket_ = 0, running_ticket_ = 0;
  uint64_t next_collective_ = 0;  // touched only by the running ticket.

  // Point-to-point numbering per peer: transfers issued so far in each direction.
  std::mutex transfer_mutex_;
  std::vector<uint64_t> sends_issued_, recvs_issued_;

  // Worker for nonblocking operations.
  struct Pending {
    uint64_t ticket;
    std::string description;
    Body body;
    std::shared_ptr<Operation> operation;
    bool collective;
  };
  std::deque<Pending> queue_;
  std::thread worker_;
  bool stopping_ = false;

  mutable std::mutex error_mutex_;
  absl::Status async_error_;
  std::atomic<bool> broken_{false};
};

}  // namespace braid
