// A small RAII wrapper around one io_uring (liburing 2.3) with a registered eventfd: the fd the
// progress engine sleeps on. Not thread-safe; the transport serializes access.
#pragma once

#include <liburing.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace braid::tcp {

class Uring {
 public:
  // `entries` submission slots; the completion queue is 4x larger.
  static absl::StatusOr<std::unique_ptr<Uring>> Create(unsigned entries);
  ~Uring();
  Uring(const Uring&) = delete;
  Uring& operator=(const Uring&) = delete;

  // Checks that io_uring can be set up here and supports the opcodes we use; `reason` says why not.
  static bool Probe(std::string* reason);

  // A free submission slot, submitting queued entries first when the queue is full. Null only if
  // that submit failed.
  io_uring_sqe* GetSqe();
  // Submits queued entries (if any) and flushes pending completions into the CQ.
  absl::Status Submit();
  bool HasUnsubmitted() { return io_uring_sq_ready(&ring_) > 0; }
  // COOP_TASKRUN: completions wait as task_work until we enter the kernel; the kernel raises
  // IORING_SQ_TASKRUN when some are waiting, and Submit() enters to run them.
  bool TaskRunPending() {
    return (IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_TASKRUN) != 0;
  }

  // Calls f(cqe) for every available completion and consumes them; returns how many.
  template <typename F>
  unsigned Reap(F&& f) {
    unsigned count = 0;
    io_uring_cqe* cqe = nullptr;
    unsigned head;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      f(cqe);
      ++count;
    }
    io_uring_cq_advance(&ring_, count);
    return count;
  }
  // Blocks up to `timeout` for at least one completion (used only when tearing down).
  void WaitForCompletion(std::chrono::milliseconds timeout);

  // The eventfd registered with the ring: readable after a completion was posted.
  int event_fd() const { return event_fd_; }
  void DrainEventFd();

 private:
  Uring() = default;
  io_uring ring_{};
  bool initialized_ = false;
  int event_fd_ = -1;
};

}  // namespace braid::tcp
