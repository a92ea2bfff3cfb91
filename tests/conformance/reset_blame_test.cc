// Blame across a reset connection (found by the cluster fault-injection test): rank 2 dies;
// rank 0 sees it, gives up, and closes its transport with bytes from rank 1 still unread,
// which resets the connection to rank 1 right after rank 0's goodbye. Rank 1, not connected
// to rank 2 at all, next sends to rank 0: the send fails on the reset before rank 1 has read
// the goodbye (still in its receive queue: a reset does not discard it). Rank 1 must name
// rank 2, the goodbye's culprit, not rank 0: a survivor that blames another survivor skips it
// during braidCommShrink and ends up in a group of its own.
#include <thread>
#include <vector>

#include "tests/conformance/scenario_util.h"

namespace braid::conformance {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST_P(Conformance, ResetByAPeerThatGaveUpBlamesTheRankThatFailed) {
  std::vector<ChildSpec> specs;
  uint64_t comm = 0xb1a3e000u + static_cast<uint64_t>(getpid());
  for (int rank = 0; rank < 3; ++rank) {
    ChildSpec spec;
    spec.connect_all = false;
    spec.context = MakeContext(rank, 3, comm, 1);
    spec.body = [](ChildEnv& env) -> absl::Status {
      auto deadline = Deadline::After(seconds(30));
      const int me = env.context.rank;
      if (me == 2) {
        const int peers[] = {0};
        BRAID_RETURN_IF_ERROR(env.Connect(peers, deadline));
        std::this_thread::sleep_for(milliseconds(100));
        env.ExitNow();  // a crash: no goodbye.
      }
      if (me == 0) {
        const int peers[] = {1, 2};
        BRAID_RETURN_IF_ERROR(env.Connect(peers, deadline));
        std::vector<std::byte> small(64);
        BRAID_ASSIGN_OR_RETURN(auto from2, env.to(2).irecv(small.data(), small.size(), 9));
        absl::Status st = env.Wait(from2, deadline);
        if (st.ok()) st = from2->status();
        EXPECT_OR_RETURN(!st.ok() && Mentions(st, "rank 2"), st.ToString());
        // Given up, and no longer reading: rank 1's sends (from 1 s on) stay unread; then the
        // harness closes the transport: goodbye, then a reset.
        std::this_thread::sleep_for(milliseconds(2000));
        return absl::OkStatus();
      }
      const int peers[] = {0};
      BRAID_RETURN_IF_ERROR(env.Connect(peers, deadline));
      std::this_thread::sleep_for(milliseconds(1000));
      // About what rank 0 takes before it stops reading plus what the socket buffers hold:
      // rank 0 closes with some of it unread. (Should a send fail on the reset instead of
      // completing, that failure is checked the same way.)
      std::vector<std::byte> chunk(16 << 10, std::byte{1});
      absl::Status st;
      for (int i = 0; i < 32 && st.ok(); ++i) {
        BRAID_ASSIGN_OR_RETURN(auto sent, env.to(0).isend(chunk.data(), chunk.size(), 7));
        st = env.Wait(sent, deadline);
        if (st.ok()) st = sent->status();
      }
      if (st.ok()) {
        // No progress until rank 0 has closed: its goodbye and the reset wait here unread.
        std::this_thread::sleep_for(milliseconds(2500));
        char byte = 0;
        auto late = env.to(0).isend(&byte, 1, 8);
        if (!late.ok()) {
          st = late.status();
        } else {
          st = env.Wait(*late, deadline);
          if (st.ok()) st = (*late)->status();
        }
        // Transports that complete small sends locally (into a ring) learn it from progress.
        for (auto until = Deadline::After(seconds(10)); st.ok() && !until.expired();) {
          st = env.Drive(milliseconds(20));
        }
      }
      EXPECT_OR_RETURN(!st.ok(), "no error within 10 s although rank 0 left");
      EXPECT_OR_RETURN(Mentions(st, "rank 2"), "rank 2 is not named: ", st.ToString());
      std::vector<int> failed = env.transport->failed_peers();
      EXPECT_OR_RETURN(failed.empty() || failed == std::vector<int>{2}, "failed_peers() has ",
                       failed.size(), " ranks, first ", failed.empty() ? -1 : failed[0],
                       " (only rank 2 failed)");
      return absl::OkStatus();
    };
    specs.push_back(std::move(spec));
  }
  ExpectAllOk(RunChildren(transport(), std::move(specs), seconds(60)));
}

}  // namespace
}  // namespace braid::conformance
