// braid_sim: predicted collective times on the simulated fabric, per algorithm, rank count and
// size, as CSV (for perf/sim_sweep.py) with the cost model's prediction and choice alongside.
//   braid_sim --collective allreduce --ranks 16,256 --min 8 --max 256M --factor 4
//             [--algo ring,tree | all] [--latency-us 15 --overhead-us 5 --bandwidth-gbytes 1.25]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "collectives/algorithms.h"
#include "sim/scenario.h"

namespace {

using namespace braid;

size_t Bytes(const std::string& text) {
  size_t mult = 1;
  std::string digits = text;
  char last = text.empty() ? 0 : text.back();
  if (last == 'K' || last == 'k') mult = 1 << 10;
  if (last == 'M' || last == 'm') mult = 1 << 20;
  if (last == 'G' || last == 'g') mult = 1 << 30;
  if (mult != 1) digits.pop_back();
  return std::strtoull(digits.c_str(), nullptr, 10) * mult;
}

[[noreturn]] void Usage(const char* why) {
  std::fprintf(stderr,
               "braid_sim: %s\nusage: braid_sim [--collective allreduce|allgather|reducescatter|"
               "broadcast] [--ranks 16,256] [--min 8] [--max 256M] [--factor 4] [--algo all|"
               "auto|ring,...] [--latency-us X] [--overhead-us X] [--bandwidth-gbytes X]\n",
               why);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  Collective collective = Collective::kAllReduce;
  std::vector<int> ranks = {16};
  size_t min_bytes = 8, max_bytes = 1 << 20, factor = 4;
  std::string algos = "all";
  LinkModel link;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) Usage(("missing value for " + flag).c_str());
    std::string value = argv[++i];
    double number = 0;
    if (flag == "--collective") {
      bool found = false;
      for (int c = 0; c < kNumCollectives; ++c) {
        if (CollectiveName(static_cast<Collective>(c)) == value) {
          collective = static_cast<Collective>(c);
          found = true;
        }
      }
      if (!found) Usage("unknown collective");
    } else if (flag == "--ranks") {
      ranks.clear();
      for (absl::string_view r : absl::StrSplit(value, ',')) {
        int n = 0;
        if (!absl::SimpleAtoi(r, &n) || n < 1) Usage("bad --ranks");
        ranks.push_back(n);
      }
    } else if (flag == "--min") min_bytes = Bytes(value);
    else if (flag == "--max") max_bytes = Bytes(value);
    else if (flag == "--factor") factor = Bytes(value);
    else if (flag == "--algo") algos = value;
    else if (absl::SimpleAtod(value, &number) && number > 0) {
      if (flag == "--latency-us") link.latency_s = number * 1e-6;
      else if (flag == "--overhead-us") link.overhead_s = number * 1e-6;
      else if (flag == "--bandwidth-gbytes") link.per_byte_s = 1 / (number * 1e9);
      else Usage(("unknown flag " + flag).c_str());
    } else {
      Usage(("bad value for " + flag).c_str());
    }
  }
  if (factor < 2 || min_bytes < 1 || max_bytes < min_bytes) Usage("bad size range");
  std::vector<Algorithm> list;
  if (algos == "all") {
    list = AlgorithmsFor(collective);
    list.push_back(Algorithm::kAuto);
  } else {
    std::string spec;
    for (absl::string_view name : absl::StrSplit(algos, ',')) {
      auto parsed = ParseAlgorithmOverrides(absl::StrCat(CollectiveName(collective), ":", name));
      if (!parsed.ok()) Usage(std::string(parsed.status().message()).c_str());
      list.push_back(parsed->For(collective));
    }
  }
  sim::SimOptions options;
  options.link = link;
  Tuning tuning;
  tuning.link = link;
  std::printf("collective,ranks,bytes,algorithm,simulated_us,model_us,messages,selector_choice,chunk\n");
  for (int n : ranks) {
    for (size_t bytes = min_bytes; bytes <= max_bytes; bytes *= factor) {
      Choice chosen = Select(collective, n, bytes, tuning);
      for (Algorithm a : list) {
        Algorithm run = a == Algorithm::kAuto ? chosen.algorithm : a;
        Choice model = Predict(collective, run, n, bytes, link);
        sim::Outcome outcome = sim::RunTiming(collective, run, n, bytes, options);
        if (!outcome.status.ok()) {
          std::fprintf(stderr, "braid_sim: %s %s n=%d %zu B: %s\n",
                       std::string(CollectiveName(collective)).c_str(),
                       std::string(AlgorithmName(run)).c_str(), n, bytes,
                       std::string(outcome.status.message()).c_str());
          return 1;
        }
        std::printf("%s,%d,%zu,%s,%.3f,%.3f,%llu,%s,%zu\n",
                    std::string(CollectiveName(collective)).c_str(), n, bytes,
                    a == Algorithm::kAuto ? "auto" : std::string(AlgorithmName(a)).c_str(),
                    outcome.seconds * 1e6, model.predicted_s * 1e6,
                    static_cast<unsigned long long>(outcome.messages),
                    std::string(AlgorithmName(chosen.algorithm)).c_str(), model.chunk_bytes);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
