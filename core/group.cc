#include "core/group.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/status.h"

namespace braid {
namespace {

struct GroupState {
  int depth = 0;
  std::vector<DeferredCall> calls;
  std::vector<std::shared_ptr<Operation>> operations;  // per call.
};
thread_local GroupState t_group;

}  // namespace

bool InGroup() { return t_group.depth > 0; }

void GroupStart() { ++t_group.depth; }

std::shared_ptr<Operation> Defer(DeferredCall call) {
  std::shared_ptr<Operation> operation;
  if (call.transfer) {  // share the operation of this communicator's earlier transfers.
    for (size_t i = 0; i < t_group.calls.size() && !operation; ++i) {
      if (t_group.calls[i].comm == call.comm && t_group.calls[i].transfer) {
        operation = t_group.operations[i];
      }
    }
  }
  if (!operation) operation = std::make_shared<Operation>();
  t_group.calls.push_back(std::move(call));
  t_group.operations.push_back(operation);
  return operation;
}

bool GroupHolds(const Operation* operation) {
  return std::any_of(t_group.operations.begin(), t_group.operations.end(),
                     [&](const auto& held) { return held.get() == operation; });
}

absl::Status GroupEnd() {
  if (t_group.depth == 0) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "braidGroupEnd",
                     "called without a matching braidGroupStart on this thread",
                     "call braidGroupStart first; every braidGroupStart needs one braidGroupEnd");
  }
  if (--t_group.depth > 0) return absl::OkStatus();
  std::vector<DeferredCall> calls = std::exchange(t_group.calls, {});
  std::vector<std::shared_ptr<Operation>> operations = std::exchange(t_group.operations, {});

  absl::Status first = absl::OkStatus();
  auto failed = [&](const std::shared_ptr<Operation>& operation, const absl::Status& status) {
    operation->Finish(status);
    if (first.ok()) first = status;
  };
  std::vector<std::shared_ptr<Operation>> waited;
  auto issue = [&](Communicator& comm, std::string description, Communicator::Body body,
                   bool collective, const std::shared_ptr<Operation>& operation, bool blocking) {
    auto started = comm.Start(std::move(description), std::move(body), collective, operation);
    if (!started.ok()) return failed(operation, started.status());
    if (blocking) waited.push_back(operation);
  };
  std::vector<Communicator*> comms;
  for (const DeferredCall& call : calls) {
    if (std::find(comms.begin(), comms.end(), call.comm.get()) == comms.end()) {
      comms.push_back(call.comm.get());
    }
  }
  for (Communicator* comm : comms) {
    std::vector<PeerTransfer> batch;
    std::shared_ptr<Operation> batch_operation;
    bool batch_blocking = false;
    for (size_t i = 0; i < calls.size(); ++i) {
      DeferredCall& call = calls[i];
      if (call.comm.get() != comm) continue;
      if (!call.transfer) {
        issue(*comm, std::move(call.description), std::move(call.body), true, operations[i],
              call.blocking);
        continue;
      }
      batch.push_back(*call.transfer);
      batch_operation = operations[i];
      batch_blocking |= call.blocking;
    }
    if (batch.empty()) continue;
    std::string description = absl::StrCat("Send/Recv group (", batch.size(), " transfers)");
    auto body = comm->PointToPointBody(std::move(batch));
    if (!body.ok()) {
      failed(batch_operation, body.status());
      continue;
    }
    issue(*comm, std::move(description), std::move(*body), false, batch_operation,
          batch_blocking);
  }
  for (const auto& operation : waited) {
    absl::Status status = operation->Wait();
    if (first.ok()) first = status;
  }
  return first;
}

}  // namespace braid
