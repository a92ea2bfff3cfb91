// Conformance: the reliability contract of transport.h. A message of another collective at the
// same sequence number (tag conflict) fails the receive at once, whichever arrives first; every
// transport sends heartbeats that keep an idle connection visibly active, and reports the ranks
// it saw fail.
#include <chrono>
#include <thread>

#include "core/heartbeat.h"
#include "tests/conformance/scenario_util.h"

namespace braid::conformance {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

uint64_t Tag(uint8_t check, uint16_t sequence, uint32_t step) {
  return (uint64_t{check} << kTagCheckShift) | (uint64_t{sequence} << kTagSequenceShift) |
         (uint64_t{step} << 20);
}

TEST(TagConflict, OnlySameSequenceDifferentCheckConflicts) {
  EXPECT_TRUE(TagsConflict(Tag(1, 7, 0), Tag(2, 7, 3)));
  EXPECT_FALSE(TagsConflict(Tag(1, 7, 0), Tag(1, 7, 3)));  // same operation, other step.
  EXPECT_FALSE(TagsConflict(Tag(1, 7, 0), Tag(2, 8, 0)));  // other collective.
  EXPECT_FALSE(TagsConflict(5, 6));                         // plain small tags never conflict.
  // Point-to-point tags (top bit) never conflict, even with a collective's sequence bits.
  EXPECT_FALSE(TagsConflict(kTagPointToPointBit | 3, Tag(1, 0, 0)));
}

TEST_P(Conformance, TagConflictFailsTheReceiveEitherOrder) {
  ExpectAllOk(RunRanks(transport(), 2, [](ChildEnv& env) -> absl::Status {
    const int me = env.context.rank, peer = 1 - me;
    auto deadline = Deadline::After(seconds(30));
    std::vector<std::byte> buf(256);
    if (me == 0) {
      // Check byte 0xB0 where rank 1 expects 0xA0: once before, once after its receive.
      BRAID_ASSIGN_OR_RETURN(auto s1, env.to(peer).isend(buf.data(), buf.size(), Tag(0x30, 3, 1)));
      BRAID_RETURN_IF_ERROR(env.Wait(s1, deadline));
      BRAID_RETURN_IF_ERROR(env.Drive(milliseconds(500)));
      BRAID_ASSIGN_OR_RETURN(auto s2, env.to(peer).isend(buf.data(), buf.size(), Tag(0x30, 4, 1)));
      // Rank 1 leaves once this message is in, and its goodbye (which says why) can be read
      // before this send's own completion is: then the send reports the goodbye. A transport
      // without such news simply reports nothing.
      absl::Status sent = env.Wait(s2, deadline);
      EXPECT_OR_RETURN(sent.ok() || Mentions(sent, "different collectives"), sent.ToString());
      absl::Status tail = sent.ok() ? env.Drive(milliseconds(500)) : absl::OkStatus();
      EXPECT_OR_RETURN(tail.ok() || Mentions(tail, "different collectives"), tail.ToString());
      return absl::OkStatus();
    }
    BRAID_RETURN_IF_ERROR(env.Drive(milliseconds(300)));  // the first message is already here.
    BRAID_ASSIGN_OR_RETURN(auto r1, env.to(peer).irecv(buf.data(), buf.size(), Tag(0x20, 3, 0)));
    BRAID_ASSIGN_OR_RETURN(auto r2, env.to(peer).irecv(buf.data(), buf.size(), Tag(0x20, 4, 1)));
    auto start = std::chrono::steady_clock::now();
    absl::Status waited = env.WaitAll(std::vector<RequestPtr>{r1, r2}, Deadline::After(seconds(10)));
    EXPECT_OR_RETURN(waited.ok() || waited.code() != absl::StatusCode::kDeadlineExceeded,
                     "waited for a conflicting message until the deadline");
    EXPECT_OR_RETURN(std::chrono::steady_clock::now() - start < seconds(5), "slow conflict detection");
    for (const auto& r : {r1, r2}) {
      EXPECT_OR_RETURN(r->done() && r->status().code() == absl::StatusCode::kInvalidArgument,
                       r->status().ToString());
      EXPECT_OR_RETURN(Mentions(r->status(), "mismatch") && Mentions(r->status(), "0x30") &&
                           Mentions(r->status(), "0x20"),
                       r->status().ToString());
    }
    return absl::OkStatus();
  }));
}

TEST_P(Conformance, HeartbeatsKeepAnIdleConnectionActive) {
  ExpectAllOk(RunRanks(transport(), 2, [](ChildEnv& env) -> absl::Status {
    // Every transport has heartbeats: without them a stopped peer is found only at BRAID_TIMEOUT.
    EXPECT_OR_RETURN(env.transport->send_heartbeats(), "this transport sends no heartbeats");
    const int peer = 1 - env.context.rank;
    std::vector<uint64_t> before(2), after(2);
    BRAID_RETURN_IF_ERROR(env.Drive(milliseconds(200)));
    env.transport->read_activity(before);
    // Nothing but heartbeats for a while: the counter for the peer must move.
    for (int i = 0; i < 5; ++i) {
      EXPECT_OR_RETURN(env.transport->send_heartbeats(), "heartbeats stopped working");
      BRAID_RETURN_IF_ERROR(env.Drive(milliseconds(100)));
    }
    env.transport->read_activity(after);
    EXPECT_OR_RETURN(after[peer] > before[peer], "no activity from heartbeats");
    // Heartbeats never disturb data: a normal exchange still matches and verifies.
    return ExchangeWithAll(env, 70000, 9, Deadline::After(seconds(30)));
  }));
}

TEST_P(Conformance, SilenceMonitorNamesAStoppedPeer) {
  ExpectAllOk(RunRanks(transport(), 2, [](ChildEnv& env) -> absl::Status {
    EXPECT_OR_RETURN(env.transport->send_heartbeats(), "this transport sends no heartbeats");
    const int me = env.context.rank;
    if (me == 1) {
      // Alive but silent: no heartbeats, no progress, sockets open.
      std::this_thread::sleep_for(seconds(3));
      return absl::OkStatus();
    }
    SilenceMonitor monitor(milliseconds(800), me, {"host-a", "host-b"});
    auto start = std::chrono::steady_clock::now();
    absl::Status status;
    while (status.ok() && std::chrono::steady_clock::now() - start < seconds(2)) {
      BRAID_RETURN_IF_ERROR(env.transport->progress());
      status = monitor.Check(env.transport.get());
      std::this_thread::sleep_for(milliseconds(20));
    }
    EXPECT_OR_RETURN(status.code() == absl::StatusCode::kUnavailable, status.ToString());
    EXPECT_OR_RETURN(Mentions(status, "rank 1 (host host-b)"), status.ToString());
    auto failed = env.transport->failed_peers();
    EXPECT_OR_RETURN(failed.size() == 1 && failed[0] == 1, "failed_peers does not list rank 1");
    return absl::OkStatus();
  }));
}

}  // namespace
}  // namespace braid::conformance
