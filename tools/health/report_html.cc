#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tools/health/report.h"

namespace braid::health {
namespace {

std::string Escape(absl::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// A few flat colours rather than a gradient, so that a reader (and the screenshot test) can
// tell the classes apart at a glance.
constexpr const char* kHealthy = "#2e9e4f";
constexpr const char* kSlow = "#f08c00";
constexpr const char* kFailed = "#b2182b";
constexpr const char* kSelf = "#d0d0d0";
constexpr const char* kUnknown = "#ffffff";

struct Cell {
  const char* colour;
  std::string text;
  std::string tooltip;
};

}  // namespace

std::string HtmlHeatmap(const FabricMeasurements& fabric, const HealthVerdict& verdict,
                        const Thresholds& th) {
  const int n = static_cast<int>(fabric.hosts.size());
  auto name = [&](int h) { return fabric.hosts[static_cast<size_t>(h)].name; };
  std::vector<Cell> cells(static_cast<size_t>(n * n), Cell{kUnknown, "?", "not measured"});
  auto at = [&](int from, int to) -> Cell& { return cells[static_cast<size_t>(from * n + to)]; };
  for (int h = 0; h < n; ++h) at(h, h) = Cell{kSelf, "", name(h)};
  const double slow_below = th.bandwidth_fraction * verdict.median_gbps;
  for (const PairRecord& p : fabric.pairs) {
    if (!p.measured) continue;
    auto fill = [&](int from, int to, double gbps) {
      std::string route = absl::StrCat(name(from), " -> ", name(to), ": ");
      if (!p.ok) {
        at(from, to) = Cell{kFailed, "X", route + "FAILED: " + p.error};
        return;
      }
      at(from, to) = Cell{gbps < slow_below ? kSlow : kHealthy, absl::StrFormat("%.2f", gbps),
                          absl::StrFormat("%s%.3f GB/s, latency %.1f us", route, gbps,
                                          p.latency_us)};
    };
    fill(p.a, p.b, p.gbps_ab);
    fill(p.b, p.a, p.gbps_ba);
  }

  const int cell = 64, margin = 140, top = 60;
  const int width = margin + n * cell + 260, height = top + n * cell + 40;
  std::string svg = absl::StrFormat(
      "<svg id=\"heatmap\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
      "font-family=\"sans-serif\" font-size=\"13\">\n",
      width, height);
  absl::StrAppendFormat(&svg, "<text x=\"%d\" y=\"20\" font-weight=\"bold\">sender (row) -> "
                        "receiver (column), GB/s</text>\n", margin);
  for (int h = 0; h < n; ++h) {
    absl::StrAppendFormat(&svg, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n",
                          margin - 8, top + h * cell + cell / 2 + 5, Escape(name(h)));
    absl::StrAppendFormat(&svg, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
                          margin + h * cell + cell / 2, top - 8, Escape(name(h)));
  }
  for (int from = 0; from < n; ++from) {
    for (int to = 0; to < n; ++to) {
      const Cell& c = at(from, to);
      int x = margin + to * cell, y = top + from * cell;
      absl::StrAppendFormat(&svg, "<g class=\"cell\" data-from=\"%d\" data-to=\"%d\"><rect "
                            "x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" "
                            "stroke=\"#ffffff\" stroke-width=\"2\"><title>%s</title></rect>",
                            from, to, x, y, cell, cell, c.colour, Escape(c.tooltip));
      absl::StrAppendFormat(&svg, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" "
                            "fill=\"#000000\">%s</text></g>\n",
                            x + cell / 2, y + cell / 2 + 5, Escape(c.text));
    }
  }
  const int lx = margin + n * cell + 24;
  const std::pair<const char*, std::string> legend[] = {
      {kHealthy, absl::StrFormat(">= %.0f%% of median", th.bandwidth_fraction * 100)},
      {kSlow, absl::StrFormat("< %.0f%% of median (slow)", th.bandwidth_fraction * 100)},
      {kFailed, "failed"},
      {kUnknown, "not measured"}};
  int ly = top;
  for (const auto& [colour, text] : legend) {
    absl::StrAppendFormat(&svg, "<rect x=\"%d\" y=\"%d\" width=\"18\" height=\"18\" fill=\"%s\" "
                          "stroke=\"#888888\"/><text x=\"%d\" y=\"%d\">%s</text>\n",
                          lx, ly, colour, lx + 26, ly + 14, Escape(text));
    ly += 28;
  }
  svg += "</svg>\n";

  std::string findings;
  for (const Finding& f : verdict.findings) {
    absl::StrAppend(&findings, "<li class=\"", SeverityName(f.severity), "\"><b>",
                    Escape(f.subject), "</b> (", Escape(f.kind), "): ", Escape(f.detail),
                    "</li>\n");
  }
  if (findings.empty()) findings = "<li>No culprits: every host and link is within the thresholds.</li>\n";
  return absl::StrCat(
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>braid-health: ",
      SeverityName(verdict.overall), "</title>\n<style>body{font-family:sans-serif;margin:24px}"
      " li.failed{color:#b2182b} li.degraded{color:#a05a00}</style></head><body>\n",
      "<h1>braid-health: ", SeverityName(verdict.overall), "</h1>\n",
      absl::StrFormat("<p>%d hosts, %d ranks, transport %s. Median pair bandwidth %.3f GB/s, "
                      "median latency %.1f us.</p>\n",
                      n, fabric.nranks, Escape(fabric.transport), verdict.median_gbps,
                      verdict.median_latency_us),
      "<ul>\n", findings, "</ul>\n", svg, "</body></html>\n");
}

}  // namespace braid::health
