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
