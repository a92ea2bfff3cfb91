// The progress engine: drives one transport until requests complete, spinning briefly and then
// sleeping on the transport's wait handle, so an idle communicator costs no CPU. Every wait has
// a deadline, and an abort from any thread wakes it.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "core/deadline.h"
#include "core/heartbeat.h"
#include "transports/transport.h"

namespace braid {

class ProgressEngine {
 public:
  ProgressEngine(Transport* transport, std::chrono::microseconds spin);
  ~ProgressEngine();
  ProgressEngine(const ProgressEngine&) = delete;
  ProgressEngine& operator=(const ProgressEngine&) = delete;

  // Waits until every request is done (OK), one fails (its status), the deadline passes
  // (DeadlineExceeded, described by `what`) or Abort() is called (Cancelled).
  absl::Status WaitAll(std::span<const RequestPtr> requests, Deadline deadline,
                       absl::string_view what);
  absl::Status Wait(const RequestPtr& request, Deadline deadline, absl::string_view what);

  // One non-blocking pass (for test()-style polling).
  absl::Status Poll();

  // Waits fail (Unavailable, naming the ranks) once a peer has been silent longer than the
  // monitor's timeout. Call before the first wait.
  void SetSilenceMonitor(std::unique_ptr<SilenceMonitor> monitor) { monitor_ = std::move(monitor); }

  // Thread-safe: makes current and future waits return Cancelled promptly.
  void Abort();
  bool aborted() const { return aborted_.load(std::memory_order_acquire); }

 private:
  // Spins, then sleeps on the wait fd until `ready()` is true. Returns its error if any.
  template <typename Ready>
  absl::Status WaitUntil(Ready ready, Deadline deadline, absl::string_view what);
  absl::Status Sleep(Deadline deadline);

  Transport* transport_;
  std::chrono::microseconds spin_;
  int abort_fd_ = -1;  // eventfd written by Abort().
  std::atomic<bool> aborted_{false};
  std::unique_ptr<SilenceMonitor> monitor_;
};

}  // namespace braid
