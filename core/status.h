// Error helpers shared by every layer: errors are absl::Status values that name what failed,
// which rank and host, and what to do about it.
#pragma once

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace braid {

// "rank R (host H)" for messages naming a peer.
std::string DescribeRank(int rank, absl::string_view host);

// Returns an error of `code` whose message is "<what>: <detail>. Remedy: <remedy>" (remedy
// omitted when empty). Keeps the message format identical across layers.
absl::Status MakeError(absl::StatusCode code, absl::string_view what, absl::string_view detail,
                       absl::string_view remedy = {});

// errno-based system error, e.g. SystemError("connect to 10.0.0.1:4000", errno, "check ...").
absl::Status SystemError(absl::string_view what, int err, absl::string_view remedy = {});

}  // namespace braid

// Propagates a non-OK status to the caller.
#define BRAID_RETURN_IF_ERROR(expr)            \
  do {                                         \
    ::absl::Status braid_status_ = (expr);     \
    if (!braid_status_.ok()) return braid_status_; \
  } while (0)

#define BRAID_CONCAT_INNER_(a, b) a##b
#define BRAID_CONCAT_(a, b) BRAID_CONCAT_INNER_(a, b)
// BRAID_ASSIGN_OR_RETURN(auto x, StatusOrExpr());
#define BRAID_ASSIGN_OR_RETURN(lhs, expr) \
  BRAID_ASSIGN_OR_RETURN_IMPL_(BRAID_CONCAT_(braid_statusor_, __LINE__), lhs, expr)
#define BRAID_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
