// Where the selector's link model comes from: a tuning file (BRAID_TUNING_FILE), or a short
// measurement at communicator creation whose results every rank agrees on (an AllReduce max),
// so every rank's selector sees the same numbers and picks the same algorithms.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "collectives/algorithms.h"
#include "collectives/context.h"

namespace braid {

// Parses a tuning file: "key value" lines, '#' comments. Keys: latency_us, overhead_us,
// bandwidth_gbytes (GB/s = 1e9 bytes per second). Unknown keys are errors.
absl::StatusOr<LinkModel> ParseTuningFile(absl::string_view text, absl::string_view path);
absl::StatusOr<LinkModel> LoadTuningFile(const std::string& path);

// Ping-pongs between rank pairs (2i, 2i+1): 8-byte round trips (latency + overhead), a burst
// of 8-byte messages (overhead) and 256 KiB messages (bandwidth), then agrees on the worst of
// every pair's numbers. A collective: every rank calls it at the same point.
absl::StatusOr<LinkModel> MeasureLinkModel(const CollectiveContext& ctx);

std::string DescribeLinkModel(const LinkModel& link);

}  // namespace braid
