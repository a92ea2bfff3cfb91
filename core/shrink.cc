// Fault tolerance of Communicator: the recovery listener and heartbeat set up at creation,
// the record of failed ranks, and Shrink (survivors agree, then build a smaller communicator).
// The agreement protocol lives in bootstrap/recovery.cc; the construction of the subset
// communicator is Communicator::Create on the rendezvous the agreement produced.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "bootstrap/bootstrap.h"
#include "bootstrap/recovery.h"
#include "core/communicator.h"
#include "core/log.h"
#include "core/status.h"

namespace braid {

absl::Status Communicator::PrepareRecovery(const BlobExchange& exchange,
                                           const std::string& local_address, Deadline deadline) {
  // A rank that cannot listen still takes part in the AllGather (with an empty blob), so the
  // others are not left waiting; only a later shrink coordinated by it would fail.
  auto listener = RecoveryListener::Create(local_address);
  Blob mine;
  if (listener.ok()) {
    recovery_ = std::move(*listener);
    mine = recovery_->blob();
  } else {
    BRAID_LOG(kWarn, "recovery listener unavailable (braidCommShrink will not work): ",
              listener.status().message());
  }
  BRAID_ASSIGN_OR_RETURN(recovery_blobs_, exchange(mine, deadline));
  return absl::OkStatus();
}

void Communicator::StartHeartbeat() {
  if (config_.heartbeat_timeout.count() <= 0 || nranks_ == 1) return;
  // Only transports that send heartbeats and report activity can tell silence from waiting
  // (all built-in ones do); elsewhere a long wait would look like a dead peer, so such a
  // transport relies on its own crash detection and BRAID_TIMEOUT.
  if (!transport_->send_heartbeats()) {
    BRAID_LOG(kInfo, "transport ", transport_name_, " has no heartbeats: silent peers are "
              "reported by BRAID_TIMEOUT");
    return;
  }
  engine_->SetSilenceMonitor(
      std::make_unique<SilenceMonitor>(config_.heartbeat_timeout, rank_, hosts_));
  heartbeat_ = std::make_unique<HeartbeatSender>(transport_.get(),
                                                 HeartbeatInterval(config_.heartbeat_timeout));
}

void Communicator::RememberFailedRanks() {
  if (!transport_) return;
  std::vector<int> seen = transport_->failed_peers();
  std::lock_guard<std::mutex> lock(error_mutex_);
  for (int r : seen) {
    if (std::find(failed_ranks_.begin(), failed_ranks_.end(), r) == failed_ranks_.end()) {
      failed_ranks_.push_back(r);
    }
  }
}

std::vector<int> Communicator::failed_ranks() {
  // Only while no collective runs may the transport be asked (Execute may close it).
  {
    std::unique_lock<std::mutex> lock(order_mutex_, std::try_to_lock);
    if (lock.owns_lock() && running_ticket_ == next_ticket_ && !broken_.load()) {
      RememberFailedRanks();
    }
  }
  std::lock_guard<std::mutex> lock(error_mutex_);
  return failed_ranks_;
}

absl::StatusOr<std::unique_ptr<Communicator>> Communicator::Shrink() {
  if (!recovery_) {
    return MakeError(absl::StatusCode::kFailedPrecondition,
                     absl::StrCat("braidCommShrink on rank ", rank_),
                     "this rank has no recovery listener (see the warning at creation)");
  }
  ShrinkParams params;
  params.rank = rank_;
  params.nranks = nranks_;
  params.secret = secret_;
  params.listeners = recovery_blobs_;
  params.listener = recovery_.get();
  for (int r : failed_ranks()) {
    if (r >= 0 && r < nranks_) params.known_failed.push_back(r);  // a peer's blame is input.
  }
  params.hosts = hosts_;
  if (config_.heartbeat_timeout.count() > 0) params.patience = config_.heartbeat_timeout;
  params.deadline = Deadline::After(std::chrono::milliseconds(timeout_ms_.load()));
  for (int r = 0; r < nranks_; ++r) {
    if (recovery_blobs_[static_cast<size_t>(r)].empty()) params.known_failed.push_back(r);
  }
  BRAID_ASSIGN_OR_RETURN(ShrinkAgreement agreed, AgreeOnSurvivors(params));
  auto me = std::find(agreed.members.begin(), agreed.members.end(), rank_);
  if (me == agreed.members.end()) {
    return MakeError(absl::StatusCode::kFailedPrecondition,
                     absl::StrCat("braidCommShrink on rank ", rank_),
                     "the survivors agreed on a group without this rank (it was reported "
                     "failed and joined too late)",
                     "destroy this communicator; this rank cannot rejoin");
  }
  std::string members;
  for (int r : agreed.members) absl::StrAppend(&members, members.empty() ? "" : ",", r);
  BRAID_LOG(kInfo, "shrink: survivors {", members, "}; this rank becomes rank ",
            me - agreed.members.begin());
  return Create(agreed.id, static_cast<int>(agreed.members.size()),
                static_cast<int>(me - agreed.members.begin()));
}

}  // namespace braid
