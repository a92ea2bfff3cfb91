// Minimal leveled logging to stderr, prefixed with "braid[rank@host]" so interleaved output
// from many ranks stays readable.
#pragma once

#include "absl/strings/string_view.h"

#include "core/config.h"

namespace braid {

void SetLogIdentity(int rank, absl::string_view host);
void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);
void LogLine(LogLevel level, absl::string_view message);

}  // namespace braid

#define BRAID_LOG(level, ...)                                              \
  do {                                                                     \
    if (::braid::LogEnabled(::braid::LogLevel::level))                     \
      ::braid::LogLine(::braid::LogLevel::level, ::absl::StrCat(__VA_ARGS__)); \
  } while (0)
