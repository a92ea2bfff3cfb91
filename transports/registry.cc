// The transport registry: one line per transport. ChooseTransport applies BRAID_TRANSPORT and,
// when it is unset, the host layout (shared memory within a host, the network between hosts).
#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/log.h"
#include "core/status.h"
#include "transports/ofi/ofi_transport.h"
#include "transports/hybrid/hybrid_transport.h"
#include "transports/shm/shm_transport.h"
#include "transports/tcp/tcp_transport.h"
#include "transports/transport.h"
#ifdef BRAID_HAVE_VERBS
#include "transports/verbs/verbs_transport.h"
#endif

namespace braid {
namespace {

// The best usable transport that reaches other hosts (preference >= 0), or null.
const TransportEntry* BestNetworkTransport(const Config& config, std::vector<std::string>* reasons) {
  const TransportEntry* best = nullptr;
  for (const TransportEntry& entry : TransportRegistry()) {
    if (entry.preference < 0) continue;
    ProbeResult probe = entry.probe(config);
    if (!probe.usable) {
      if (reasons) reasons->push_back(absl::StrCat(entry.name, ": ", probe.reason));
      continue;
    }
    if (best == nullptr || entry.preference > best->preference) best = &entry;
  }
  // For BRAID_DEBUG=INFO: why every usable transport but the best lost.
  for (const TransportEntry& entry : TransportRegistry()) {
    if (reasons && best && entry.preference >= 0 && &entry != best &&
        entry.probe(config).usable) {
      reasons->push_back(absl::StrCat(entry.name, ": usable but ", best->name, " is preferred"));
    }
  }
  return best;
}

ProbeResult ProbeHybridTransport(const Config& config) {
  ProbeResult shm = ProbeShmTransport(config);
  if (!shm.usable) return shm;
  std::vector<std::string> reasons;
  const TransportEntry* network = BestNetworkTransport(config, &reasons);
  if (network == nullptr) {
    return {false, absl::StrCat("no network transport is usable (", absl::StrJoin(reasons, "; "), ")")};
  }
  return {true, absl::StrCat("shm within hosts, ", network->name, " between hosts")};
}

absl::StatusOr<std::unique_ptr<Transport>> CreateHybrid(const TransportContext& context) {
  const TransportEntry* network = BestNetworkTransport(context.config, nullptr);
  if (network == nullptr) return absl::FailedPreconditionError("hybrid transport: no network transport");
  BRAID_ASSIGN_OR_RETURN(auto local, CreateShmTransport(context));
  BRAID_ASSIGN_OR_RETURN(auto remote, network->create(context));
  return CreateHybridTransport(context, std::move(local), std::move(remote));
}

const TransportEntry* Find(absl::string_view name) {
  for (const TransportEntry& entry : TransportRegistry()) {
    if (entry.name == name) return &entry;
  }
  return nullptr;
}

}  // namespace

const std::vector<TransportEntry>& TransportRegistry() {
  static const std::vector<TransportEntry> registry = {
      // name, preference (higher wins; negative = chosen from the host layout only), probe, create
      {"tcp", 10, &ProbeTcpTransport,
       [](const TransportContext& c) { return CreateTcpTransport(c); }},
      {"ofi", 20, &ProbeOfiTransport, &CreateOfiTransport},
      {"shm", -1, &ProbeShmTransport, &CreateShmTransport},
      {"hybrid", -1, &ProbeHybridTransport, &CreateHybrid},
#ifdef BRAID_HAVE_VERBS
      {"verbs", 30, &ProbeVerbsTransport, [](const TransportContext& c) { return CreateVerbsTransport(c); }},
#endif
  };
  return registry;
}

absl::StatusOr<const TransportEntry*> ChooseTransport(const Config& config,
                                                      std::span<const std::string> hosts) {
  const auto& registry = TransportRegistry();
  std::map<std::string, int> per_host;
  for (const std::string& host : hosts) ++per_host[host];
  int most_per_host = 0;
  for (const auto& [host, n] : per_host) most_per_host = std::max(most_per_host, n);
  if (!config.transport.empty()) {
    std::vector<std::string> names;
    for (const TransportEntry& entry : registry) {
      names.push_back(entry.name);
      if (entry.name != config.transport) continue;
      ProbeResult probe = entry.probe(config);
      if (!probe.usable) {
        return MakeError(absl::StatusCode::kFailedPrecondition,
                         absl::StrCat("BRAID_TRANSPORT=", config.transport),
                         absl::StrCat("the transport cannot run here: ", probe.reason),
                         "fix the cause above, or unset BRAID_TRANSPORT to let Braid pick a "
                         "usable transport");
      }
      if (entry.name == "shm" && per_host.size() > 1) {
        std::vector<std::string> layout;
        for (const auto& [host, n] : per_host) layout.push_back(absl::StrCat(host, ": ", n));
        return MakeError(absl::StatusCode::kFailedPrecondition, "BRAID_TRANSPORT=shm",
                         absl::StrCat("the ranks are on ", per_host.size(), " hosts (",
                                      absl::StrJoin(layout, ", "),
                                      " ranks) and shared memory only connects one host"),
                         "unset BRAID_TRANSPORT (shm within hosts, the network between them) or "
                         "check BRAID_HOSTNAME");
      }
      BRAID_LOG(kInfo, "transport ", entry.name, ": forced by BRAID_TRANSPORT");
      return &entry;
    }
    return MakeError(absl::StatusCode::kInvalidArgument,
                     absl::StrCat("BRAID_TRANSPORT=", config.transport), "unknown transport",
                     absl::StrCat("use one of: ", absl::StrJoin(names, ", ")));
  }
  std::vector<std::string> reasons;
  const TransportEntry* network = BestNetworkTransport(config, &reasons);
  if (!hosts.empty() && most_per_host > 1) {
    const TransportEntry* shm = Find("shm");
    ProbeResult probe = shm->probe(config);
    if (probe.usable && per_host.size() == 1) {
      BRAID_LOG(kInfo, "transport shm: all ", hosts.size(), " ranks are on host ",
                per_host.begin()->first, " (shared memory is faster than any network "
                "transport; BRAID_TRANSPORT=tcp forces the network)");
      return shm;
    }
    if (probe.usable && network != nullptr) {
      BRAID_LOG(kInfo, "transport hybrid: ", hosts.size(), " ranks on ", per_host.size(),
                " hosts, up to ", most_per_host, " per host: shm within a host, ", network->name,
                " between hosts");
      return Find("hybrid");
    }
    if (!probe.usable) {
      BRAID_LOG(kInfo, "shared memory is not usable (", probe.reason, "): network only");
    }
  }
  if (network == nullptr) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "choosing a transport",
                     absl::StrCat("no transport is usable here (", absl::StrJoin(reasons, "; "), ")"),
                     "see the reasons above; the tcp transport needs io_uring");
  }
  BRAID_LOG(kInfo, "transport ", network->name, ": ",
            hosts.empty() ? "host layout unknown"
                          : absl::StrCat("every rank is on its own host (", per_host.size(),
                                         " hosts)"),
            ", best usable network transport; others: ",
            reasons.empty() ? std::string("none") : absl::StrJoin(reasons, "; "));
  return network;
}

}  // namespace braid
