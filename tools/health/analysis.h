// Turns measurements into findings: failed hosts and links, slow hosts (slow in every pair they
// are in: a NIC, cable or host problem) versus slow links (one pair only: a path problem),
// stragglers, clock skew and local check failures.
#pragma once

#include "tools/health/model.h"

namespace braid::health {

HealthVerdict Analyze(const FabricMeasurements& fabric, const Thresholds& thresholds);

}  // namespace braid::health
