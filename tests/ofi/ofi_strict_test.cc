// The ofi transport under EFA's rules on whatever provider BRAID_OFI_PROVIDER names (tcp or shm
// here): fi_getinfo is asked for exactly EFA's mode and mr_mode bits and must grant them; Braid
// then runs with all of them in force (BRAID_OFI_STRICT: every buffer registered and described,
// provider keys, MRs bound to endpoints where the provider allows), across several NICs where
// the provider has them; a provider that lacks a required capability fails with a clear error;
// and the probe never auto-selects a software provider.
#include <gtest/gtest.h>
#include <rdma/fabric.h>

#include <cstdlib>
#include <string>
#include <tuple>

#include "transports/ofi/fabric.h"
#include "transports/ofi/ofi_transport.h"
#include "tests/conformance/harness.h"
#include "tests/conformance/scenario_util.h"

namespace braid::conformance {
namespace {

using std::chrono::seconds;

constexpr uint64_t kEfaMode = FI_CONTEXT | FI_CONTEXT2;
constexpr uint64_t kEfaMrMode =
    FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY | FI_MR_ENDPOINT;

std::string Provider() {
  const char* p = std::getenv("BRAID_OFI_PROVIDER");
  return p ? p : "tcp";
}

Config StrictConfig() {
  Config config;
  config.transport = "ofi";
  config.ofi_provider = Provider();
  config.ofi_strict = true;
  config.ofi_max_segment = 64 << 10;  // many segments per large message.
  config.ofi_min_stripe_bytes = 4096;
  return config;
}

TEST(OfiStrict, ProviderGrantsEfaModeAndMrModeBits) {
  auto fabric = ofi::ChooseFabric(StrictConfig());
  ASSERT_TRUE(fabric.ok()) << fabric.status();
  for (fi_info* info : fabric->nics) {
    // Whatever the provider asks for must be something EFA asks for too, i.e. Braid copes.
    EXPECT_EQ(info->mode & ~kEfaMode & ~uint64_t{FI_LOCAL_MR}, 0u)
        << "mode " << fi_tostr(&info->mode, FI_TYPE_MODE);
    EXPECT_EQ(info->domain_attr->mr_mode & ~kEfaMrMode, 0u);
    EXPECT_TRUE(info->caps & FI_TAGGED);
    EXPECT_EQ(info->ep_attr->type, FI_EP_RDM);
  }
}

TEST(OfiStrict, EveryBufferRegisteredAndBound) {
  auto fabric = ofi::ChooseFabric(StrictConfig());
  ASSERT_TRUE(fabric.ok()) << fabric.status();
  auto rail = ofi::Rail::Open(fabric->nics[0], 0, /*strict=*/true);
  ASSERT_TRUE(rail.ok()) << rail.status();
  EXPECT_TRUE((*rail)->needs_local_mr());
  std::vector<char> buffer(1 << 20);
  auto mr = (*rail)->Register(buffer.data() + 3, buffer.size() - 3);
  ASSERT_TRUE(mr.ok()) << mr.status();
  ASSERT_NE(*mr, nullptr);
  EXPECT_NE(fi_mr_key(*mr), FI_KEY_NOTAVAIL);
  fi_close(&(*mr)->fid);
}

// Every size class (inline, one segment, many segments) to and from every peer at once, half
// of the buffers registered with register_memory (descriptors from the region) and half not
// (registered per operation), checked byte for byte.
absl::Status StrictExchange(ChildEnv& env) {
  const int me = env.context.rank, n = env.context.nranks;
  const size_t sizes[] = {0, 1, 8151, 8152, 65536, 65537, (size_t{1} << 20) + 7, size_t{16} << 20};
  auto deadline = Deadline::After(seconds(120));
  std::vector<std::vector<std::byte>> in, out;
  std::vector<MemoryRegion*> regions;
  std::vector<RequestPtr> requests;
  std::vector<std::tuple<int, size_t, uint64_t, size_t>> checks;  // peer, size, tag, buffer.
  uint64_t tag = 100;
  for (size_t size : sizes) {
    ++tag;
    for (int peer = 0; peer < n; ++peer) {
      if (peer == me) continue;
      in.emplace_back(size + 1, std::byte{0xee});
      out.emplace_back(size + 1);
      FillPattern(out.back().data(), size, me, tag);
      const MemoryRegion* in_region = nullptr;
      const MemoryRegion* out_region = nullptr;
      if (tag % 2 == 0) {
        BRAID_ASSIGN_OR_RETURN(MemoryRegion * r1, env.transport->register_memory(in.back().data(), size + 1));
        BRAID_ASSIGN_OR_RETURN(MemoryRegion * r2, env.transport->register_memory(out.back().data(), size + 1));
        regions.push_back(r1);
        regions.push_back(r2);
        in_region = r1;
        out_region = r2;
      }
      BRAID_ASSIGN_OR_RETURN(auto r, env.to(peer).irecv(in.back().data(), size, tag, in_region));
      BRAID_ASSIGN_OR_RETURN(auto s, env.to(peer).isend(out.back().data(), size, tag, out_region));
      requests.push_back(r);
      requests.push_back(s);
      checks.emplace_back(peer, size, tag, in.size() - 1);
    }
  }
  BRAID_RETURN_IF_ERROR(env.WaitAll(requests, deadline));
  for (auto& r : requests) BRAID_RETURN_IF_ERROR(r->status());
  for (auto& [peer, size, t, index] : checks) {
    std::string bad = CheckPattern(in[index].data(), size, peer, t);
    EXPECT_OR_RETURN(bad.empty(), bad);
    EXPECT_OR_RETURN(in[index][size] == std::byte{0xee}, "wrote past the end of ", size, " bytes");
  }
  for (MemoryRegion* region : regions) BRAID_RETURN_IF_ERROR(env.transport->deregister_memory(region));
  // Nobody leaves before everyone is done.
  std::vector<RequestPtr> last;
  char token = 1;
  std::vector<char> got(n);
  for (int peer = 0; peer < n; ++peer) {
    if (peer == me) continue;
    BRAID_ASSIGN_OR_RETURN(auto r, env.to(peer).irecv(&got[peer], 1, 1));
    BRAID_ASSIGN_OR_RETURN(auto s, env.to(peer).isend(&token, 1, 1));
    last.push_back(r);
    last.push_back(s);
  }
  return env.WaitAll(last, deadline);
}

TEST(OfiStrict, CollectiveTrafficUnderEfaRules) {
  ExpectAllOk(RunRanks("ofi", 3, StrictExchange, seconds(240), [](Config& config) {
    config = StrictConfig();
    config.timeout = std::chrono::seconds(120);
  }));
}

TEST(OfiStrict, StripesAcrossNics) {
  // Software providers use one NIC unless told; tcp lists eth0 and lo, two rails here.
  Config config = StrictConfig();
  config.ofi_nics = "eth0,lo";
  auto fabric = ofi::ChooseFabric(config);
  if (!fabric.ok()) GTEST_SKIP() << Provider() << " has no two NICs here: " << fabric.status();
  ASSERT_EQ(fabric->nics.size(), 2u);
  ExpectAllOk(RunRanks("ofi", 2, StrictExchange, seconds(240), [](Config& c) {
    c = StrictConfig();
    c.ofi_nics = "eth0,lo";
    c.timeout = std::chrono::seconds(120);
  }));
}

// One-sided writes: rank 1 registers a buffer and advertises it; rank 0 writes pieces of every
// size class into it, each delivering its tag to a 0-byte receive only once the data landed.
// shm grants what writes need (FI_RMA, FI_MR_VIRT_ADDR, remote CQ data); tcp;ofi_rxm wants MR
// offsets instead of addresses, so there iwrite must say it is unavailable.
absl::Status WriteScenario(ChildEnv& env) {
  const int me = env.context.rank, peer = 1 - me;
  auto deadline = Deadline::After(seconds(60));
  Connection& conn = env.to(peer);
  if (Provider() == "shm") EXPECT_OR_RETURN(conn.supports_write(), "shm should support writes");
  const size_t pieces[] = {1, 4096, 8200, (size_t{1} << 20) + 3};
  const size_t total = 1 + 4096 + 8200 + (size_t{1} << 20) + 3;
  std::vector<std::byte> target(total + 64, std::byte{0xee}), source(total);
  FillPattern(source.data(), total, 0, 77);
  if (!conn.supports_write()) {
    RemoteBuffer nowhere{1, 1, 1};
    auto w = conn.iwrite(source.data(), 1, nullptr, nowhere, 0, 5);
    EXPECT_OR_RETURN(!w.ok() && w.status().code() == absl::StatusCode::kUnimplemented,
                     w.ok() ? "iwrite accepted" : w.status().ToString());
    return absl::OkStatus();
  }
  if (me == 1) {
    BRAID_ASSIGN_OR_RETURN(MemoryRegion * region,
                           env.transport->register_memory(target.data(), target.size()));
    RemoteBuffer advert{reinterpret_cast<uint64_t>(target.data()), region->remote_key, total};
    BRAID_ASSIGN_OR_RETURN(auto s, conn.isend(&advert, sizeof(advert), 1));
    std::vector<RequestPtr> notes{s};
    for (uint64_t tag = 10; tag < 10 + std::size(pieces); ++tag) {
      BRAID_ASSIGN_OR_RETURN(auto r, conn.irecv(nullptr, 0, tag));
      notes.push_back(r);
    }
    BRAID_RETURN_IF_ERROR(env.WaitAll(notes, deadline));
    for (auto& r : notes) BRAID_RETURN_IF_ERROR(r->status());
    std::string bad = CheckPattern(target.data(), total, 0, 77);
    EXPECT_OR_RETURN(bad.empty(), bad);
    EXPECT_OR_RETURN(target[total] == std::byte{0xee}, "wrote past the advertised buffer");
    BRAID_RETURN_IF_ERROR(env.transport->deregister_memory(region));
  } else {
    RemoteBuffer advert;
    BRAID_ASSIGN_OR_RETURN(auto r, conn.irecv(&advert, sizeof(advert), 1));
    BRAID_RETURN_IF_ERROR(env.Wait(r, deadline));
    BRAID_RETURN_IF_ERROR(r->status());
    auto outside = conn.iwrite(source.data(), 2, nullptr, advert, total - 1, 9);
    EXPECT_OR_RETURN(outside.status().code() == absl::StatusCode::kInvalidArgument,
                     outside.status().ToString());
    std::vector<RequestPtr> writes;
    size_t offset = 0;
    uint64_t tag = 10;
    for (size_t piece : pieces) {
      BRAID_ASSIGN_OR_RETURN(auto w, conn.iwrite(source.data() + offset, piece, nullptr, advert,
                                                 offset, tag++));
      writes.push_back(w);
      offset += piece;
    }
    BRAID_RETURN_IF_ERROR(env.WaitAll(writes, deadline));
    for (auto& w : writes) BRAID_RETURN_IF_ERROR(w->status());
  }
  // Nobody leaves before both are done.
  char token = 1, got = 0;
  BRAID_ASSIGN_OR_RETURN(auto fr, conn.irecv(&got, 1, 2));
  BRAID_ASSIGN_OR_RETURN(auto fs, conn.isend(&token, 1, 2));
  return env.WaitAll(std::vector<RequestPtr>{fr, fs}, deadline);
}

TEST(OfiWrite, WritesLandBeforeTheirTag) {
  for (bool strict : {false, true}) {
    ExpectAllOk(RunRanks("ofi", 2, WriteScenario, seconds(120), [strict](Config& c) {
      c = StrictConfig();
      c.ofi_strict = strict;
      c.timeout = std::chrono::seconds(60);
    }));
  }
}

TEST(OfiStrict, UnknownProviderOrNicFailsClearly) {
  Config config;
  config.ofi_provider = "no-such-provider";
  auto unknown = ofi::ChooseFabric(config);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(std::string(unknown.status().message()).find("no-such-provider"), std::string::npos);
  config.ofi_provider = Provider();
  config.ofi_nics = "999";
  auto too_many = ofi::ChooseFabric(config);
  ASSERT_FALSE(too_many.ok());
  EXPECT_NE(std::string(too_many.status().message()).find("BRAID_OFI_NICS"), std::string::npos);
}

// Run with FI_PROVIDER=^ofi_rxd (its own CTest entry): udp is then datagrams only, without
// reliable-datagram endpoints or tagged messages, which Braid requires.
TEST(OfiMissing, ProviderWithoutRequiredCapabilityFailsClearly) {
  const char* filter = std::getenv("FI_PROVIDER");
  if (filter == nullptr || std::string(filter) != "^ofi_rxd") {
    GTEST_SKIP() << "needs FI_PROVIDER=^ofi_rxd in the environment (CTest entry ofi_missing_capability)";
  }
  Config config;
  config.ofi_provider = "udp";
  auto fabric = ofi::ChooseFabric(config);
  ASSERT_FALSE(fabric.ok());
  std::string text(fabric.status().message());
  EXPECT_NE(text.find("udp"), std::string::npos) << text;
  EXPECT_NE(text.find("FI_EP_RDM"), std::string::npos) << text;
  EXPECT_NE(text.find("BRAID_OFI_PROVIDER"), std::string::npos) << text;
  TransportContext context = MakeContext(0, 2, 1, 1);
  context.config = config;
  auto transport = CreateOfiTransport(context);
  EXPECT_EQ(transport.status().code(), absl::StatusCode::kUnavailable) << transport.status();
  // Forcing it names the reason too.
  config.transport = "ofi";
  auto chosen = ChooseTransport(config);
  ASSERT_FALSE(chosen.ok());
  EXPECT_NE(std::string(chosen.status().message()).find("FI_EP_RDM"), std::string::npos)
      << chosen.status();
}

TEST(OfiProbe, SoftwareProvidersOnlyWhenForced) {
  Config config;
  config.ofi_provider = Provider();
  ProbeResult automatic = ProbeOfiTransport(config);
  EXPECT_FALSE(automatic.usable);
  EXPECT_NE(automatic.reason.find("BRAID_TRANSPORT=ofi"), std::string::npos) << automatic.reason;
  config.transport = "ofi";
  ProbeResult forced = ProbeOfiTransport(config);
  EXPECT_TRUE(forced.usable) << forced.reason;
  auto chosen = ChooseTransport(Config{});
  ASSERT_TRUE(chosen.ok()) << chosen.status();
  EXPECT_EQ((*chosen)->name, "tcp");
}

}  // namespace
}  // namespace braid::conformance
