#include "tools/health/run.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tools/health/host_report.h"
#include "tools/health/local_checks.h"
#include "tools/health/schedule.h"

namespace braid::health {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kNameBytes = 64;
constexpr uint64_t kMaxReportBytes = 16u << 20;

std::string LastError(braidResult_t result) {
  return absl::StrCat(braidGetErrorString(result), ": ", braidGetLastError());
}

std::string MyHostName() {
  if (const char* forced = std::getenv("BRAID_HOSTNAME"); forced && *forced) return forced;
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "unknown-host";
  return name;
}

double SecondsUntil(Clock::time_point when) {
  return std::chrono::duration<double>(when - Clock::now()).count();
}

// Communicator creation reads its timeout from the environment; each pair gets what is left of
// its round.
void SetCreationTimeout(double seconds) {
  setenv("BRAID_TIMEOUT", absl::StrFormat("%.3f", std::max(1.0, seconds)).c_str(), 1);
}

// Sends (side 1) or receives (side 0) one length-prefixed, acknowledged message over a two-rank
// comm.
braidResult_t Exchange(braidComm_t comm, int side, std::vector<std::byte>* bytes) {
  uint64_t length = bytes->size();
  braidResult_t r = braidBroadcast(&length, &length, 1, braidUint64, 1, comm);
  if (r != braidSuccess) return r;
  if (side == 0) {
    if (length > kMaxReportBytes) return braidRemoteError;
    bytes->resize(length);
  }
  r = braidBroadcast(bytes->data(), bytes->data(), bytes->size(), braidUint8, 1, comm);
  if (r != braidSuccess) return r;
  // An acknowledgement from host 0: a sender's call returns once its bytes are queued, and a
  // sender that went on to tear the communicator down could lose them in flight.
  uint64_t ack = 0;
  return braidBroadcast(&ack, &ack, 1, braidUint64, 0, comm);
}

}  // namespace

RunResult RunHealthCheck(const RunOptions& opt) {
  RunResult result;
  FabricMeasurements& fabric = result.fabric;
  const Clock::time_point start = Clock::now();
  auto at = [&](double seconds) {
    return start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  };
  const Clock::time_point final_deadline = at(opt.budget_seconds - 1);
  if (!opt.transport.empty()) setenv("BRAID_TRANSPORT", opt.transport.c_str(), 1);
  // No link-model measurement at creation: pair communicators must form within their round,
  // and the tool measures links itself.
  setenv("BRAID_TUNE", "0", 1);
  SetCreationTimeout(opt.budget_seconds / 4);

  braidComm_t world = nullptr;
  braidResult_t r = braidCommInitFromEnv(&world);
  if (r != braidSuccess) {
    result.is_reporter = true;
    fabric.fatal = absl::StrCat("could not create the communicator of the job: ", LastError(r),
                                " (every rank must run braid-health; see docs/fabric-health.md)");
    return result;
  }
  int rank = 0, nranks = 1;
  const char* transport = "";
  braidCommUserRank(world, &rank);
  braidCommCount(world, &nranks);
  braidCommTransportName(world, &transport);
  braidCommSetTimeout(world, std::max(1.0, SecondsUntil(final_deadline)));
  result.is_reporter = rank == 0;
  fabric.transport = transport;
  fabric.nranks = nranks;
  auto progress = [&](const std::string& line) {
    if (opt.progress && rank == 0) std::fprintf(stderr, "braid-health: %s\n", line.c_str());
  };

  // Hosts in order of their first rank; the first rank of each host measures for it.
  std::string me = MyHostName().substr(0, kNameBytes - 1);
  std::vector<char> mine(kNameBytes, '\0'), names(kNameBytes * static_cast<size_t>(nranks));
  std::memcpy(mine.data(), me.data(), me.size());
  r = braidAllGather(mine.data(), names.data(), kNameBytes, braidUint8, world);
  if (r != braidSuccess) {
    fabric.fatal = absl::StrCat("exchanging host names failed: ", LastError(r));
    braidCommDestroy(world);
    return result;
  }
  std::vector<int> host_of(static_cast<size_t>(nranks));
  for (int rr = 0; rr < nranks; ++rr) {
    std::string name(&names[kNameBytes * static_cast<size_t>(rr)]);
    auto found = std::find_if(fabric.hosts.begin(), fabric.hosts.end(),
                              [&](const HostRecord& h) { return h.name == name; });
    if (found == fabric.hosts.end()) {
      HostRecord host;
      host.name = name;
      host.leader_rank = rr;
      fabric.hosts.push_back(host);
      found = fabric.hosts.end() - 1;
    }
    ++found->ranks;
    host_of[static_cast<size_t>(rr)] = static_cast<int>(found - fabric.hosts.begin());
  }
  const int nh = static_cast<int>(fabric.hosts.size());
  const int my_host = host_of[static_cast<size_t>(rank)];
  const bool leader = fabric.hosts[static_cast<size_t>(my_host)].leader_rank == rank;

  // One rendezvous per pair, hosted by the lower host's leader; ids travel once over the world.
  std::vector<braidUniqueId> my_ids(static_cast<size_t>(nh));
  std::memset(my_ids.data(), 0, my_ids.size() * sizeof(braidUniqueId));
  std::string id_error;
  if (leader) {
    SetCreationTimeout(opt.budget_seconds);
    for (int j = my_host + 1; j < nh; ++j) {
      if (braidGetUniqueId(&my_ids[static_cast<size_t>(j)]) != braidSuccess && id_error.empty()) {
        id_error = braidGetLastError();
      }
    }
  }
  std::vector<braidUniqueId> all_ids(my_ids.size() * static_cast<size_t>(nranks));
  r = braidAllGather(my_ids.data(), all_ids.data(), my_ids.size() * sizeof(braidUniqueId),
                     braidUint8, world);
  if (r != braidSuccess) {
    fabric.fatal = absl::StrCat("exchanging pair rendezvous ids failed: ", LastError(r));
    braidCommDestroy(world);
    return result;
  }
  auto pair_id = [&](int a, int b) {
    int owner = fabric.hosts[static_cast<size_t>(a)].leader_rank;
    return all_ids[static_cast<size_t>(owner) * static_cast<size_t>(nh) + static_cast<size_t>(b)];
  };

  const auto rounds = PairRounds(nh);
  const double reserve = std::max(8.0, opt.budget_seconds * 0.25);
  const double slot = (opt.budget_seconds - reserve) / std::max<size_t>(1, rounds.size());
  const Clock::time_point reports_deadline = at(opt.budget_seconds - reserve / 2);
  progress(absl::StrFormat("%d ranks on %d hosts over %s: %zu rounds of pair tests, %.1f s each "
                           "at most", nranks, nh, transport, rounds.size(), slot));

  if (leader) {
    std::vector<LocalCheck> checks = RunLocalChecks(transport);
    std::vector<PairRecord> my_pairs;
    std::map<int, braidComm_t> report_comms;  // host 0: one per other host; others: to host 0.
    for (size_t round = 0; round < rounds.size(); ++round) {
      const Clock::time_point round_deadline = at(slot * static_cast<double>(round + 1));
      auto it = std::find_if(rounds[round].begin(), rounds[round].end(), [&](const HostPair& p) {
        return p.first == my_host || p.second == my_host;
      });
      progress(absl::StrFormat("round %zu/%zu", round + 1, rounds.size()));
      if (it == rounds[round].end()) continue;  // resting this round.
      const auto [a, b] = *it;
      const int side = my_host == a ? 0 : 1;
      const int other = side == 0 ? b : a;
      const HostRecord& peer = fabric.hosts[static_cast<size_t>(other)];
      SetCreationTimeout(SecondsUntil(round_deadline));
      braidComm_t pair = nullptr;
      r = braidCommInitRank(&pair, 2, pair_id(a, b), side);
      if (r != braidSuccess) {
        PairRecord failed;
        failed.a = a;
        failed.b = b;
        failed.measured = true;
        failed.error = absl::StrCat("could not connect ", fabric.hosts[static_cast<size_t>(my_host)].name,
                                    " with ", peer.name, " (rank ", peer.leader_rank, "): ",
                                    LastError(r), id_error.empty() ? "" : " [" + id_error + "]");
        my_pairs.push_back(failed);
        continue;
      }
      braidCommSetTimeout(pair, std::max(1.0, SecondsUntil(round_deadline)));
      PairOutcome outcome = MeasurePair(pair, side, a, b, opt.pair);
      my_pairs.push_back(outcome.record);
      if (my_host == 0 && outcome.clock_known) {
        fabric.hosts[static_cast<size_t>(other)].clock_offset_ms = outcome.peer_clock_offset_ms;
        fabric.hosts[static_cast<size_t>(other)].clock_known = true;
      }
      if (a == 0 && outcome.record.ok) {
        report_comms[other] = pair;
      } else {
        braidCommDestroy(pair);
      }
    }

    if (my_host != 0) {
      auto link = report_comms.find(0);
      if (link != report_comms.end()) {
        braidCommSetTimeout(link->second, std::max(1.0, SecondsUntil(reports_deadline)));
        std::vector<std::byte> bytes = EncodeHostReport(HostReport{checks, my_pairs});
        Exchange(link->second, 1, &bytes);  // if host 0 is gone, nobody is left to tell.
        braidCommDestroy(link->second);
      }
    } else {
      progress("collecting reports");
      HostRecord& self = fabric.hosts[0];
      self.reported = true;
      self.checks = checks;
      self.clock_known = true;
      // Pair records by (a, b): the lower host's view wins, the higher's fills in.
      std::map<std::pair<int, int>, PairRecord> from_a, from_b;
      for (const PairRecord& p : my_pairs) from_a[{p.a, p.b}] = p;
      for (int h = 1; h < nh; ++h) {
        HostRecord& host = fabric.hosts[static_cast<size_t>(h)];
        auto link = report_comms.find(h);
        if (link == report_comms.end()) {
          auto own = from_a.find({0, h});
          host.error = own != from_a.end() ? own->second.error : "no connection to host 0";
          continue;
        }
        braidCommSetTimeout(link->second, std::max(1.0, SecondsUntil(reports_deadline)));
        std::vector<std::byte> bytes;
        r = Exchange(link->second, 0, &bytes);
        braidCommDestroy(link->second);
        if (r != braidSuccess) {
          host.error = absl::StrCat("its report did not arrive: ", LastError(r));
          continue;
        }
        auto report = DecodeHostReport(bytes, nh);
        if (!report.ok()) {
          host.error = std::string(report.status().message());
          continue;
        }
        host.reported = true;
        host.checks = report->checks;
        for (const PairRecord& p : report->pairs) {
          if (p.a == h) from_a[{p.a, p.b}] = p;
          else if (p.b == h) from_b[{p.a, p.b}] = p;
        }
      }
      for (const auto& round : rounds) {
        for (const HostPair& p : round) {
          auto a_view = from_a.find(p);
          auto b_view = from_b.find(p);
          if (a_view != from_a.end()) fabric.pairs.push_back(a_view->second);
          else if (b_view != from_b.end()) fabric.pairs.push_back(b_view->second);
          else {
            PairRecord missing;
            missing.a = p.first;
            missing.b = p.second;
            fabric.pairs.push_back(missing);
          }
        }
      }
      std::sort(fabric.pairs.begin(), fabric.pairs.end(), [](const PairRecord& x, const PairRecord& y) {
        return std::make_pair(x.a, x.b) < std::make_pair(y.a, y.b);
      });
    }
  }

  progress("AllReduce over all ranks");
  braidCommSetTimeout(world, std::max(1.0, SecondsUntil(final_deadline)));
  fabric.allreduce = MeasureAllReduce(world, nranks, opt.allreduce_sizes, opt.allreduce_iters);
  braidCommDestroy(world);
  return result;
}

}  // namespace braid::health
