// The three faces of a health report: a summary for the terminal (culprits first, then the
// per-pair table), JSON for machines (schema in docs/fabric-health.md) and a self-contained
// HTML page with an SVG heatmap of the directed pair bandwidth matrix.
#pragma once

#include <string>

#include "tools/health/model.h"

namespace braid::health {

std::string TextReport(const FabricMeasurements& fabric, const HealthVerdict& verdict,
                       const Thresholds& thresholds);
std::string JsonReport(const FabricMeasurements& fabric, const HealthVerdict& verdict,
                       const Thresholds& thresholds);
std::string HtmlHeatmap(const FabricMeasurements& fabric, const HealthVerdict& verdict,
                        const Thresholds& thresholds);

}  // namespace braid::health
