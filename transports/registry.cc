// The transport registry: one line per transport. ChooseTransport applies BRAID_TRANSPORT.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/log.h"
#include "core/status.h"
#include "transports/tcp/tcp_transport.h"
#include "transports/transport.h"
#ifdef BRAID_HAVE_VERBS
#include "transports/verbs/verbs_transport.h"
#endif

namespace braid {

const std::vector<TransportEntry>& TransportRegistry() {
  static const std::vector<TransportEntry> registry = {
      // name, preference (higher wins), probe, create
      {"tcp", 10, &ProbeTcpTransport,
       [](const TransportContext& c) { return CreateTcpTransport(c); }},
#ifdef BRAID_HAVE_VERBS
      {"verbs", 30, &ProbeVerbsTransport, [](const TransportContext& c) { return CreateVerbsTransport(c); }},
#endif
  };
  return registry;
}

absl::StatusOr<const TransportEntry*> ChooseTransport(const Config& config) {
  const auto& registry = TransportRegistry();
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
      return &entry;
    }
    return MakeError(absl::StatusCode::kInvalidArgument,
                     absl::StrCat("BRAID_TRANSPORT=", config.transport), "unknown transport",
                     absl::StrCat("use one of: ", absl::StrJoin(names, ", ")));
  }
  const TransportEntry* best = nullptr;
  std::vector<std::string> reasons;
  for (const TransportEntry& entry : registry) {
    ProbeResult probe = entry.probe(config);
    if (!probe.usable) {
      reasons.push_back(absl::StrCat(entry.name, ": ", probe.reason));
      continue;
    }
    if (best == nullptr || entry.preference > best->preference) best = &entry;
  }
  // BRAID_DEBUG=INFO: the choice, and why every other transport lost.
  for (const TransportEntry& entry : registry) {
    if (best != nullptr && &entry != best && entry.preference < best->preference) {
      reasons.push_back(absl::StrCat(entry.name, ": usable but ", best->name, " is preferred"));
    }
  }
  if (best != nullptr) {
    BRAID_LOG(kInfo, "transport: chose ", best->name, " (highest preference usable); others: ",
              reasons.empty() ? std::string("none") : absl::StrJoin(reasons, "; "));
  }
  if (best == nullptr) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "choosing a transport",
                     absl::StrCat("no transport is usable here (", absl::StrJoin(reasons, "; "), ")"),
                     "see the reasons above; the tcp transport needs io_uring");
  }
  return best;
}

}  // namespace braid
