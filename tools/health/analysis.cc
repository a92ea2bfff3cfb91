#include "tools/health/analysis.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace braid::health {

const char* SeverityName(Severity severity) {
  switch (severity) {
    case Severity::kInfo: return "healthy";
    case Severity::kDegraded: return "degraded";
    case Severity::kFailed: return "failed";
  }
  return "unknown";
}

namespace {

double Median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

std::string Percent(double part, double whole) {
  return whole > 0 ? absl::StrFormat("%.0f%%", 100.0 * part / whole) : "n/a";
}

// Per-host tallies over the pairs it took part in.
struct HostTally {
  int measured = 0;
  int failed = 0;
  int ok = 0;
  int slow_out = 0;  // pairs in which this host's sending direction is slow.
  int slow_in = 0;
  std::vector<double> out_gbps, in_gbps, latency_us;
  std::string first_error;
};

}  // namespace

HealthVerdict Analyze(const FabricMeasurements& fabric, const Thresholds& th) {
  HealthVerdict verdict;
  auto add = [&](Severity severity, std::string kind, std::string subject, std::string detail) {
    verdict.findings.push_back({severity, std::move(kind), std::move(subject), std::move(detail)});
    verdict.overall = std::max(verdict.overall, severity);
  };
  if (!fabric.fatal.empty()) {
    add(Severity::kFailed, "job", "job", fabric.fatal);
    return verdict;
  }
  const int n = static_cast<int>(fabric.hosts.size());
  auto name = [&](int h) { return fabric.hosts[static_cast<size_t>(h)].name; };

  std::vector<double> directed, latencies;
  for (const PairRecord& p : fabric.pairs) {
    if (!p.measured || !p.ok) continue;
    directed.push_back(p.gbps_ab);
    directed.push_back(p.gbps_ba);
    latencies.push_back(p.latency_us);
  }
  verdict.median_gbps = Median(directed);
  verdict.median_latency_us = Median(latencies);
  const double slow_below = th.bandwidth_fraction * verdict.median_gbps;

  std::vector<HostTally> tally(static_cast<size_t>(n));
  for (const PairRecord& p : fabric.pairs) {
    if (!p.measured) continue;
    HostTally& a = tally[static_cast<size_t>(p.a)];
    HostTally& b = tally[static_cast<size_t>(p.b)];
    ++a.measured;
    ++b.measured;
    if (!p.ok) {
      ++a.failed;
      ++b.failed;
      if (a.first_error.empty()) a.first_error = p.error;
      if (b.first_error.empty()) b.first_error = p.error;
      continue;
    }
    ++a.ok;
    ++b.ok;
    a.out_gbps.push_back(p.gbps_ab);
    b.in_gbps.push_back(p.gbps_ab);
    b.out_gbps.push_back(p.gbps_ba);
    a.in_gbps.push_back(p.gbps_ba);
    a.latency_us.push_back(p.latency_us);
    b.latency_us.push_back(p.latency_us);
    if (p.gbps_ab < slow_below) {
      ++a.slow_out;
      ++b.slow_in;
    }
    if (p.gbps_ba < slow_below) {
      ++b.slow_out;
      ++a.slow_in;
    }
  }

  // Failed hosts: silent, or failing with everyone (with only two hosts a failed pair cannot be
  // pinned on either end, so it stays a failed link).
  std::vector<bool> host_failed(static_cast<size_t>(n), false);
  // When no other host reported and host 0 failed with all of them, the likelier culprit is
  // host 0 itself (its own link is down), not everyone else.
  bool others_silent = n > 2;
  for (int h = 1; h < n; ++h) others_silent = others_silent && !fabric.hosts[static_cast<size_t>(h)].reported;
  if (others_silent && tally[0].measured > 0 && tally[0].failed == tally[0].measured) {
    host_failed[0] = true;
    add(Severity::kFailed, "failed-host", name(0),
        absl::StrCat(name(0), " (rank 0) reached none of the other ", n - 1,
                     " hosts, e.g.: ", tally[0].first_error,
                     ". Check this host's link first; the others may be fine."));
    std::stable_sort(verdict.findings.begin(), verdict.findings.end(),
                     [](const Finding& x, const Finding& y) { return x.severity > y.severity; });
    return verdict;
  }
  for (int h = 0; h < n; ++h) {
    const HostRecord& host = fabric.hosts[static_cast<size_t>(h)];
    const HostTally& t = tally[static_cast<size_t>(h)];
    if (!host.reported) {
      host_failed[static_cast<size_t>(h)] = true;
      add(Severity::kFailed, "failed-host", host.name,
          absl::StrCat(host.name, " (rank ", host.leader_rank, ") did not report: ", host.error,
                       ". Check that the host is up and its link to the fabric works."));
    } else if (n > 2 && t.measured > 0 && t.failed == t.measured) {
      host_failed[static_cast<size_t>(h)] = true;
      add(Severity::kFailed, "failed-host", host.name,
          absl::StrCat(host.name, " failed with every host it was paired with (", t.failed,
                       " pairs), e.g.: ", t.first_error,
                       ". Check its NIC, cable and switch port."));
    }
  }
  for (const PairRecord& p : fabric.pairs) {
    if (!p.measured || p.ok) continue;
    if (host_failed[static_cast<size_t>(p.a)] || host_failed[static_cast<size_t>(p.b)]) continue;
    add(Severity::kFailed, "failed-link", absl::StrCat(name(p.a), " <-> ", name(p.b)),
        absl::StrCat("the pair test failed: ", p.error,
                     ". Both hosts work with others: check the path between them."));
  }

  // Slow hosts: every pair they took part in is slow the same way (sending, or receiving); at
  // least two pairs, or a slow host could not be told apart from a slow link.
  std::vector<bool> host_slow(static_cast<size_t>(n), false);
  for (int h = 0; h < n; ++h) {
    const HostTally& t = tally[static_cast<size_t>(h)];
    if (host_failed[static_cast<size_t>(h)] || t.ok < 2) continue;
    const bool sends_slow = t.slow_out == t.ok, receives_slow = t.slow_in == t.ok;
    if (!sends_slow && !receives_slow) continue;
    host_slow[static_cast<size_t>(h)] = true;
    double out = Median(t.out_gbps), in = Median(t.in_gbps);
    const char* how = sends_slow && receives_slow ? "sends and receives slowly"
                      : sends_slow               ? "sends slowly"
                                                 : "receives slowly";
    add(Severity::kDegraded, "slow-host", name(h),
        absl::StrFormat("%s %s with all %d hosts it was paired with: sends at %.3f GB/s (%s of "
                        "the median %.3f GB/s), receives at %.3f GB/s (%s). Check its NIC "
                        "speed, link training, PCIe slot and rate limits.",
                        name(h), how, t.ok, out, Percent(out, verdict.median_gbps),
                        verdict.median_gbps, in, Percent(in, verdict.median_gbps)));
  }
  for (const PairRecord& p : fabric.pairs) {
    if (!p.measured || !p.ok) continue;
    if (host_slow[static_cast<size_t>(p.a)] || host_slow[static_cast<size_t>(p.b)]) continue;
    auto report = [&](int from, int to, double gbps) {
      if (gbps >= slow_below) return;
      add(Severity::kDegraded, "slow-link", absl::StrCat(name(from), " -> ", name(to)),
          absl::StrFormat("%.3f GB/s, %s of the median %.3f GB/s, while both hosts are fast "
                          "with others. Check the path between them (cable, switch port, "
                          "routing, traffic shaping).",
                          gbps, Percent(gbps, verdict.median_gbps), verdict.median_gbps));
    };
    report(p.a, p.b, p.gbps_ab);
    report(p.b, p.a, p.gbps_ba);
  }

  for (int h = 0; h < n; ++h) {
    const HostTally& t = tally[static_cast<size_t>(h)];
    if (host_failed[static_cast<size_t>(h)] || t.latency_us.empty()) continue;
    // Like slow-host: the host must be the common factor, slow with every host it met. Pairs
    // measured at the same time share CPUs, so on a loaded machine a host can look slow with
    // some of its peers by chance; a host that is itself loaded is slow with all of them.
    const double slow_above = th.latency_factor * verdict.median_latency_us;
    const bool slow_with_all =
        t.latency_us.size() >= 2 &&
        std::all_of(t.latency_us.begin(), t.latency_us.end(),
                    [&](double us) { return us > slow_above; });
    double latency = Median(t.latency_us);
    if (verdict.median_latency_us > 0 && slow_with_all) {
      add(Severity::kDegraded, "straggler", name(h),
          absl::StrFormat("%s answers in %.1f us, %.1fx the median %.1f us. Check its load "
                          "(CPU, interrupts) and power settings.",
                          name(h), latency, latency / verdict.median_latency_us,
                          verdict.median_latency_us));
    }
  }

  for (const HostRecord& host : fabric.hosts) {
    if (host.clock_known && std::fabs(host.clock_offset_ms) > th.max_clock_skew_ms) {
      add(Severity::kDegraded, "clock", host.name,
          absl::StrFormat("its clock is %+.0f ms from %s's. Check NTP/chrony on the host.",
                          host.clock_offset_ms, fabric.hosts.front().name));
    }
    for (const LocalCheck& check : host.checks) {
      if (check.ok) continue;
      add(Severity::kDegraded, "local", host.name,
          absl::StrCat(check.name, " = ", check.value, ". ", check.remedy));
    }
  }

  bool any_failed_host = std::find(host_failed.begin(), host_failed.end(), true) !=
                         host_failed.end();
  for (const AllReduceRecord& r : fabric.allreduce) {
    if (r.ok) continue;
    // Explained already when a host failed; otherwise a failure of its own.
    add(any_failed_host ? Severity::kInfo : Severity::kFailed, "allreduce",
        absl::StrCat("AllReduce ", r.bytes, " B"), absl::StrCat("failed: ", r.error));
  }

  std::stable_sort(verdict.findings.begin(), verdict.findings.end(),
                   [](const Finding& x, const Finding& y) { return x.severity > y.severity; });
  return verdict;
}

}  // namespace braid::health
