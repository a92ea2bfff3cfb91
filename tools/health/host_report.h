// What a host's leader sends host 0 at the end: its local checks and the pairs it measured.
// Host 0 decodes bytes from the network, so the decoder checks every length and count.
#pragma once

#include <cstddef>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/health/model.h"

namespace braid::health {

struct HostReport {
  std::vector<LocalCheck> checks;
  std::vector<PairRecord> pairs;  // pairs this host took part in, as it saw them.
};

std::vector<std::byte> EncodeHostReport(const HostReport& report);
// `hosts` bounds the host indices a pair may name.
absl::StatusOr<HostReport> DecodeHostReport(const std::vector<std::byte>& bytes, int hosts);

}  // namespace braid::health
