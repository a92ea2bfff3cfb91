// The one table of BRAID_* environment variables: parsed once per communicator, validated,
// printed at BRAID_DEBUG=INFO and documented in docs/tuning.md.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"

namespace braid {

enum class LogLevel { kWarn = 0, kInfo = 1, kTrace = 2 };

struct Config {
  std::string transport;              // BRAID_TRANSPORT: "" = best usable; else forced.
  std::string socket_ifname;          // BRAID_SOCKET_IFNAME: interface (prefix) for sockets.
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};  // BRAID_TIMEOUT (seconds).
  // BRAID_SPIN_US: busy-poll before sleeping; negative = auto (SpinForHost).
  std::chrono::microseconds spin{-1};
  size_t chunk_bytes = 0;              // BRAID_CHUNK_SIZE: 0 = algorithm's default.
  int tcp_streams = 0;                 // BRAID_TCP_STREAMS: sockets per peer, 0 = default (2).
  size_t tcp_min_stripe_bytes = 512 * 1024;  // BRAID_TCP_MIN_STRIPE: split only above this.
  bool tcp_send_zc = false;            // BRAID_TCP_SEND_ZC: reserved (zero-copy sends).
  LogLevel log_level = LogLevel::kWarn;  // BRAID_DEBUG: WARN, INFO, TRACE.
  bool debug_check = false;  // BRAID_DEBUG's CHECK token: an agreement round per collective.
  // BRAID_HEARTBEAT_TIMEOUT (seconds; 0 = off): a peer silent this long while this rank waits
  // on a collective is declared failed. Heartbeats go out every timeout / 6.
  std::chrono::milliseconds heartbeat_timeout{std::chrono::seconds(30)};
  // ofi (libfabric) transport.
  std::string ofi_provider;            // BRAID_OFI_PROVIDER: "" = FI_PROVIDER, else efa first.
  std::string ofi_nics;                // BRAID_OFI_NICS: count or comma list of domains.
  bool ofi_strict = false;             // BRAID_OFI_STRICT: act as if EFA's mr_mode bits applied.
  size_t ofi_max_segment = 0;          // BRAID_OFI_MAX_SEGMENT: 0 = provider's max_msg_size.
  size_t ofi_min_stripe_bytes = 256 * 1024;  // BRAID_OFI_MIN_STRIPE: stripe over NICs above.
  bool shm_cma = true;                 // BRAID_SHM_CMA: large shm messages by reference.
  // Verbs transport (InfiniBand / RoCE), see docs/transports.md.
  std::string ib_hca;                  // BRAID_IB_HCA: NCCL_IB_HCA syntax; "" = first active.
  int ib_gid_index = -1;               // BRAID_IB_GID_INDEX: -1 = RoCEv2 GID chosen from sysfs.
  int ib_tc = 0;                       // BRAID_IB_TC: traffic class (RoCE DSCP << 2).
  int ib_sl = 0;                       // BRAID_IB_SL: service level.
  int ib_timeout = 18;                 // BRAID_IB_TIMEOUT: ACK timeout, 4.096 us * 2^value.
  int ib_retry_cnt = 7;                // BRAID_IB_RETRY_CNT: retransmissions before failing.
  int ib_qps_per_connection = 1;       // BRAID_IB_QPS_PER_CONNECTION: large writes stripe.
  size_t ib_reg_cache_bytes = 0;       // BRAID_IB_REG_CACHE: keep implicit registrations.
  // Algorithm selection (issue 6).
  std::string algo;                    // BRAID_ALGO: forced algorithms, validated at creation.
  std::string tuning_file;             // BRAID_TUNING_FILE: link model instead of measuring.
  bool tune = true;                    // BRAID_TUNE: measure the link model at creation.
};

// One row of the table: name, default shown to users, meaning, and how to apply a value.
struct ConfigVariable {
  absl::string_view name;
  absl::string_view default_text;
  absl::string_view meaning;
  std::function<bool(absl::string_view value, Config& config)> apply;  // false = malformed.
};

const std::vector<ConfigVariable>& ConfigTable();

// Reads every BRAID_* variable through `getenv` (injectable for tests). A malformed value is
// an InvalidArgument error naming the variable and what it accepts.
absl::StatusOr<Config> ParseConfig(
    const std::function<const char*(const char*)>& getenv_fn = nullptr);

// The spin when BRAID_SPIN_US is unset: 50 us while this host has a CPU per local rank, none
// when ranks outnumber CPUs (a spinning rank would only steal the CPU its peer needs).
std::chrono::microseconds SpinForHost(int local_ranks, int cpus);

// Multi-line "NAME=value" dump for BRAID_DEBUG=INFO.
std::string DescribeConfig(const Config& config);

}  // namespace braid
