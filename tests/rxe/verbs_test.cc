// Verbs-only checks, run inside the soft-RoCE guest by tests/rxe/suite.sh (they skip, saying
// why, where no RDMA port is active): one-sided iwrite into an advertised buffer, rendezvous
// striped over several QPs and split into several work requests, the registration cache on
// the data path, automatic RoCE v2 GID selection and BRAID_IB_HCA filtering.
#include <gtest/gtest.h>

#include <poll.h>
#include <unistd.h>

#include <cstring>
#include <map>

#include "tests/conformance/scenario_util.h"
#include "transports/verbs/verbs_device.h"
#include "transports/verbs/verbs_transport.h"

namespace braid::conformance {
namespace {

using std::chrono::seconds;

class Verbs : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = verbs::WhyNoActivePort(Config{});
    if (!why.empty()) GTEST_SKIP() << "no active RDMA port here: " << why;
  }
};

TEST_F(Verbs, IwriteLandsInTheAdvertisedBufferAndDeliversTheTag) {
  ExpectAllOk(RunRanks("verbs", 2, [](ChildEnv& env) -> absl::Status {
    auto deadline = Deadline::After(seconds(60));
    const size_t size = 300007, offset = 4099;
    std::vector<std::byte> buffer(size + offset + 100, std::byte{0x5a});
    if (env.context.rank == 1) {
      BRAID_ASSIGN_OR_RETURN(MemoryRegion * region,
                             env.transport->register_memory(buffer.data(), buffer.size()));
      RemoteBuffer advert{reinterpret_cast<uintptr_t>(buffer.data()), region->remote_key,
                          buffer.size()};
      BRAID_ASSIGN_OR_RETURN(auto s, env.to(0).isend(&advert, sizeof(advert), 1));
      BRAID_ASSIGN_OR_RETURN(auto r, env.to(0).irecv(nullptr, 0, 2));
      BRAID_RETURN_IF_ERROR(env.WaitAll(std::vector<RequestPtr>{s, r}, deadline));
      BRAID_RETURN_IF_ERROR(r->status());
      std::string bad = CheckPattern(buffer.data() + offset, size, 0, 2);
      EXPECT_OR_RETURN(bad.empty(), bad);
      EXPECT_OR_RETURN(buffer[offset - 1] == std::byte{0x5a} &&
                           buffer[offset + size] == std::byte{0x5a},
                       "iwrite wrote outside its range");
      return env.transport->deregister_memory(region);
    }
    EXPECT_OR_RETURN(env.to(1).supports_write(), "verbs must support iwrite");
    RemoteBuffer advert;
    BRAID_ASSIGN_OR_RETURN(auto r, env.to(1).irecv(&advert, sizeof(advert), 1));
    BRAID_RETURN_IF_ERROR(env.Wait(r, deadline));
    BRAID_RETURN_IF_ERROR(r->status());
    std::vector<std::byte> data(size);
    FillPattern(data.data(), size, 0, 2);
    // Overrunning the advertised buffer is refused before anything is sent.
    auto overrun = env.to(1).iwrite(data.data(), size, nullptr, advert, advert.length - 10, 3);
    EXPECT_OR_RETURN(!overrun.ok() && overrun.status().code() == absl::StatusCode::kInvalidArgument,
                     overrun.ok() ? "overrun accepted" : overrun.status().ToString());
    BRAID_ASSIGN_OR_RETURN(auto w, env.to(1).iwrite(data.data(), size, nullptr, advert, offset, 2));
    BRAID_RETURN_IF_ERROR(env.Wait(w, deadline));
    return w->status();
  }));
}

void ManyQps(Config& config) {
  config.ib_qps_per_connection = 3;
}
void ManyQpsCached(Config& config) {
  config.ib_qps_per_connection = 3;
  config.ib_reg_cache_bytes = 64u << 20;
}

// Every rank sends `size` bytes to every other and checks what it receives.
// Buffers live as long as the process: the registration cache may keep them registered, and
// memory freed and mapped again at the same address would make its entries stale (the reason
// BRAID_IB_REG_CACHE is off by default).
absl::Status AllToAll(ChildEnv& env, size_t size, uint64_t tag) {
  const int me = env.context.rank, n = env.context.nranks;
  static std::map<size_t, std::vector<std::vector<std::byte>>> ins, outs;
  auto& in = ins.try_emplace(size, n, std::vector<std::byte>(size)).first->second;
  auto& out = outs.try_emplace(size, n, std::vector<std::byte>(size)).first->second;
  std::vector<RequestPtr> requests;
  for (int peer = 0; peer < n; ++peer) {
    if (peer == me) continue;
    FillPattern(out[peer].data(), size, me, tag);
    BRAID_ASSIGN_OR_RETURN(auto r, env.to(peer).irecv(in[peer].data(), size, tag));
    BRAID_ASSIGN_OR_RETURN(auto s, env.to(peer).isend(out[peer].data(), size, tag));
    requests.insert(requests.end(), {r, s});
  }
  BRAID_RETURN_IF_ERROR(env.WaitAll(requests, Deadline::After(seconds(120))));
  for (auto& request : requests) BRAID_RETURN_IF_ERROR(request->status());
  for (int peer = 0; peer < n; ++peer) {
    std::string bad = peer == me ? "" : CheckPattern(in[peer].data(), size, peer, tag);
    EXPECT_OR_RETURN(bad.empty(), "size ", size, ": ", bad);
  }
  return absl::OkStatus();
}

absl::Status Sizes(ChildEnv& env) {
  uint64_t tag = 20;
  // Eager edge (8144/8145), stripes over 3 QPs, and more than one 4 MiB work request.
  for (size_t size : {size_t{0}, size_t{1}, size_t{8144}, size_t{8145}, size_t{(1u << 20) + 3},
                      size_t{(9u << 20) + 1}}) {
    for (int repeat = 0; repeat < 2; ++repeat) {
      BRAID_RETURN_IF_ERROR(AllToAll(env, size, tag++));
    }
  }
  return absl::OkStatus();
}

TEST_F(Verbs, StripedOverThreeQpsThreeRanks) {
  ExpectAllOk(RunRanks("verbs", 3, Sizes, seconds(300), ManyQps));
}

TEST_F(Verbs, RegistrationCacheOnTheDataPath) {
  ExpectAllOk(RunRanks("verbs", 2, Sizes, seconds(300), ManyQpsCached));
}

TEST_F(Verbs, RoceV2GidIsChosenFromTheDataPathAddress) {
  ibv_context* context = nullptr;
  auto choice = verbs::ChoosePort(Config{}, "198.18.0.1", &context);
  ASSERT_TRUE(choice.ok()) << choice.status();
  ibv_close_device(context);
  if (!choice->ethernet) GTEST_SKIP() << "InfiniBand port: no GID selection";
  // ::ffff:198.18.0.1
  const uint8_t want[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 0, 1};
  EXPECT_EQ(std::memcmp(choice->gid.raw, want, 16), 0) << "GID index " << choice->gid_index;
}

TEST_F(Verbs, HcaFilterExcludesAndExplains) {
  Config config;
  config.ib_hca = "^rxe";
  ProbeResult probe = ProbeVerbsTransport(config);
  EXPECT_FALSE(probe.usable);
  EXPECT_NE(probe.reason.find("excluded by BRAID_IB_HCA"), std::string::npos) << probe.reason;
  config.ib_hca = "=rxe";  // exact: rxe0 does not match.
  EXPECT_FALSE(ProbeVerbsTransport(config).usable);
  config.ib_hca = "rxe0:1";
  EXPECT_TRUE(ProbeVerbsTransport(config).usable);
  config.ib_hca = "rxe0:2";
  EXPECT_FALSE(ProbeVerbsTransport(config).usable);
}

TEST_F(Verbs, ForcedGidIndexThatDoesNotExistIsANamedError) {
  Config config;
  config.ib_gid_index = 200;
  ibv_context* context = nullptr;
  auto choice = verbs::ChoosePort(config, "", &context);
  ASSERT_FALSE(choice.ok());
  EXPECT_NE(std::string(choice.status().message()).find("BRAID_IB_GID_INDEX"), std::string::npos)
      << choice.status();
}

void QuickRetries(Config& config) {
  config.ib_timeout = 10;  // 4 ms per ACK timeout,
  config.ib_retry_cnt = 1; // one retransmission: a silent peer is given up in ~10 ms.
}

// A peer whose queue pairs stop answering (its host dropped off the fabric) while its TCP
// liveness socket stays quiet: the retransmissions run out (IBV_WC_RETRY_EXC_ERR) and the
// sender's error names the rank and host. Rank 1 silences itself only after a first message
// went through, and tells rank 0 over a pipe, so rank 0's message is the one that goes unheard.
TEST_F(Verbs, SilentPeerIsReportedUnreachable) {
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  auto outcomes = RunRanks("verbs", 2, [&](ChildEnv& env) -> absl::Status {
    auto deadline = Deadline::After(seconds(90));
    char byte = 1;
    if (env.context.rank == 1) {
      BRAID_ASSIGN_OR_RETURN(auto s, env.to(0).isend(&byte, 1, 1));
      BRAID_RETURN_IF_ERROR(env.Wait(s, deadline));
      BRAID_RETURN_IF_ERROR(s->status());
      BRAID_RETURN_IF_ERROR(SilenceVerbsTransportForTesting(*env.transport));
      EXPECT_OR_RETURN(write(pipe_fds[1], &byte, 1) == 1, "pipe write failed");
      // Stay until rank 0 gives up on us (its goodbye fails this receive), so our process
      // ending cannot be what rank 0 notices.
      BRAID_ASSIGN_OR_RETURN(auto r, env.to(0).irecv(&byte, 1, 3));
      absl::Status waited = env.Wait(r, deadline);
      EXPECT_OR_RETURN(r->done(), "rank 0 never gave up on silent rank 1: ", waited.ToString());
      return absl::OkStatus();
    }
    BRAID_ASSIGN_OR_RETURN(auto r, env.to(1).irecv(&byte, 1, 1));
    BRAID_RETURN_IF_ERROR(env.Wait(r, deadline));
    BRAID_RETURN_IF_ERROR(r->status());
    pollfd pfd{pipe_fds[0], POLLIN, 0};
    EXPECT_OR_RETURN(poll(&pfd, 1, 60000) == 1 && read(pipe_fds[0], &byte, 1) == 1,
                     "rank 1 never said it went silent");
    // Rendezvous-sized: it completes only once the peer answered (a small inline send would
    // complete as soon as it is posted).
    std::vector<char> payload(100000, 7);
    BRAID_ASSIGN_OR_RETURN(auto s, env.to(1).isend(payload.data(), payload.size(), 2));
    absl::Status waited = env.Wait(s, deadline);
    EXPECT_OR_RETURN(s->done(), "a send to a silent peer never failed: ", waited.ToString());
    std::string error(s->status().message());
    EXPECT_OR_RETURN(!s->status().ok(), "a send to a silent peer succeeded");
    std::string want = absl::StrCat("peer rank 1 on host ", env.context.hosts[1], " unreachable");
    EXPECT_OR_RETURN(error.find(want) != std::string::npos &&
                         error.find("retransmissions") != std::string::npos,
                     "expected \"", want, "\" (retry exceeded), got: ", error);
    return absl::OkStatus();
  }, seconds(150), QuickRetries);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
  ExpectAllOk(outcomes);
}

}  // namespace
}  // namespace braid::conformance
