// Conformance: connecting, message sizes from 0 to 64 MiB, striping, many outstanding requests
// completing out of posting order, same-tag FIFO order, and the unexpected-message path.
#include <algorithm>
#include <chrono>
#include <random>

#include "tests/conformance/scenario_util.h"

namespace braid::conformance {

using std::chrono::seconds;

absl::Status ExchangeWithAll(ChildEnv& env, size_t size, uint64_t tag, Deadline deadline) {
  const int me = env.context.rank;
  std::vector<std::vector<std::byte>> in(env.context.nranks), out(env.context.nranks);
  std::vector<RequestPtr> requests;
  for (int peer = 0; peer < env.context.nranks; ++peer) {
    if (peer == me) continue;
    in[peer].assign(size, std::byte{0xee});
    out[peer].resize(size);
    FillPattern(out[peer].data(), size, me, tag);
    BRAID_ASSIGN_OR_RETURN(auto r, env.to(peer).irecv(in[peer].data(), size, tag));
    requests.push_back(r);
    BRAID_ASSIGN_OR_RETURN(auto s, env.to(peer).isend(out[peer].data(), size, tag));
    requests.push_back(s);
  }
  BRAID_RETURN_IF_ERROR(env.WaitAll(requests, deadline));
  for (auto& r : requests) {
    BRAID_RETURN_IF_ERROR(r->status());
    EXPECT_OR_RETURN(r->bytes() == size, "bytes ", r->bytes(), " size ", size);
  }
  for (int peer = 0; peer < env.context.nranks; ++peer) {
    if (peer == me) continue;
    std::string bad = CheckPattern(in[peer].data(), size, peer, tag);
    EXPECT_OR_RETURN(bad.empty(), bad);
  }
  return absl::OkStatus();
}

namespace {

constexpr size_t kSizes[] = {0, 1, 7, 4096, 65537, (1u << 20) + 3, 64u << 20};

TEST_P(Conformance, ConnectTwoRanks) {
  ExpectAllOk(RunRanks(transport(), 2, [](ChildEnv& env) {
    return ExchangeWithAll(env, 4, 1, Deadline::After(seconds(30)));
  }));
}

TEST_P(Conformance, ConnectThreeRanks) {
  ExpectAllOk(RunRanks(transport(), 3, [](ChildEnv& env) {
    return ExchangeWithAll(env, 4, 1, Deadline::After(seconds(30)));
  }));
}

TEST_P(Conformance, SendRecvSizes) {
  ExpectAllOk(RunRanks(transport(), 2, [](ChildEnv& env) {
    uint64_t tag = 10;
    for (size_t size : kSizes) {
      BRAID_RETURN_IF_ERROR(ExchangeWithAll(env, size, tag++, Deadline::After(seconds(60))));
    }
    return absl::OkStatus();
  }));
}

// Three ranks, three streams per pair, striping from 1000 bytes: exercises segment placement.
TEST_P(Conformance, SendRecvSizesStripedThreeRanks) {
  ExpectAllOk(RunRanks(
      transport(), 3,
      [](ChildEnv& env) {
        uint64_t tag = 10;
        for (size_t size : kSizes) {
          BRAID_RETURN_IF_ERROR(ExchangeWithAll(env, size, tag++, Deadline::After(seconds(60))));
        }
        return absl::OkStatus();
      },
      seconds(180),
      [](Config& config) {
        config.tcp_streams = 3;
        config.tcp_min_stripe_bytes = 1000;
      }));
}

// 256 messages each way with distinct tags, receives posted in reverse order before any send
// starts, completions observed as they happen (so not in posting order).
absl::Status ManyOutstanding(ChildEnv& env) {
  constexpr int kCount = 256;
  const int me = env.context.rank, peer = 1 - me;
  auto deadline = Deadline::After(seconds(60));
  auto size_of = [](int i) -> size_t { return i % 64 == 5 ? (600u << 10) + i : (i * 7919) % 70000; };
  std::vector<std::vector<std::byte>> in(kCount), out(kCount);
  std::vector<RequestPtr> recvs(kCount), sends(kCount);
  for (int i = kCount - 1; i >= 0; --i) {
    in[i].resize(size_of(i));
    BRAID_ASSIGN_OR_RETURN(recvs[i], env.to(peer).irecv(in[i].data(), in[i].size(), 1000 + i));
  }
  // Handshake so that the peer's receives are all posted before our sends begin.
  char token = 1, got = 0;
  BRAID_ASSIGN_OR_RETURN(auto ts, env.to(peer).isend(&token, 1, 1));
  BRAID_ASSIGN_OR_RETURN(auto tr, env.to(peer).irecv(&got, 1, 1));
  BRAID_RETURN_IF_ERROR(env.WaitAll(std::vector<RequestPtr>{ts, tr}, deadline));
  for (int i = 0; i < kCount; ++i) {
    out[i].resize(size_of(i));
    FillPattern(out[i].data(), out[i].size(), me, 1000 + i);
    BRAID_ASSIGN_OR_RETURN(sends[i], env.to(peer).isend(out[i].data(), out[i].size(), 1000 + i));
  }
  std::vector<bool> seen(kCount, false);
  std::vector<int> order;
  for (int k = 0; k < kCount; ++k) {
    BRAID_ASSIGN_OR_RETURN(size_t i, env.WaitAny(recvs, seen, deadline));
    BRAID_RETURN_IF_ERROR(recvs[i]->status());
    std::string bad = CheckPattern(in[i].data(), in[i].size(), peer, 1000 + i);
    EXPECT_OR_RETURN(bad.empty(), bad);
    order.push_back(static_cast<int>(i));
  }
  // Posted as 255..0; they complete in arrival order, so the order differs from posting order.
  std::vector<int> posting(kCount);
  for (int i = 0; i < kCount; ++i) posting[i] = kCount - 1 - i;
  EXPECT_OR_RETURN(order != posting, "completions came in posting order");
  BRAID_RETURN_IF_ERROR(env.WaitAll(sends, deadline));
  for (auto& s : sends) BRAID_RETURN_IF_ERROR(s->status());
  return absl::OkStatus();
}

TEST_P(Conformance, ManyOutstandingOutOfOrder) { ExpectAllOk(RunRanks(transport(), 2, ManyOutstanding)); }

TEST_P(Conformance, ManyOutstandingOutOfOrderStriped) {
  ExpectAllOk(RunRanks(transport(), 2, ManyOutstanding, seconds(120), [](Config& config) {
    config.tcp_streams = 4;
    config.tcp_min_stripe_bytes = 4096;
  }));
}

// Messages with the same tag complete receives in send order, whatever their sizes (small ones
// travel whole, large ones are striped), whether the receive was posted before or after arrival.
absl::Status SameTagFifo(ChildEnv& env) {
  constexpr int kCount = 40;
  const int me = env.context.rank, peer = 1 - me;
  auto deadline = Deadline::After(seconds(60));
  auto size_of = [](int i) -> size_t { return i % 3 == 0 ? 300000 + i * 4099 : 10 + i; };
  std::vector<std::vector<std::byte>> in(kCount), out(kCount);
  std::vector<RequestPtr> requests;
  if (me == 0) {
    for (int i = 0; i < kCount; ++i) {
      out[i].resize(size_of(i));
      // Same tag for all; the pattern's tag argument encodes the index to check the order.
      FillPattern(out[i].data(), out[i].size(), me, i);
      BRAID_ASSIGN_OR_RETURN(auto s, env.to(peer).isend(out[i].data(), out[i].size(), 7));
      requests.push_back(s);
    }
  } else {
    for (int i = 0; i < kCount; ++i) {
      if (i == kCount / 2) BRAID_RETURN_IF_ERROR(env.Drive(std::chrono::milliseconds(200)));
      in[i].resize(size_of(i));
      BRAID_ASSIGN_OR_RETURN(auto r, env.to(peer).irecv(in[i].data(), in[i].size(), 7));
      requests.push_back(r);
    }
  }
  BRAID_RETURN_IF_ERROR(env.WaitAll(requests, deadline));
  for (int i = 0; i < kCount; ++i) {
    BRAID_RETURN_IF_ERROR(requests[i]->status());
    if (me == 1) {
      std::string bad = CheckPattern(in[i].data(), in[i].size(), peer, i);
      EXPECT_OR_RETURN(bad.empty(), "message ", i, ": ", bad);
    }
  }
  return absl::OkStatus();
}

TEST_P(Conformance, SameTagMessagesMatchInOrder) { ExpectAllOk(RunRanks(transport(), 2, SameTagFifo)); }

TEST_P(Conformance, SameTagMessagesMatchInOrderStriped) {
  ExpectAllOk(RunRanks(transport(), 2, SameTagFifo, seconds(120), [](Config& config) {
    config.tcp_streams = 3;
    config.tcp_min_stripe_bytes = 2000;
  }));
}

// Receives posted after the messages arrived: they are buffered and delivered on irecv.
TEST_P(Conformance, ReceivePostedAfterArrival) {
  ExpectAllOk(RunRanks(transport(), 2, [](ChildEnv& env) {
    const int me = env.context.rank, peer = 1 - me;
    auto deadline = Deadline::After(seconds(60));
    const size_t sizes[] = {0, 10, 100000, (8u << 20) + 5};
    std::vector<std::vector<std::byte>> buf(4);
    std::vector<RequestPtr> requests;
    if (me == 0) {
      for (int i = 0; i < 4; ++i) {
        buf[i].resize(sizes[i]);
        FillPattern(buf[i].data(), sizes[i], me, 20 + i);
        BRAID_ASSIGN_OR_RETURN(auto s, env.to(peer).isend(buf[i].data(), sizes[i], 20 + i));
        requests.push_back(s);
      }
      BRAID_RETURN_IF_ERROR(env.WaitAll(requests, deadline));
    } else {
      BRAID_RETURN_IF_ERROR(env.Drive(std::chrono::milliseconds(500)));
      for (int i : {3, 0, 2, 1}) {
        buf[i].assign(sizes[i], std::byte{0});
        BRAID_ASSIGN_OR_RETURN(auto r, env.to(peer).irecv(buf[i].data(), sizes[i], 20 + i));
        requests.push_back(r);
      }
      BRAID_RETURN_IF_ERROR(env.WaitAll(requests, deadline));
      for (int i = 0; i < 4; ++i) {
        std::string bad = CheckPattern(buf[i].data(), sizes[i], peer, 20 + i);
        EXPECT_OR_RETURN(bad.empty(), bad);
      }
    }
    for (auto& r : requests) BRAID_RETURN_IF_ERROR(r->status());
    // Final handshake so the sender does not tear down before the receiver is done.
    return ExchangeWithAll(env, 1, 99, deadline);
  }));
}

TEST(Registry, ChooseTransportHonoursBraidTransport) {
  Config config;
  auto best = ChooseTransport(config);
  ASSERT_TRUE(best.ok()) << best.status();
  config.transport = "tcp";
  auto forced = ChooseTransport(config);
  ASSERT_TRUE(forced.ok()) << forced.status();
  EXPECT_EQ((*forced)->name, "tcp");
  config.transport = "carrier-pigeon";
  auto unknown = ChooseTransport(config);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(unknown.status().message()).find("tcp"), std::string::npos)
      << unknown.status();
}

INSTANTIATE_TEST_SUITE_P(AllTransports, Conformance, ::testing::ValuesIn(UsableTransports()),
                         [](const auto& info) { return info.param; });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(Conformance);

}  // namespace
}  // namespace braid::conformance
