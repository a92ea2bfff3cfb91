#include "core/heartbeat.h"

#include <pthread.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status.h"

namespace braid {
namespace {

constexpr auto kSamplePeriod = std::chrono::milliseconds(100);
// A gap between samples this long means nobody was waiting (so nobody read the connections):
// silence during it proves nothing.
constexpr auto kIdleGap = std::chrono::milliseconds(1000);

}  // namespace

std::chrono::milliseconds HeartbeatInterval(std::chrono::milliseconds timeout) {
  return std::max(timeout / 6, std::chrono::milliseconds(20));
}

HeartbeatSender::HeartbeatSender(Transport* transport, std::chrono::milliseconds interval)
    : transport_(transport), interval_(interval) {
  if (!transport_->send_heartbeats()) return;  // this transport has none.
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "braid-heartbeat");
    Loop();
  });
}

void HeartbeatSender::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void HeartbeatSender::Loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!cv_.wait_for(lock, interval_, [&] { return stop_; })) {
    lock.unlock();
    transport_->send_heartbeats();
    lock.lock();
  }
}

SilenceMonitor::SilenceMonitor(std::chrono::milliseconds timeout, int rank,
                               std::vector<std::string> hosts)
    : timeout_(timeout), rank_(rank), hosts_(std::move(hosts)) {
  counters_.assign(hosts_.size(), 0);
  sample_.assign(hosts_.size(), 0);
  last_heard_.assign(hosts_.size(), Clock::time_point{});
}

absl::Status SilenceMonitor::Check(Transport* transport) {
  auto now = Clock::now();
  if (now - last_check_ < kSamplePeriod) return absl::OkStatus();
  bool idle = now - last_check_ > kIdleGap;
  last_check_ = now;
  transport->read_activity(sample_);
  std::vector<int> silent;
  for (size_t r = 0; r < sample_.size(); ++r) {
    if (static_cast<int>(r) == rank_) continue;
    if (idle || sample_[r] != counters_[r]) {
      counters_[r] = sample_[r];
      last_heard_[r] = now;
    } else if (now - last_heard_[r] > timeout_) {
      silent.push_back(static_cast<int>(r));
    }
  }
  if (silent.empty()) return absl::OkStatus();
  std::vector<std::string> names;
  for (int r : silent) names.push_back(DescribeRank(r, hosts_[static_cast<size_t>(r)]));
  double seconds = std::chrono::duration<double>(timeout_).count();
  absl::Status status = MakeError(
      absl::StatusCode::kUnavailable, "heartbeat",
      absl::StrCat(absl::StrJoin(names, ", "), silent.size() == 1 ? " has" : " have",
                   " sent nothing (not even a heartbeat) for more than ", seconds,
                   " s (BRAID_HEARTBEAT_TIMEOUT) while this rank waited: stopped (SIGSTOP, a "
                   "debugger), hung in the kernel, or cut off by the network"),
      absl::StrCat("check rank ", silent.front(), "'s process state and the network path to ",
                   hosts_[static_cast<size_t>(silent.front())],
                   "; raise BRAID_HEARTBEAT_TIMEOUT if that host is merely overloaded"));
  for (int r : silent) transport->peer_failed(r, status);
  return status;
}

}  // namespace braid
