// Errors and failure bookkeeping every transport shares, so the same event reads the same
// whichever transport saw it (docs/troubleshooting.md quotes these texts once).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/status.h"

namespace braid {

// What failed, in every transport's peer errors: "<transport> transport (rank R): connection
// to rank P (host H)".
inline std::string ConnectionWhat(absl::string_view transport, int rank, int peer,
                                  absl::string_view peer_host) {
  return absl::StrCat(transport, " transport (rank ", rank, "): connection to ",
                      DescribeRank(peer, peer_host));
}

// A receive posted with a length other than the matching send's (fails only that request).
inline absl::Status SizeMismatchError(absl::string_view transport, int rank, int peer,
                                      absl::string_view peer_host, uint64_t tag, uint64_t sent,
                                      uint64_t posted) {
  return MakeError(absl::StatusCode::kInvalidArgument,
                   ConnectionWhat(transport, rank, peer, peer_host),
                   absl::StrCat("message with tag ", tag, " is ", sent,
                                " bytes but the receive posted for it expects ", posted, " bytes"),
                   "the sender and receiver disagree on the message size: check the counts and "
                   "datatypes passed on both ranks");
}

// A peer's goodbye said it left because rank `failed` failed first.
inline absl::Status PeerLeftAfterFailureError(absl::string_view transport, int rank, int peer,
                                              absl::string_view peer_host, int failed,
                                              absl::string_view failed_host) {
  return MakeError(absl::StatusCode::kUnavailable, ConnectionWhat(transport, rank, peer, peer_host),
                   absl::StrCat("shut down because ", DescribeRank(failed, failed_host),
                                " failed (it closed or broke its connection without "
                                "shutting down, stopped responding, or sent bytes that "
                                "were refused; the log of the rank that saw it first says "
                                "which)"),
                   absl::StrCat("check rank ", failed, "'s state and log for a crash, an "
                                "out-of-memory kill, a stopped process or a cut link"));
}

// A peer's goodbye said it left because it found the ranks in different collectives.
inline absl::Status PeerLeftAfterMismatchError(absl::string_view transport, int rank, int peer,
                                               absl::string_view peer_host) {
  return MakeError(absl::StatusCode::kInvalidArgument,
                   ConnectionWhat(transport, rank, peer, peer_host),
                   "shut down because it found the ranks in different collectives "
                   "(collective mismatch: its own error describes the calls)",
                   "make every rank issue the same collectives with the same arguments in "
                   "the same order; BRAID_DEBUG=CHECK shows both calls on every rank");
}

// The peer's connection ended without a goodbye (`how`: "closed its connection", "reset its
// connection (...)"): its process is gone.
inline absl::Status PeerDiedError(absl::string_view transport, int rank, int peer,
                                  absl::string_view peer_host, absl::string_view how) {
  std::string where = peer_host.empty() ? "" : absl::StrCat(" and the system log of ", peer_host);
  return MakeError(absl::StatusCode::kUnavailable,
                   absl::StrCat(transport, " transport (rank ", rank, ")"),
                   absl::StrCat(DescribeRank(peer, peer_host), " ", how,
                                " without shutting down: the process probably died"),
                   absl::StrCat("check rank ", peer, "'s log", where,
                                " for a crash, an out-of-memory kill or an exit that skipped "
                                "destroying the communicator"));
}

// The peer said goodbye while requests to or from it were outstanding (they fail; not fatal).
inline absl::Status PeerLeftWithPendingError(absl::string_view transport, int rank, int peer,
                                             absl::string_view peer_host) {
  return MakeError(absl::StatusCode::kUnavailable, ConnectionWhat(transport, rank, peer, peer_host),
                   "shut down (destroyed its communicator) while requests to or from it were "
                   "outstanding",
                   "make every rank issue the same operations before destroying its "
                   "communicator");
}

// The peer shut down cleanly: what later use of its connection reports.
inline absl::Status PeerClosedError(absl::string_view transport, int rank, int peer,
                                    absl::string_view peer_host) {
  return MakeError(absl::StatusCode::kUnavailable, ConnectionWhat(transport, rank, peer, peer_host),
                   "shut down (it destroyed its communicator or exited)",
                   absl::StrCat("do not use rank ", peer, " after it shut down"));
}

// The ranks a transport saw fail (failed_peers()), each once, in the order they were found.
inline void NoteFailedRank(std::vector<int>& failed, int rank) {
  if (std::find(failed.begin(), failed.end(), rank) == failed.end()) failed.push_back(rank);
}

// peer_failed() of a rank the transport has no connection to (hybrid: a peer of its other
// part): not its to fail, but the failure its goodbyes must name, so its peers blame that rank
// rather than this one for leaving.
inline void NoteForeignFailure(int rank, const absl::Status& why, std::vector<int>& failed,
                               absl::Status& fatal, int& fatal_rank) {
  NoteFailedRank(failed, rank);
  if (fatal.ok()) {
    fatal = why;
    fatal_rank = rank;
  }
}

}  // namespace braid
