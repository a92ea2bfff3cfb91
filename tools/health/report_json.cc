#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tools/health/report.h"

namespace braid::health {
namespace {

std::string Quote(absl::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20) absl::StrAppendFormat(&out, "\\u%04x", c);
        else out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// Finite numbers only: JSON has no NaN or infinity.
std::string Number(double value) {
  return std::isfinite(value) ? absl::StrFormat("%.6g", value) : "null";
}

const char* Bool(bool b) { return b ? "true" : "false"; }

}  // namespace

std::string JsonReport(const FabricMeasurements& fabric, const HealthVerdict& verdict,
                       const Thresholds& th) {
  std::string out = "{\n";
  absl::StrAppend(&out, "  \"schema\": \"braid-health/1\",\n");
  absl::StrAppend(&out, "  \"status\": ", Quote(SeverityName(verdict.overall)), ",\n");
  absl::StrAppend(&out, "  \"exit_status\": ", verdict.exit_status(), ",\n");
  absl::StrAppend(&out, "  \"transport\": ", Quote(fabric.transport), ",\n");
  absl::StrAppend(&out, "  \"nranks\": ", fabric.nranks, ",\n");
  absl::StrAppend(&out, "  \"fatal\": ", Quote(fabric.fatal), ",\n");
  absl::StrAppend(&out, "  \"thresholds\": {\"bandwidth_fraction\": ", Number(th.bandwidth_fraction),
                  ", \"latency_factor\": ", Number(th.latency_factor),
                  ", \"max_clock_skew_ms\": ", Number(th.max_clock_skew_ms), "},\n");
  absl::StrAppend(&out, "  \"median_gbps\": ", Number(verdict.median_gbps), ",\n");
  absl::StrAppend(&out, "  \"median_latency_us\": ", Number(verdict.median_latency_us), ",\n");

  out += "  \"findings\": [";
  for (size_t i = 0; i < verdict.findings.size(); ++i) {
    const Finding& f = verdict.findings[i];
    absl::StrAppend(&out, i ? ",\n    " : "\n    ", "{\"severity\": ", Quote(SeverityName(f.severity)),
                    ", \"kind\": ", Quote(f.kind), ", \"subject\": ", Quote(f.subject),
                    ", \"detail\": ", Quote(f.detail), "}");
  }
  out += verdict.findings.empty() ? "],\n" : "\n  ],\n";

  out += "  \"hosts\": [";
  for (size_t i = 0; i < fabric.hosts.size(); ++i) {
    const HostRecord& h = fabric.hosts[i];
    absl::StrAppend(&out, i ? ",\n    " : "\n    ", "{\"index\": ", i, ", \"name\": ", Quote(h.name),
                    ", \"leader_rank\": ", h.leader_rank, ", \"ranks\": ", h.ranks,
                    ", \"reported\": ", Bool(h.reported), ", \"error\": ", Quote(h.error),
                    ", \"clock_offset_ms\": ",
                    h.clock_known ? Number(h.clock_offset_ms) : std::string("null"),
                    ", \"checks\": [");
    for (size_t c = 0; c < h.checks.size(); ++c) {
      const LocalCheck& check = h.checks[c];
      absl::StrAppend(&out, c ? ", " : "", "{\"name\": ", Quote(check.name), ", \"value\": ",
                      Quote(check.value), ", \"ok\": ", Bool(check.ok), ", \"remedy\": ",
                      Quote(check.remedy), "}");
    }
    out += "]}";
  }
  out += fabric.hosts.empty() ? "],\n" : "\n  ],\n";

  out += "  \"pairs\": [";
  for (size_t i = 0; i < fabric.pairs.size(); ++i) {
    const PairRecord& p = fabric.pairs[i];
    absl::StrAppend(&out, i ? ",\n    " : "\n    ", "{\"a\": ", p.a, ", \"b\": ", p.b,
                    ", \"measured\": ", Bool(p.measured), ", \"ok\": ", Bool(p.ok),
                    ", \"gbps_ab\": ", Number(p.gbps_ab), ", \"gbps_ba\": ", Number(p.gbps_ba),
                    ", \"latency_us\": ", Number(p.latency_us), ", \"error\": ", Quote(p.error),
                    "}");
  }
  out += fabric.pairs.empty() ? "],\n" : "\n  ],\n";

  out += "  \"allreduce\": [";
  for (size_t i = 0; i < fabric.allreduce.size(); ++i) {
    const AllReduceRecord& r = fabric.allreduce[i];
    absl::StrAppend(&out, i ? ",\n    " : "\n    ", "{\"bytes\": ", r.bytes, ", \"ok\": ",
                    Bool(r.ok), ", \"time_us\": ", Number(r.time_us), ", \"busbw_gbps\": ",
                    Number(r.busbw_gbps), ", \"error\": ", Quote(r.error), "}");
  }
  out += fabric.allreduce.empty() ? "]\n" : "\n  ]\n";
  out += "}\n";
  return out;
}

}  // namespace braid::health
