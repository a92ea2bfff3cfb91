#include "core/status.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace braid {

std::string DescribeRank(int rank, absl::string_view host) {
  if (host.empty()) return absl::StrCat("rank ", rank);
  return absl::StrCat("rank ", rank, " (host ", host, ")");
}

absl::Status MakeError(absl::StatusCode code, absl::string_view what, absl::string_view detail,
                       absl::string_view remedy) {
  std::string message = absl::StrCat(what, ": ", detail);
  if (!remedy.empty()) absl::StrAppend(&message, ". Remedy: ", remedy);
  return absl::Status(code, message);
}

absl::Status SystemError(absl::string_view what, int err, absl::string_view remedy) {
  absl::StatusCode code = absl::StatusCode::kUnknown;  // reported as braidSystemError.
  switch (err) {
    case ECONNREFUSED:
    case ECONNRESET:
    case EPIPE:
    case EHOSTUNREACH:
    case ENETUNREACH:
      code = absl::StatusCode::kUnavailable;
      break;
    case ETIMEDOUT:
      code = absl::StatusCode::kDeadlineExceeded;
      break;
    case ENOMEM:
    case ENOBUFS:
    case EMFILE:
    case ENFILE:
      code = absl::StatusCode::kResourceExhausted;
      break;
    case EINVAL:
      code = absl::StatusCode::kInvalidArgument;
      break;
    default:
      break;
  }
  return MakeError(code, what, absl::StrCat(std::strerror(err), " (errno ", err, ")"), remedy);
}

}  // namespace braid
