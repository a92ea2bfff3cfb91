#include "core/config.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
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
      // Verbs transport (InfiniBand / RoCE).
      {"BRAID_IB_HCA", "(first active port)",
       "RDMA devices/ports: names or prefixes with optional :port, ^ to exclude, = for exact.",
       [](absl::string_view v, Config& c) { c.ib_hca = std::string(v); return true; }},
      {"BRAID_IB_GID_INDEX", "(RoCEv2 IPv4 GID)",
       "GID table index for RoCE; unset picks a RoCE v2 GID of the data-path address (sysfs).",
       [](absl::string_view v, Config& c) {
         return absl::SimpleAtoi(v, &c.ib_gid_index) && c.ib_gid_index >= 0;
       }},
      {"BRAID_IB_TC", "0", "Traffic class of RoCE packets (DSCP << 2), e.g. 106 for DSCP 26.",
       [](absl::string_view v, Config& c) {
         return absl::SimpleAtoi(v, &c.ib_tc) && c.ib_tc >= 0 && c.ib_tc <= 255;
       }},
      {"BRAID_IB_SL", "0", "InfiniBand service level (0-15).",
       [](absl::string_view v, Config& c) {
         return absl::SimpleAtoi(v, &c.ib_sl) && c.ib_sl >= 0 && c.ib_sl <= 15;
       }},
      {"BRAID_IB_TIMEOUT", "18",
       "Verbs ACK timeout exponent (4.096 us * 2^value, 1-31) before a retransmission.",
       [](absl::string_view v, Config& c) {
         return absl::SimpleAtoi(v, &c.ib_timeout) && c.ib_timeout >= 1 && c.ib_timeout <= 31;
       }},
      {"BRAID_IB_RETRY_CNT", "7", "Verbs retransmissions (0-7) before a peer is unreachable.",
       [](absl::string_view v, Config& c) {
         return absl::SimpleAtoi(v, &c.ib_retry_cnt) && c.ib_retry_cnt >= 0 && c.ib_retry_cnt <= 7;
       }},
      {"BRAID_IB_QPS_PER_CONNECTION", "1",
       "Queue pairs per peer (1-16); large RDMA writes are striped across them.",
       [](absl::string_view v, Config& c) {
         return absl::SimpleAtoi(v, &c.ib_qps_per_connection) && c.ib_qps_per_connection >= 1 &&
                c.ib_qps_per_connection <= 16;
       }},
      {"BRAID_IB_REG_CACHE", "0",
       "Bytes of implicit registrations of user buffers kept for reuse (K/M/G); 0 registers per "
       "operation. Only safe if the application never frees and reuses those buffers.",
       [](absl::string_view v, Config& c) { return ParseBytes(v, &c.ib_reg_cache_bytes); }},
      {"BRAID_DEBUG", "WARN",
       "Log level: WARN, INFO (configuration and choices), TRACE (every collective call); "
       "add CHECK (e.g. INFO,CHECK) for an agreement round that compares every rank's call "
       "before each collective.",
       [](absl::string_view v, Config& c) {
         for (absl::string_view token : absl::StrSplit(v, ',')) {
           std::string upper = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(token));
           if (upper == "WARN") c.log_level = LogLevel::kWarn;
           else if (upper == "INFO") c.log_level = LogLevel::kInfo;
           else if (upper == "TRACE") c.log_level = LogLevel::kTrace;
           else if (upper == "CHECK") c.debug_check = true;
           else return false;
         }
         return true;
       }},
      {"BRAID_HEARTBEAT_TIMEOUT", "30",
       "Seconds a peer may stay silent while this rank waits on a collective before it is "
       "declared failed (stopped, hung or cut off); 0 disables heartbeats.",
       [](absl::string_view v, Config& c) {
         double seconds = 0;
         if (!absl::SimpleAtod(v, &seconds) || seconds < 0) return false;
         c.heartbeat_timeout = std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
         return true;
       }},
      // ofi (libfabric, AWS EFA) transport.
      {"BRAID_OFI_PROVIDER", "(FI_PROVIDER, else efa)",
       "libfabric provider for the ofi transport, e.g. efa, tcp (tcp;ofi_rxm) or shm.",
       [](absl::string_view v, Config& c) { c.ofi_provider = std::string(v); return true; }},
      {"BRAID_OFI_NICS", "(all of the provider's domains)",
       "NICs (libfabric domains) the ofi transport uses: a count, or a comma list of domain "
       "names (e.g. rdmap16s27-rdm,rdmap32s27-rdm).",
       [](absl::string_view v, Config& c) { c.ofi_nics = std::string(v); return true; }},
      {"BRAID_OFI_STRICT", "0",
       "ofi: register every buffer, bind MRs to endpoints and use provider keys even when the "
       "provider does not ask (EFA's rules, for testing on other providers).",
       [](absl::string_view v, Config& c) { return ParseBool(v, &c.ofi_strict); }},
      {"BRAID_OFI_MAX_SEGMENT", "(provider max_msg_size)",
       "ofi: largest single libfabric message (K/M/G suffixes, at least 8K); larger messages are "
       "split.",
       [](absl::string_view v, Config& c) {
         return ParseBytes(v, &c.ofi_max_segment) && c.ofi_max_segment >= 8192;
       }},
      {"BRAID_OFI_MIN_STRIPE", "256K",
       "ofi: messages larger than this are striped across the NICs shared with the peer.",
       [](absl::string_view v, Config& c) { return ParseBytes(v, &c.ofi_min_stripe_bytes); }},
      {"BRAID_SHM_CMA", "1",
       "shm transport: 1 lets receivers read large messages straight from the sender "
       "(process_vm_readv, one copy); 0 copies them through the shared ring.",
       [](absl::string_view v, Config& c) { return ParseBool(v, &c.shm_cma); }},
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
                      " BRAID_DEBUG=", LogLevelName(c.log_level), c.debug_check ? ",CHECK" : "",
                      " BRAID_HEARTBEAT_TIMEOUT=", c.heartbeat_timeout.count() / 1000.0,
                      " BRAID_OFI_PROVIDER=", c.ofi_provider, " BRAID_OFI_NICS=", c.ofi_nics,
                      " BRAID_OFI_STRICT=", c.ofi_strict ? 1 : 0,
                      " BRAID_OFI_MAX_SEGMENT=", c.ofi_max_segment,
                      " BRAID_OFI_MIN_STRIPE=", c.ofi_min_stripe_bytes,
                      " BRAID_SHM_CMA=", c.shm_cma ? 1 : 0,
                      " BRAID_IB_HCA=", c.ib_hca, " BRAID_IB_GID_INDEX=", c.ib_gid_index,
                      " BRAID_IB_TC=", c.ib_tc, " BRAID_IB_SL=", c.ib_sl,
                      " BRAID_IB_TIMEOUT=", c.ib_timeout, " BRAID_IB_RETRY_CNT=", c.ib_retry_cnt,
                      " BRAID_IB_QPS_PER_CONNECTION=", c.ib_qps_per_connection,
                      " BRAID_IB_REG_CACHE=", c.ib_reg_cache_bytes,
                      " BRAID_ALGO=", c.algo, " BRAID_TUNING_FILE=", c.tuning_file,
                      " BRAID_TUNE=", c.tune ? 1 : 0);
}

}  // namespace braid
