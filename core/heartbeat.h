// Liveness between ranks: a heartbeat thread that keeps every connection carrying bytes, and a
// monitor the progress engine consults while it waits, which names a peer silent for longer
// than BRAID_HEARTBEAT_TIMEOUT (stopped, hung or cut off; a crash is seen sooner, by the
// transport). Works with any transport that implements Transport's liveness hooks.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "core/deadline.h"
#include "transports/transport.h"

namespace braid {

// How often heartbeats go out for a given timeout: six per timeout, so a few lost to
// scheduling delays never look like silence.
std::chrono::milliseconds HeartbeatInterval(std::chrono::milliseconds timeout);

// Sends heartbeats on `transport` every `interval` from its own thread until destroyed or
// stopped. Does nothing if the transport has no heartbeats. Stop before destroying the
// transport.
class HeartbeatSender {
 public:
  HeartbeatSender(Transport* transport, std::chrono::milliseconds interval);
  ~HeartbeatSender() { Stop(); }
  HeartbeatSender(const HeartbeatSender&) = delete;
  HeartbeatSender& operator=(const HeartbeatSender&) = delete;
  void Stop();

 private:
  void Loop();
  Transport* transport_;
  std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// Decides, from the transport's activity counters, which peers have been silent too long.
// Only time spent waiting counts: after an idle gap (the application computing, nothing
// reading the connections) every peer starts with a clean slate.
class SilenceMonitor {
 public:
  SilenceMonitor(std::chrono::milliseconds timeout, int rank, std::vector<std::string> hosts);
  // Cheap when called often (samples at most every 100 ms). Returns Unavailable naming the
  // silent ranks and their hosts, after telling the transport they failed.
  absl::Status Check(Transport* transport);

 private:
  using Clock = Deadline::Clock;
  std::chrono::milliseconds timeout_;
  int rank_;
  std::vector<std::string> hosts_;
  std::vector<uint64_t> counters_, sample_;
  std::vector<Clock::time_point> last_heard_;
  Clock::time_point last_check_{};
};

}  // namespace braid
