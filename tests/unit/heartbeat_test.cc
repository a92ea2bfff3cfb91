// The silence monitor's rules, on a fake transport whose activity counters the test moves:
// silence is counted only while waiting, a moving counter is life, a verdict names the rank and
// host and tells the transport; the sender thread calls send_heartbeats on its interval.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "core/heartbeat.h"

namespace braid {
namespace {

using std::chrono::milliseconds;

class FakeTransport final : public Transport {
 public:
  std::string name() const override { return "fake"; }
  absl::StatusOr<Blob> listen() override { return Blob{}; }
  absl::StatusOr<std::vector<std::unique_ptr<Connection>>> connect(std::span<const int>,
                                                                   std::span<const Blob>,
                                                                   Deadline) override {
    return std::vector<std::unique_ptr<Connection>>{};
  }
  absl::StatusOr<MemoryRegion*> register_memory(void*, size_t) override { return nullptr; }
  absl::Status deregister_memory(MemoryRegion*) override { return absl::OkStatus(); }
  absl::Status progress() override { return absl::OkStatus(); }
  int wait_fd() const override { return -1; }
  bool send_heartbeats() override {
    ++sent;
    return true;
  }
  void read_activity(std::span<uint64_t> counters) override {
    for (size_t r = 0; r < counters.size() && r < activity.size(); ++r) counters[r] = activity[r];
  }
  void peer_failed(int rank, const absl::Status&) override { failed.push_back(rank); }

  std::atomic<int> sent{0};
  std::vector<uint64_t> activity = std::vector<uint64_t>(3, 0);
  std::vector<int> failed;
};

// Calls Check every 20 ms for `duration` (like a waiting progress engine); returns the first error.
absl::Status WaitFor(SilenceMonitor& monitor, FakeTransport& transport, milliseconds duration,
                     int alive_rank = -1) {
  auto until = Deadline::After(duration);
  while (!until.expired()) {
    if (alive_rank >= 0) ++transport.activity[alive_rank];
    absl::Status status = monitor.Check(&transport);
    if (!status.ok()) return status;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return absl::OkStatus();
}

TEST(SilenceMonitor, NamesTheSilentRankAndTellsTheTransport) {
  FakeTransport transport;
  SilenceMonitor monitor(milliseconds(300), 0, {"h0", "h1", "h2"});
  absl::Status status = WaitFor(monitor, transport, milliseconds(2000), /*alive_rank=*/1);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(std::string(status.message()).find("rank 2 (host h2)"), std::string::npos) << status;
  EXPECT_EQ(std::string(status.message()).find("rank 1 (host"), std::string::npos) << status;
  EXPECT_EQ(transport.failed, std::vector<int>{2});
}

TEST(SilenceMonitor, ActivityIsLife) {
  FakeTransport transport;
  SilenceMonitor monitor(milliseconds(300), 0, {"h0", "h1", "h2"});
  auto until = Deadline::After(milliseconds(1000));
  while (!until.expired()) {
    ++transport.activity[1];
    ++transport.activity[2];
    ASSERT_TRUE(monitor.Check(&transport).ok());
    std::this_thread::sleep_for(milliseconds(20));
  }
}

TEST(SilenceMonitor, TimeSpentNotWaitingIsNotSilence) {
  FakeTransport transport;
  SilenceMonitor monitor(milliseconds(300), 0, {"h0", "h1", "h2"});
  ASSERT_TRUE(monitor.Check(&transport).ok());
  // The application computes for 1.5 s: nobody reads the connections, so no counter moves.
  std::this_thread::sleep_for(milliseconds(1500));
  // Waiting again: the first samples after the gap start every peer afresh.
  EXPECT_TRUE(WaitFor(monitor, transport, milliseconds(200)).ok());
  // ...but silence while waiting still counts.
  EXPECT_FALSE(WaitFor(monitor, transport, milliseconds(1000)).ok());
}

TEST(HeartbeatSender, SendsOnItsIntervalUntilStopped) {
  FakeTransport transport;
  {
    HeartbeatSender sender(&transport, milliseconds(20));
    std::this_thread::sleep_for(milliseconds(300));
    sender.Stop();
  }
  int sent = transport.sent.load();
  EXPECT_GE(sent, 4);  // the first call at start, then every 20 ms (generous under load).
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(transport.sent.load(), sent);
  EXPECT_EQ(HeartbeatInterval(std::chrono::seconds(30)), std::chrono::seconds(5));
}

}  // namespace
}  // namespace braid
