#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tools/health/report.h"

namespace braid::health {

std::string TextReport(const FabricMeasurements& fabric, const HealthVerdict& verdict,
                       const Thresholds& th) {
  std::string out;
  std::string status = SeverityName(verdict.overall);
  std::transform(status.begin(), status.end(), status.begin(), ::toupper);
  absl::StrAppendFormat(&out, "braid-health: %s (exit %d) - %d hosts, %d ranks, transport %s\n",
                        status, verdict.exit_status(), static_cast<int>(fabric.hosts.size()),
                        fabric.nranks, fabric.transport.empty() ? "?" : fabric.transport);
  absl::StrAppendFormat(&out, "median pair bandwidth %.3f GB/s, median latency %.1f us; slow "
                        "means below %.0f%% of the median\n",
                        verdict.median_gbps, verdict.median_latency_us,
                        th.bandwidth_fraction * 100);
  int culprits = 0;
  for (const Finding& f : verdict.findings) {
    if (f.severity == Severity::kInfo) continue;
    if (culprits++ == 0) out += "\nCulprits:\n";
    absl::StrAppendFormat(&out, "  %-8s %-12s %-20s %s\n", SeverityName(f.severity), f.kind,
                          f.subject, f.detail);
  }
  if (culprits == 0) out += "\nNo culprits: every host and link is within the thresholds.\n";
  for (const Finding& f : verdict.findings) {
    if (f.severity == Severity::kInfo) absl::StrAppend(&out, "  note: ", f.subject, ": ", f.detail, "\n");
  }

  auto name = [&](int h) { return fabric.hosts[static_cast<size_t>(h)].name; };
  if (!fabric.pairs.empty()) {
    out += "\nPairs (GB/s each way, latency = half round trip):\n";
    absl::StrAppendFormat(&out, "  %-12s %-12s %10s %10s %10s  %s\n", "host A", "host B",
                          "A->B", "B->A", "lat us", "status");
    for (const PairRecord& p : fabric.pairs) {
      std::string state = !p.measured ? "not measured" : p.ok ? "ok" : "FAILED: " + p.error;
      if (p.measured && p.ok) {
        absl::StrAppendFormat(&out, "  %-12s %-12s %10.3f %10.3f %10.1f  %s\n", name(p.a),
                              name(p.b), p.gbps_ab, p.gbps_ba, p.latency_us, state);
      } else {
        absl::StrAppendFormat(&out, "  %-12s %-12s %10s %10s %10s  %s\n", name(p.a), name(p.b),
                              "-", "-", "-", state);
      }
    }
  }
  if (!fabric.allreduce.empty()) {
    out += "\nAllReduce over all ranks:\n";
    for (const AllReduceRecord& r : fabric.allreduce) {
      if (r.ok) {
        absl::StrAppendFormat(&out, "  %12zu B  %10.1f us  busbw %.3f GB/s\n", r.bytes,
                              r.time_us, r.busbw_gbps);
      } else {
        absl::StrAppendFormat(&out, "  %12zu B  FAILED: %s\n", r.bytes, r.error);
      }
    }
  }
  out += "\nHosts:\n";
  for (const HostRecord& h : fabric.hosts) {
    absl::StrAppendFormat(&out, "  %s (leader rank %d, %d ranks)%s\n", h.name, h.leader_rank,
                          h.ranks, h.reported ? "" : absl::StrCat(": NO REPORT (", h.error, ")"));
    if (h.clock_known) absl::StrAppendFormat(&out, "    clock offset %+.1f ms\n", h.clock_offset_ms);
    for (const LocalCheck& c : h.checks) {
      absl::StrAppendFormat(&out, "    %-3s %s: %s\n", c.ok ? "ok" : "BAD", c.name, c.value);
    }
  }
  return out;
}

}  // namespace braid::health
