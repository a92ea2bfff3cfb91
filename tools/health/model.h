// What braid-health measures and concludes, independent of how it was measured (so the
// analysis and the reports are tested with synthetic fabrics).
#pragma once

#include <string>
#include <vector>

namespace braid::health {

// One local check on one host, e.g. {"RLIMIT_MEMLOCK", "64 KiB", false, "ulimit -l unlimited"}.
struct LocalCheck {
  std::string name;
  std::string value;
  bool ok = true;
  std::string remedy;  // empty when ok.
};

struct HostRecord {
  std::string name;
  int leader_rank = -1;      // the rank that measured for this host.
  int ranks = 0;             // ranks of the job on this host.
  bool reported = false;     // its report reached host 0.
  std::string error;         // why it did not report (when !reported).
  double clock_offset_ms = 0;  // its clock minus host 0's, estimated over their pair.
  bool clock_known = false;
  std::vector<LocalCheck> checks;
};

// One pair of hosts, measured in both directions (a < b, host indices).
struct PairRecord {
  int a = 0;
  int b = 0;
  bool measured = false;     // false: no report covers this pair (e.g. both ends silent).
  bool ok = false;           // false: the transport failed; `error` says how.
  double gbps_ab = 0;        // GB/s (1e9 bytes per second) from a to b.
  double gbps_ba = 0;
  double latency_us = 0;     // half the round trip of a small message.
  std::string error;
};

struct AllReduceRecord {
  size_t bytes = 0;
  bool ok = false;
  double time_us = 0;
  double busbw_gbps = 0;     // nccl-tests' bus bandwidth: algbw * 2(n-1)/n.
  std::string error;
};

struct Thresholds {
  double bandwidth_fraction = 0.8;  // a direction below this fraction of the median is slow.
  double latency_factor = 2.0;      // a host whose latency exceeds median * this straggles.
  double max_clock_skew_ms = 1000;  // larger offsets from host 0 are reported.
};

struct FabricMeasurements {
  std::string transport;
  int nranks = 0;
  std::vector<HostRecord> hosts;
  std::vector<PairRecord> pairs;
  std::vector<AllReduceRecord> allreduce;
  std::string fatal;  // set when the run could not even start (e.g. bootstrap failed).
};

enum class Severity { kInfo = 0, kDegraded = 1, kFailed = 2 };

struct Finding {
  Severity severity = Severity::kInfo;
  std::string kind;     // failed-host, failed-link, slow-host, slow-link, straggler, clock, local
  std::string subject;  // "h3" or "h1 -> h2" or "h1 <-> h2"
  std::string detail;   // one sentence with the numbers and what to do.
};

struct HealthVerdict {
  Severity overall = Severity::kInfo;
  double median_gbps = 0;
  double median_latency_us = 0;
  std::vector<Finding> findings;  // culprits first: failed, then degraded, then info.
  int exit_status() const { return static_cast<int>(overall); }
};

const char* SeverityName(Severity severity);  // "healthy", "degraded", "failed"

}  // namespace braid::health
