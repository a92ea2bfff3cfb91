// Recovery after a failure: every rank keeps a listening socket from creation on, so that the
// survivors of a failure can agree, without the (long gone) bootstrap root and over none of
// the parent's possibly broken connections, on who is alive, and get the address and secret of
// a fresh rendezvous for the smaller communicator (braidCommShrink).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bootstrap/bootstrap.h"
#include "core/deadline.h"
#include "core/unique_fd.h"

namespace braid {

// Bound at creation on the data-path address; nobody accepts on it until a shrink.
class RecoveryListener {
 public:
  static absl::StatusOr<std::unique_ptr<RecoveryListener>> Create(const std::string& address);
  Blob blob() const;  // this listener's address, for the creation AllGather.
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
  std::string address_;
  uint16_t port_ = 0;
};

struct ShrinkParams {
  int rank = 0;
  int nranks = 1;
  std::vector<std::byte> secret;          // the parent communicator's: authenticates survivors.
  std::span<const Blob> listeners;        // every rank's RecoveryListener::blob().
  const RecoveryListener* listener = nullptr;
  std::vector<int> known_failed;          // ranks this rank saw fail.
  std::vector<std::string> hosts;         // for messages.
  // How long a silent candidate (a stopped coordinator, a survivor that never shows up) is
  // given before it is considered failed.
  std::chrono::milliseconds patience{std::chrono::seconds(30)};
  Deadline deadline = Deadline::Never();
};

struct ShrinkAgreement {
  UniqueId id;               // the fresh rendezvous (root hosted by the coordinator).
  std::vector<int> members;  // old ranks of the survivors; new rank = index.
};

// Survivors-only agreement: the lowest rank that nobody (as far as this rank knows) saw fail
// coordinates. Every survivor tries candidates in rank order: a refused connection (the
// process is gone) or a candidate c silent for (c + 1) x `patience` (stopped) is skipped. The
// coordinator admits survivors after a challenge-response on the parent's secret, merges what
// each saw fail, and waits until every rank is either joined or reported failed (at most
// (its rank + 2) x patience),
// then starts a rendezvous root whose secret both sides derive from the parent's secret and a
// fresh nonce (the new secret never crosses the network).
absl::StatusOr<ShrinkAgreement> AgreeOnSurvivors(const ShrinkParams& params);

// Encoding of a listener blob (exposed for the fuzz targets): "BRRL", u16 port, string ip.
Blob EncodeRecoveryBlob(const std::string& ip, uint16_t port);
absl::StatusOr<std::pair<std::string, uint16_t>> DecodeRecoveryBlob(std::span<const std::byte> blob);

}  // namespace braid
