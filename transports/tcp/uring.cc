#include "transports/tcp/uring.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/status.h"

namespace braid::tcp {

absl::StatusOr<std::unique_ptr<Uring>> Uring::Create(unsigned entries) {
  std::unique_ptr<Uring> uring(new Uring());
  io_uring_params params;
  std::memset(&params, 0, sizeof(params));
  // No SQPOLL (it burns a core), no SINGLE_ISSUER/DEFER_TASKRUN (different threads may drive
  // the ring in turn under the transport's mutex).
  params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
  params.cq_entries = entries * 4;
  int rc = io_uring_queue_init_params(entries, &uring->ring_, &params);
  if (rc == -EINVAL) {
    std::memset(&params, 0, sizeof(params));
    params.flags = IORING_SETUP_CQSIZE;
    params.cq_entries = entries * 4;
    rc = io_uring_queue_init_params(entries, &uring->ring_, &params);
  }
  if (rc < 0) {
    return SystemError("io_uring_queue_init", -rc,
                       "io_uring may be disabled (sysctl kernel.io_uring_disabled, seccomp in "
                       "containers) or RLIMIT_MEMLOCK too low; set BRAID_TRANSPORT to another "
                       "transport or allow io_uring");
  }
  uring->initialized_ = true;
  uring->event_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (uring->event_fd_ < 0) return SystemError("eventfd", errno);
  rc = io_uring_register_eventfd(&uring->ring_, uring->event_fd_);
  if (rc < 0) return SystemError("io_uring_register_eventfd", -rc);
  return uring;
}

Uring::~Uring() {
  if (initialized_) io_uring_queue_exit(&ring_);
  if (event_fd_ >= 0) close(event_fd_);
}

bool Uring::Probe(std::string* reason) {
  io_uring ring;
  int rc = io_uring_queue_init(4, &ring, 0);
  if (rc < 0) {
    *reason = absl::StrCat("io_uring_queue_init failed: ", std::strerror(-rc),
                           " (io_uring disabled by sysctl/seccomp, or kernel too old)");
    return false;
  }
  io_uring_probe* probe = io_uring_get_probe_ring(&ring);
  bool ok = probe != nullptr && io_uring_opcode_supported(probe, IORING_OP_SENDMSG) &&
            io_uring_opcode_supported(probe, IORING_OP_RECV);
  if (probe) io_uring_free_probe(probe);
  io_uring_queue_exit(&ring);
  if (!ok) {
    *reason = "io_uring lacks IORING_OP_SENDMSG/IORING_OP_RECV (kernel older than 5.6)";
    return false;
  }
  *reason = "io_uring TCP sockets";
  return true;
}

io_uring_sqe* Uring::GetSqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {
    if (io_uring_submit(&ring_) < 0) return nullptr;
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

absl::Status Uring::Submit() {
  if (io_uring_sq_ready(&ring_) == 0 && !io_uring_cq_has_overflow(&ring_) && !TaskRunPending()) {
    return absl::OkStatus();
  }
  while (true) {
    int rc = io_uring_submit_and_get_events(&ring_);
    if (rc >= 0) return absl::OkStatus();
    if (rc == -EINTR) continue;
    // EBUSY/EAGAIN: the CQ is backed up; the caller reaps and retries on the next call.
    if (rc == -EBUSY || rc == -EAGAIN) return absl::OkStatus();
    return SystemError("io_uring_submit", -rc);
  }
}

void Uring::WaitForCompletion(std::chrono::milliseconds timeout) {
  __kernel_timespec ts{};
  ts.tv_sec = timeout.count() / 1000;
  ts.tv_nsec = (timeout.count() % 1000) * 1'000'000;
  io_uring_cqe* cqe = nullptr;
  io_uring_submit(&ring_);
  io_uring_wait_cqe_timeout(&ring_, &cqe, &ts);
}

void Uring::DrainEventFd() {
  uint64_t value;
  [[maybe_unused]] ssize_t n = read(event_fd_, &value, sizeof(value));
}

}  // namespace braid::tcp
