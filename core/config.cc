#include "core/config.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/status.h"

namespace braid {
namespace {

// Parses "123", "64K", "4M", "1G" (binary multiples).
bool ParseBytes(absl::string_view text, size_t* out) {
  if (text.empty()) return false;
  uint64_t multiplier = 1;
  switch (absl::ascii_toupper(text.back())) {
    case 'K': multiplier = 1ull << 10; break;
    case 'M': multiplier = 1ull << 20; break;
    case 'G': multiplier = 1ull << 30; break;
    default: break;
  }
  if (multiplier != 1) text.remove_suffix(1);
  uint64_t value = 0;
  if (!absl::SimpleAtoi(text, &value)) return false;
  *out = static_cast<size_t>(value * multiplier);
  return true;
}

bool ParseBool(absl::string_view text, bool* out) {
  std::string lower = absl::AsciiStrToLower(text);
  if (lower == "1" || lower == "true" || lower == "yes" || lower == "on") return *out = true, true;
  if (lower == "0" || lower == "false" || lower == "no" || lower == "off") return *out = false, true;
  return false;
}

absl::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kWarn: return "WARN";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kTrace: return "TRACE";
  }
  return "WARN";
}

}  // namespace

const std::vector<ConfigVariable>& ConfigTable() {
  static const std::vector<ConfigVariable> table = {
      {"BRAID_TRANSPORT", "(best usable)",
       "Force a transport by name (tcp). A forced transport that cannot run is an error.",
       [](absl::string_view v, Config& c) { c.transport = absl::AsciiStrToLower(v); return true; }},
      {"BRAID_SOCKET_IFNAME", "(route to root)",
       "Interfaces for sockets: prefixes, ^ to exclude, = for exact (like NCCL_SOCKET_IFNAME).",
       [](absl::string_view v, Config& c) { c.socket_ifname = std::string(v); return true; }},
      {"BRAID_TIMEOUT", "300",
       "Seconds any blocking wait may take before it fails with a timeout error.",
       [](absl::string_view v, Config& c) {
         double seconds = 0;
         if (!absl::SimpleAtod(v, &seconds) || seconds <= 0) return false;
         c.timeout = std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
         return true;
       }},
      {"BRAID_SPIN_US", "50, or 0 when ranks outnumber CPUs",
       "Microseconds the progress engine busy-polls before sleeping on the transport.",
       [](absl::string_view v, Config& c) {
         int us = 0;
         if (!absl::SimpleAtoi(v, &us) || us < 0) return false;
         c.spin = std::chrono::microseconds(us);
         return true;
       }},
      {"BRAID_CHUNK_SIZE", "(per algorithm)",
       "Pipeline chunk in bytes (K/M suffixes, at least 1K) for ring and chain collectives.",
       [](absl::string_view v, Config& c) {
         return ParseBytes(v, &c.chunk_bytes) && c.chunk_bytes >= 1024;
       }},
      {"BRAID_TCP_STREAMS", "2",
       "TCP connections per peer; large messages are striped across them.",
       [](absl::string_view v, Config& c) {
         return absl::SimpleAtoi(v, &c.tcp_streams) && c.tcp_streams >= 0 && c.tcp_streams <= 16;
       }},
      {"BRAID_TCP_MIN_STRIPE", "512K",
       "Messages larger than this are split across the TCP streams of a peer.",
       [](absl::string_view v, Config& c) { return ParseBytes(v, &c.tcp_min_stripe_bytes); }},
      {"BRAID_TCP_SEND_ZC", "0",
       "Reserved for io_uring zero-copy sends; accepted but not implemented yet (sends copy).",
       [](absl::string_view v, Config& c) { return ParseBool(v, &c.tcp_send_zc); }},
      {"BRAID_DEBUG", "WARN",
       "Log level: WARN, INFO (configuration and choices), TRACE (every collective call).",
       [](absl::string_view v, Config& c) {
         std::string upper = absl::AsciiStrToUpper(v);
         if (upper == "WARN") c.log_level = LogLevel::kWarn;
         else if (upper == "INFO") c.log_level = LogLevel::kInfo;
         else if (upper == "TRACE") c.log_level = LogLevel::kTrace;
         else return false;
         return true;
       }},
      // Algorithm selection (issue 6).
      {"BRAID_ALGO", "(cost model)",
       "Force algorithms: one name (ring, tree, ...) or collective:name pairs, e.g. "
       "allreduce:tree,allgather:bruck.",
       [](absl::string_view v, Config& c) { c.algo = std::string(v); return true; }},
      {"BRAID_TUNING_FILE", "(measure)",
       "File with the selector's link model (latency_us, overhead_us, bandwidth_gbytes lines).",
       [](absl::string_view v, Config& c) { c.tuning_file = std::string(v); return true; }},
      {"BRAID_TUNE", "1",
       "Measure latency and bandwidth between rank pairs at creation (0: use the defaults).",
       [](absl::string_view v, Config& c) { return ParseBool(v, &c.tune); }},
  };
  return table;
}

absl::StatusOr<Config> ParseConfig(const std::function<const char*(const char*)>& getenv_fn) {
  Config config;
  for (const ConfigVariable& variable : ConfigTable()) {
    std::string name(variable.name);
    const char* value = getenv_fn ? getenv_fn(name.c_str()) : std::getenv(name.c_str());
    if (value == nullptr || *value == '\0') continue;
    if (!variable.apply(value, config)) {
      return MakeError(absl::StatusCode::kInvalidArgument, "invalid environment variable",
                       absl::StrCat(name, "=\"", value, "\" is not valid (", variable.meaning,
                                    ")"),
                       absl::StrCat("unset ", name, " or see docs/tuning.md"));
    }
  }
  return config;
}

std::chrono::microseconds SpinForHost(int local_ranks, int cpus) {
  return std::chrono::microseconds(local_ranks > cpus ? 0 : 50);
}

std::string DescribeConfig(const Config& c) {
  return absl::StrCat("BRAID_TRANSPORT=", c.transport.empty() ? "(auto)" : c.transport,
                      " BRAID_SOCKET_IFNAME=", c.socket_ifname,
                      " BRAID_TIMEOUT=", c.timeout.count() / 1000.0,
                      " BRAID_SPIN_US=", c.spin.count(), " BRAID_CHUNK_SIZE=", c.chunk_bytes,
                      " BRAID_TCP_STREAMS=", c.tcp_streams,
                      " BRAID_TCP_MIN_STRIPE=", c.tcp_min_stripe_bytes,
                      " BRAID_TCP_SEND_ZC=", c.tcp_send_zc ? 1 : 0,
                      " BRAID_DEBUG=", LogLevelName(c.log_level),
                      " BRAID_ALGO=", c.algo, " BRAID_TUNING_FILE=", c.tuning_file,
                      " BRAID_TUNE=", c.tune ? 1 : 0);
}

}  // namespace braid
