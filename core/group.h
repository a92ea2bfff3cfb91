// braidGroupStart/braidGroupEnd, as ncclGroupStart/End: calls made between them on one thread
// are validated at once but deferred, and issued together when the outermost group ends, so a
// rank can post a send to and a receive from the same peer without deadlock. Groups nest and
// may span communicators.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "core/communicator.h"

namespace braid {

// A call made inside a group: validated, not yet issued.
struct DeferredCall {
  std::shared_ptr<Communicator> comm;
  std::string description;
  Communicator::Body body;               // a collective, or
  std::optional<PeerTransfer> transfer;  // a send or receive.
  bool blocking = true;                  // the caller asked for no request.
};

bool InGroup();  // on the calling thread.
void GroupStart();
// Ends the innermost group. The outermost issues every deferred call: per communicator (in the
// order they were first used), its collectives in call order, then all its sends and receives
// as one batch. Then waits for the operations that carry blocking calls, and returns the first
// error (of issuing anything, or of those operations). FailedPrecondition without a Start.
absl::Status GroupEnd();
// Defers a call; returns the operation it will complete with (a communicator's sends and
// receives in one group share one).
std::shared_ptr<Operation> Defer(DeferredCall call);
// Whether `operation` waits for this thread's open group to end (so waiting on it now would
// never return).
bool GroupHolds(const Operation* operation);

}  // namespace braid
