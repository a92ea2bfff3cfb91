// Conformance: a peer that dies is told apart from one that shuts down cleanly. A crash is a
// fatal error naming the dead rank at once, even when nothing is outstanding with it; a clean
// shutdown is no error until someone needs that peer, whatever the number of streams.
#include <chrono>
#include <thread>

#include "tests/conformance/scenario_util.h"

namespace braid::conformance {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

void FourStreams(Config& config) {
  config.tcp_streams = 4;
  config.tcp_min_stripe_bytes = 64 << 10;
}

// Drives progress until it fails or `limit` passes; returns the failure (OK if none).
absl::Status DriveUntilError(ChildEnv& env, milliseconds limit) {
  auto deadline = Deadline::After(limit);
  while (!deadline.expired()) {
    absl::Status st = env.Drive(milliseconds(20));
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

// The multi-process failure seen in the field: rank 2 dies; rank 1 has only completed sends to
// it and a receive pending from rank 0. Rank 1 must blame rank 2 promptly, not rank 0 (which
// notices too and shuts down right away; its goodbye may even arrive before rank 2's end of
// stream, since separate connections are not ordered, so it carries the blame along).
void CrashIsNamedEvenWithNothingOutstanding(const std::string& transport,
                                            const std::function<void(Config&)>& tweak) {
  ExpectAllOk(RunRanks(transport, 3, [](ChildEnv& env) -> absl::Status {
    const int me = env.context.rank;
    BRAID_RETURN_IF_ERROR(ExchangeWithAll(env, 1000, 1, Deadline::After(seconds(30))));
    if (me == 2) {
      std::this_thread::sleep_for(milliseconds(200));
      env.ExitNow();  // _exit: the kernel closes the sockets, no goodbye.
    }
    std::vector<std::byte> buf(64);
    BRAID_ASSIGN_OR_RETURN(auto r, env.to(1 - me).irecv(buf.data(), buf.size(), 9));
    auto start = Clock::now();
    absl::Status st = env.Wait(r, Deadline::After(seconds(20)));
    double waited = std::chrono::duration<double>(Clock::now() - start).count();
    EXPECT_OR_RETURN(st.code() == absl::StatusCode::kUnavailable, st.ToString());
    EXPECT_OR_RETURN(Mentions(st, "rank 2") && Mentions(st, "without shutting down"),
                     st.ToString());
    EXPECT_OR_RETURN(waited < 5, "noticed after ", waited, " s");
    // Fatal: progress keeps failing with the same story.
    absl::Status again = env.transport->progress();
    EXPECT_OR_RETURN(!again.ok() && Mentions(again, "rank 2"), again.ToString());
    return absl::OkStatus();  // harness destroys the transport: a clean shutdown.
  }, seconds(120), tweak));
}

TEST_P(Conformance, CrashIsNamedEvenWithNothingOutstanding) {
  CrashIsNamedEvenWithNothingOutstanding(transport(), nullptr);
}

TEST_P(Conformance, CrashIsNamedEvenWithNothingOutstandingFourStreams) {
  CrashIsNamedEvenWithNothingOutstanding(transport(), FourStreams);
}

// A peer that destroys its transport cleanly is no error while we do not need it; a receive
// posted before it left and one posted after both fail naming it, without breaking progress.
void CleanShutdownIsNoErrorUntilUsed(const std::string& transport,
                                     const std::function<void(Config&)>& tweak) {
  ExpectAllOk(RunRanks(transport, 2, [](ChildEnv& env) -> absl::Status {
    BRAID_RETURN_IF_ERROR(ExchangeWithAll(env, 1000, 1, Deadline::After(seconds(30))));
    if (env.context.rank == 1) {
      std::this_thread::sleep_for(milliseconds(200));
      return absl::OkStatus();  // harness destroys the transport.
    }
    std::vector<std::byte> early(16), late(16);
    BRAID_ASSIGN_OR_RETURN(auto r, env.to(1).irecv(early.data(), early.size(), 2));
    absl::Status driven = DriveUntilError(env, milliseconds(1000));
    EXPECT_OR_RETURN(driven.ok(), "clean shutdown reported as ", driven.ToString());
    EXPECT_OR_RETURN(r->done() && r->status().code() == absl::StatusCode::kUnavailable &&
                         Mentions(r->status(), "rank 1") && Mentions(r->status(), "shut down"),
                     r->done() ? r->status().ToString() : "receive still pending");
    auto r2 = env.to(1).irecv(late.data(), late.size(), 3);
    absl::Status later = r2.ok() ? env.Wait(*r2, Deadline::After(seconds(5))) : r2.status();
    if (later.ok() && r2.ok()) later = (*r2)->status();
    EXPECT_OR_RETURN(later.code() == absl::StatusCode::kUnavailable && Mentions(later, "rank 1"),
                     later.ToString());
    return env.transport->progress();  // still healthy.
  }, seconds(120), tweak));
}

TEST_P(Conformance, CleanShutdownIsNoErrorUntilUsed) {
  CleanShutdownIsNoErrorUntilUsed(transport(), nullptr);
}

TEST_P(Conformance, CleanShutdownIsNoErrorUntilUsedFourStreams) {
  CleanShutdownIsNoErrorUntilUsed(transport(), FourStreams);
}

// A large message striped over four streams, sent just before the sender shuts down: its
// streams end in any order, which must neither lose the message nor raise an error.
TEST_P(Conformance, StripedMessageThenCleanShutdown) {
  ExpectAllOk(RunRanks(transport(), 2, [](ChildEnv& env) -> absl::Status {
    auto deadline = Deadline::After(seconds(30));
    BRAID_RETURN_IF_ERROR(ExchangeWithAll(env, 8, 1, deadline));
    const size_t size = (8u << 20) + 12345;
    std::vector<std::byte> data(size);
    if (env.context.rank == 1) {
      FillPattern(data.data(), size, 1, 4);
      std::vector<RequestPtr> sends;
      for (uint64_t tag = 4; tag < 8; ++tag) {
        BRAID_ASSIGN_OR_RETURN(auto s, env.to(0).isend(data.data(), size, tag));
        sends.push_back(s);
      }
      BRAID_RETURN_IF_ERROR(env.WaitAll(sends, deadline));
      return absl::OkStatus();  // destroyed while rank 0 may still be reading.
    }
    std::this_thread::sleep_for(milliseconds(300));  // let rank 1 leave first.
    for (uint64_t tag = 4; tag < 8; ++tag) {
      BRAID_ASSIGN_OR_RETURN(auto r, env.to(1).irecv(data.data(), size, tag));
      BRAID_RETURN_IF_ERROR(env.Wait(r, deadline));
      BRAID_RETURN_IF_ERROR(r->status());
      std::string bad = CheckPattern(data.data(), size, 1, 4);
      EXPECT_OR_RETURN(bad.empty(), bad);
    }
    return DriveUntilError(env, milliseconds(300));
  }, seconds(120), FourStreams));
}

}  // namespace
}  // namespace braid::conformance
