// braid-health's analysis on synthetic fabrics: each scenario names exactly the culprit the
// operator must act on, and the exit status schedulers see.
#include <set>

#include "gtest/gtest.h"
#include "tools/health/analysis.h"
#include "tools/health/host_report.h"
#include "tools/health/report.h"
#include "tools/health/schedule.h"

namespace braid::health {
namespace {

// n reporting hosts, every pair measured at `gbps` each way with 50 us latency.
FabricMeasurements Uniform(int n, double gbps) {
  FabricMeasurements f;
  f.transport = "tcp";
  f.nranks = n;
  for (int h = 0; h < n; ++h) {
    HostRecord host;
    host.name = "h" + std::to_string(h);
    host.leader_rank = h;
    host.ranks = 1;
    host.reported = true;
    f.hosts.push_back(host);
  }
  for (int a = 0; a < n; ++a) {
    for (int b = a + 1; b < n; ++b) {
      f.pairs.push_back(PairRecord{.a = a, .b = b, .measured = true, .ok = true,
                                   .gbps_ab = gbps, .gbps_ba = gbps, .latency_us = 50,
                                   .error = ""});
    }
  }
  return f;
}

PairRecord& Pair(FabricMeasurements& f, int a, int b) {
  for (PairRecord& p : f.pairs) {
    if (p.a == a && p.b == b) return p;
  }
  throw std::logic_error("no such pair");
}

std::vector<std::string> Subjects(const HealthVerdict& v, Severity at_least) {
  std::vector<std::string> out;
  for (const Finding& f : v.findings) {
    if (f.severity >= at_least) out.push_back(f.kind + ":" + f.subject);
  }
  return out;
}

TEST(PairRounds, EveryPairOnceAndEachHostOncePerRound) {
  for (int n = 1; n <= 33; ++n) {
    auto rounds = PairRounds(n);
    if (n < 2) {
      EXPECT_TRUE(rounds.empty());
      continue;
    }
    EXPECT_EQ(rounds.size(), static_cast<size_t>(n % 2 == 0 ? n - 1 : n)) << n;
    std::set<HostPair> seen;
    for (const auto& round : rounds) {
      std::set<int> busy;
      for (const HostPair& p : round) {
        EXPECT_LT(p.first, p.second);
        EXPECT_GE(p.first, 0);
        EXPECT_LT(p.second, n);
        EXPECT_TRUE(busy.insert(p.first).second) << "host twice in a round, n=" << n;
        EXPECT_TRUE(busy.insert(p.second).second) << "host twice in a round, n=" << n;
        EXPECT_TRUE(seen.insert(p).second) << "pair twice, n=" << n;
      }
    }
    EXPECT_EQ(seen.size(), static_cast<size_t>(n * (n - 1) / 2)) << n;
  }
}

TEST(Analyze, UniformFabricIsHealthy) {
  auto f = Uniform(6, 0.117);
  HealthVerdict v = Analyze(f, Thresholds{});
  EXPECT_EQ(v.exit_status(), 0);
  EXPECT_TRUE(Subjects(v, Severity::kDegraded).empty());
  EXPECT_DOUBLE_EQ(v.median_gbps, 0.117);
}

TEST(Analyze, HostSlowInEveryPairIsTheHostNotItsLinks) {
  auto f = Uniform(6, 0.117);
  // tbf on h3's egress: it sends at a quarter of the rate, receives normally.
  for (PairRecord& p : f.pairs) {
    if (p.a == 3) p.gbps_ab = 0.029;
    if (p.b == 3) p.gbps_ba = 0.029;
  }
  HealthVerdict v = Analyze(f, Thresholds{});
  EXPECT_EQ(v.exit_status(), 1);
  EXPECT_EQ(Subjects(v, Severity::kDegraded), std::vector<std::string>{"slow-host:h3"});
}

TEST(Analyze, OneSlowDirectionIsALink) {
  auto f = Uniform(6, 0.117);
  Pair(f, 1, 4).gbps_ab = 0.03;
  HealthVerdict v = Analyze(f, Thresholds{});
  EXPECT_EQ(v.exit_status(), 1);
  EXPECT_EQ(Subjects(v, Severity::kDegraded), std::vector<std::string>{"slow-link:h1 -> h4"});
}

TEST(Analyze, SlightlySlowWithinThresholdIsHealthy) {
  auto f = Uniform(4, 0.117);
  Pair(f, 0, 2).gbps_ba = 0.117 * 0.85;
  EXPECT_EQ(Analyze(f, Thresholds{}).exit_status(), 0);
  EXPECT_EQ(Analyze(f, Thresholds{.bandwidth_fraction = 0.9}).exit_status(), 1);
}

TEST(Analyze, SilentHostFailsAndItsPairsAreNotBlamedOnLinks) {
  auto f = Uniform(6, 0.117);
  f.hosts[5].reported = false;
  f.hosts[5].error = "its report did not arrive: timeout";
  for (PairRecord& p : f.pairs) {
    if (p.b == 5) {
      p.ok = false;
      p.error = "timeout";
    }
  }
  HealthVerdict v = Analyze(f, Thresholds{});
  EXPECT_EQ(v.exit_status(), 2);
  EXPECT_EQ(Subjects(v, Severity::kDegraded), std::vector<std::string>{"failed-host:h5"});
}

TEST(Analyze, HostFailingWithEveryoneIsTheHost) {
  auto f = Uniform(4, 1.0);
  for (PairRecord& p : f.pairs) {
    if (p.a == 2 || p.b == 2) {
      p.ok = false;
      p.error = "peer reset";
    }
  }
  HealthVerdict v = Analyze(f, Thresholds{});
  EXPECT_EQ(v.exit_status(), 2);
  EXPECT_EQ(Subjects(v, Severity::kDegraded), std::vector<std::string>{"failed-host:h2"});
}

TEST(Analyze, OneFailedPairIsALink) {
  auto f = Uniform(4, 1.0);
  Pair(f, 0, 3).ok = false;
  Pair(f, 0, 3).error = "retry exceeded";
  HealthVerdict v = Analyze(f, Thresholds{});
  EXPECT_EQ(v.exit_status(), 2);
  EXPECT_EQ(Subjects(v, Severity::kDegraded), std::vector<std::string>{"failed-link:h0 <-> h3"});
}

TEST(Analyze, HostZeroReachingNobodyBlamesHostZero) {
  auto f = Uniform(5, 1.0);
  for (int h = 1; h < 5; ++h) {
    f.hosts[static_cast<size_t>(h)].reported = false;
    f.hosts[static_cast<size_t>(h)].error = "no connection";
  }
  for (PairRecord& p : f.pairs) {
    if (p.a == 0) {
      p.ok = false;
      p.error = "timeout";
    } else {
      p.measured = false;  // nobody reported them
    }
  }
  HealthVerdict v = Analyze(f, Thresholds{});
  EXPECT_EQ(v.exit_status(), 2);
  EXPECT_EQ(Subjects(v, Severity::kDegraded), std::vector<std::string>{"failed-host:h0"});
}

TEST(Analyze, StragglerClockAndLocalChecksAreDegraded) {
  auto f = Uniform(5, 1.0);
  for (PairRecord& p : f.pairs) {
    if (p.a == 1 || p.b == 1) p.latency_us = 400;
  }
  f.hosts[2].clock_known = true;
  f.hosts[2].clock_offset_ms = 5000;
  f.hosts[4].checks.push_back({"RLIMIT_MEMLOCK", "64 KiB", false, "ulimit -l unlimited"});
  HealthVerdict v = Analyze(f, Thresholds{});
  EXPECT_EQ(v.exit_status(), 1);
  auto subjects = Subjects(v, Severity::kDegraded);
  std::sort(subjects.begin(), subjects.end());
  EXPECT_EQ(subjects, (std::vector<std::string>{"clock:h2", "local:h4", "straggler:h1"}));
}

// As seen on a loaded CI machine: three hosts slow with three of their five peers each. No host
// is the common factor, so nobody straggles.
TEST(Analyze, LatencySlowWithSomePeersIsNoStraggler) {
  auto f = Uniform(6, 1.0);
  for (PairRecord& p : f.pairs) {
    const std::pair<int, int> slow[] = {{0, 1}, {1, 4}, {1, 5}, {2, 3},
                                        {2, 4}, {2, 5}, {3, 5}};
    for (auto [a, b] : slow) {
      if (p.a == a && p.b == b) p.latency_us = 400;
    }
  }
  HealthVerdict v = Analyze(f, Thresholds{});
  EXPECT_EQ(v.exit_status(), 0);
  EXPECT_TRUE(Subjects(v, Severity::kDegraded).empty());
}

TEST(Analyze, FatalStartFails) {
  FabricMeasurements f;
  f.fatal = "could not create the communicator";
  EXPECT_EQ(Analyze(f, Thresholds{}).exit_status(), 2);
}

TEST(Analyze, AllReduceFailureAloneFails) {
  auto f = Uniform(3, 1.0);
  AllReduceRecord failed;
  failed.bytes = 1024;
  failed.error = "timeout";
  f.allreduce.push_back(failed);
  EXPECT_EQ(Analyze(f, Thresholds{}).exit_status(), 2);
}

TEST(Reports, NameTheCulpritFirstAndCarryTheMatrix) {
  auto f = Uniform(3, 0.5);
  Pair(f, 0, 2).gbps_ba = 0.1;
  HealthVerdict v = Analyze(f, Thresholds{});
  std::string text = TextReport(f, v, Thresholds{});
  EXPECT_NE(text.find("DEGRADED (exit 1)"), std::string::npos) << text;
  EXPECT_LT(text.find("h2 -> h0"), text.find("Pairs ")) << text;
  std::string json = JsonReport(f, v, Thresholds{});
  EXPECT_NE(json.find("\"status\": \"degraded\""), std::string::npos);
  EXPECT_NE(json.find("\"subject\": \"h2 -> h0\""), std::string::npos);
  std::string html = HtmlHeatmap(f, v, Thresholds{});
  size_t cells = 0;
  for (size_t pos = 0; (pos = html.find("class=\"cell\"", pos)) != std::string::npos; ++pos) ++cells;
  EXPECT_EQ(cells, 9u);
  EXPECT_NE(html.find("h2 -&gt; h0: 0.100 GB/s"), std::string::npos);
}

TEST(Reports, JsonEscapesHostileText) {
  auto f = Uniform(2, 1.0);
  f.hosts[0].name = "a\"b\\c\n\x01";
  std::string json = JsonReport(f, Analyze(f, Thresholds{}), Thresholds{});
  EXPECT_NE(json.find("a\\\"b\\\\c\\n\\u0001"), std::string::npos) << json;
}

TEST(HostReport, RoundTrips) {
  HostReport report;
  report.checks.push_back({"transport tcp", "usable", true, ""});
  report.pairs.push_back(PairRecord{.a = 1, .b = 3, .measured = true, .ok = false,
                                    .gbps_ab = 1.5, .gbps_ba = 2.5, .latency_us = 7,
                                    .error = "boom"});
  auto decoded = DecodeHostReport(EncodeHostReport(report), 4);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->pairs.size(), 1u);
  EXPECT_EQ(decoded->pairs[0].b, 3);
  EXPECT_FALSE(decoded->pairs[0].ok);
  EXPECT_TRUE(decoded->pairs[0].measured);
  EXPECT_EQ(decoded->pairs[0].error, "boom");
  EXPECT_EQ(decoded->checks[0].value, "usable");
}

TEST(HostReport, RefusesEveryTruncationAndBadHosts) {
  HostReport report;
  report.checks.push_back({"x", "y", false, "z"});
  report.pairs.push_back(PairRecord{.a = 0, .b = 1, .measured = true, .ok = true,
                                    .gbps_ab = 0, .gbps_ba = 0, .latency_us = 0, .error = ""});
  std::vector<std::byte> bytes = EncodeHostReport(report);
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    std::vector<std::byte> truncated(bytes.begin(), bytes.begin() + static_cast<long>(cut));
    EXPECT_FALSE(DecodeHostReport(truncated, 2).ok()) << cut;
  }
  EXPECT_FALSE(DecodeHostReport(bytes, 1).ok());  // host 1 does not exist
  bytes.push_back(std::byte{0});
  EXPECT_FALSE(DecodeHostReport(bytes, 2).ok());
}

}  // namespace
}  // namespace braid::health
