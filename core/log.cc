#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"

namespace braid {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kWarn)};
std::mutex g_mutex;
std::string g_prefix = "braid";

absl::string_view LevelTag(LogLevel level) {
  switch (level) {
    case LogLevel::kWarn: return "WARN";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kTrace: return "TRACE";
  }
  return "";
}

}  // namespace

void SetLogIdentity(int rank, absl::string_view host) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_prefix = absl::StrCat("braid[", rank, "@", host, "]");
}

void SetLogLevel(LogLevel level) {
  // The most verbose request wins when several communicators exist.
  int wanted = static_cast<int>(level);
  int current = g_level.load();
  while (wanted > current && !g_level.compare_exchange_weak(current, wanted)) {
  }
}

bool LogEnabled(LogLevel level) { return static_cast<int>(level) <= g_level.load(); }

void LogLine(LogLevel level, absl::string_view message) {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::string line = absl::StrCat(g_prefix, " ", LevelTag(level), " ", message, "\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace braid
