// braid-health: one run across the allocation tells whether the fabric is healthy and names
// the host or link that is not. Every rank runs it (mpirun, srun, braidrun); one leader rank per
// host measures every other host in rounds; host 0's leader (rank 0) analyses and reports.
// Exit status: 0 healthy, 1 degraded, 2 failed.
#include <braid/braid.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tools/health/analysis.h"
#include "tools/health/host_report.h"
#include "tools/health/local_checks.h"
#include "tools/health/measure.h"
#include "tools/health/report.h"
#include "tools/health/run.h"

namespace {

using braid::health::RunOptions;

void Usage() {
  std::fprintf(stderr,
      "usage: braid-health [options]   (run on every rank: mpirun/srun/braidrun)\n"
      "  --transport NAME   transport to check (default: the one Braid picks)\n"
      "  --budget SECONDS   time budget for the whole check (default 120)\n"
      "  --bytes N[K|M]     message size of the pair bandwidth test (default 4M)\n"
      "  --iters N          bandwidth messages per sample (default 2; 3 samples, best counts)\n"
      "  --sizes LIST       AllReduce sizes, comma separated (default 1M,16M)\n"
      "  --threshold F      a link below F x the median bandwidth is slow (default 0.8)\n"
      "  --json FILE        write the JSON report (schema: docs/fabric-health.md)\n"
      "  --html FILE        write the heatmap as a self-contained HTML page\n"
      "  --quiet            no progress lines\n");
}

bool ParseSize(const std::string& text, size_t* out) {
  std::string digits = text;
  size_t scale = 1;
  if (!digits.empty() && (digits.back() == 'K' || digits.back() == 'k')) scale = 1024;
  if (!digits.empty() && (digits.back() == 'M' || digits.back() == 'm')) scale = 1024 * 1024;
  if (!digits.empty() && (digits.back() == 'G' || digits.back() == 'g')) scale = 1024u * 1024 * 1024;
  if (scale != 1) digits.pop_back();
  uint64_t value = 0;
  if (!absl::SimpleAtoi(digits, &value)) return false;
  *out = value * scale;
  return true;
}

// Returns -1 to continue, else the exit status.
int ParseArgs(int argc, char** argv, RunOptions* opt) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) return "";
      return argv[++i];
    };
    bool ok = true;
    if (arg == "--transport") opt->transport = value();
    else if (arg == "--budget") ok = absl::SimpleAtod(value(), &opt->budget_seconds) && opt->budget_seconds >= 10;
    else if (arg == "--bytes") ok = ParseSize(value(), &opt->pair.bytes) && opt->pair.bytes > 0;
    else if (arg == "--iters") ok = absl::SimpleAtoi(value(), &opt->pair.iters) && opt->pair.iters > 0;
    else if (arg == "--threshold") {
      ok = absl::SimpleAtod(value(), &opt->thresholds.bandwidth_fraction) &&
           opt->thresholds.bandwidth_fraction > 0 && opt->thresholds.bandwidth_fraction < 1;
    } else if (arg == "--sizes") {
      opt->allreduce_sizes.clear();
      for (absl::string_view part : absl::StrSplit(value(), ',')) {
        size_t bytes = 0;
        ok = ok && ParseSize(std::string(part), &bytes);
        opt->allreduce_sizes.push_back(bytes);
      }
    } else if (arg == "--json") opt->json_path = value();
    else if (arg == "--html") opt->html_path = value();
    else if (arg == "--quiet") opt->progress = false;
    else if (arg == "-h" || arg == "--help") { Usage(); return 0; }
    else ok = false;
    if (!ok) {
      std::fprintf(stderr, "braid-health: bad argument %s\n", arg.c_str());
      Usage();
      return 2;
    }
  }
  return -1;
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  RunOptions options;
  int status = ParseArgs(argc, argv, &options);
  if (status >= 0) return status;
  braid::health::RunResult result = braid::health::RunHealthCheck(options);
  if (!result.is_reporter) return 0;

  braid::health::HealthVerdict verdict =
      braid::health::Analyze(result.fabric, options.thresholds);
  std::fputs(braid::health::TextReport(result.fabric, verdict, options.thresholds).c_str(), stdout);
  std::fflush(stdout);
  int exit_status = verdict.exit_status();
  if (!options.json_path.empty() &&
      !WriteFile(options.json_path,
                 braid::health::JsonReport(result.fabric, verdict, options.thresholds))) {
    std::fprintf(stderr, "braid-health: cannot write %s\n", options.json_path.c_str());
  }
  if (!options.html_path.empty() &&
      !WriteFile(options.html_path,
                 braid::health::HtmlHeatmap(result.fabric, verdict, options.thresholds))) {
    std::fprintf(stderr, "braid-health: cannot write %s\n", options.html_path.c_str());
  }
  return exit_status;
}
