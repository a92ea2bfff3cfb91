#include "bootstrap/recovery.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"
#include "bootstrap/tcp/socket.h"
#include "bootstrap/tcp/wire.h"
#include "core/log.h"
#include "core/siphash.h"
#include "core/status.h"

namespace braid {
namespace {

using bootstrap::Frame;
using bootstrap::MessageType;
using bootstrap::WireReader;
using bootstrap::WireWriter;

constexpr uint32_t kRecoveryMagic = 0x4c525242;  // "BRRL"
constexpr size_t kMaxRecoveryPayload = 64 << 10;
// Per joiner: the coordinator admits joiners one at a time, so a stranger holding an idle
// connection delays the agreement by at most this much.
constexpr auto kHandshakeBudget = std::chrono::seconds(1);

// New secret = SipHash(parent key, label || nonce || i) for both 8-byte halves.
std::vector<std::byte> DeriveSecret(std::span<const std::byte> parent,
                                    std::span<const std::byte> nonce) {
  std::array<std::byte, 16> key;
  SipKeyFromSecret(parent, key);
  std::vector<std::byte> secret(16);
  for (uint64_t half = 0; half < 2; ++half) {
    std::vector<std::byte> message(nonce.begin(), nonce.end());
    const char label[] = "braid-shrink-v1";
    for (char c : label) message.push_back(static_cast<std::byte>(c));
    message.push_back(static_cast<std::byte>(half));
    uint64_t h = SipHash24(key, message);
    std::memcpy(secret.data() + 8 * half, &h, 8);
  }
  return secret;
}

absl::Status Send(int fd, MessageType type, const std::vector<std::byte>& payload,
                  Deadline deadline, absl::string_view what) {
  return bootstrap::SendFrame(fd, type, payload, deadline, what);
}

// The survivor side with one candidate coordinator. Unavailable/DeadlineExceeded: the
// candidate is gone or stopped, try the next.
absl::StatusOr<ShrinkAgreement> JoinCoordinator(const ShrinkParams& p, int candidate,
                                                const std::set<int>& failed) {
  BRAID_ASSIGN_OR_RETURN(auto where, DecodeRecoveryBlob(p.listeners[candidate]));
  std::string what = absl::StrCat("shrink: coordinator ", DescribeRank(candidate, p.hosts[candidate]),
                                  " at ", bootstrap::FormatHostPort(where.first, where.second));
  BRAID_ASSIGN_OR_RETURN(bootstrap::SocketAddress address,
                         bootstrap::ResolveAddress(where.first, where.second, false));
  // The candidate may itself spend a patience on each lower candidate before it coordinates.
  Deadline patient = Deadline::After(
      std::min<std::chrono::nanoseconds>(p.patience * (candidate + 1), p.deadline.remaining()));
  UniqueFd fd;
  if (int err = bootstrap::ConnectOnce(address, patient, &fd); err != 0) {
    return SystemError(what, err);
  }
  BRAID_ASSIGN_OR_RETURN(Frame challenge, bootstrap::ReceiveFrame(fd.get(), kMaxRecoveryPayload, patient, what));
  if (challenge.type != MessageType::kChallenge) {
    return absl::UnavailableError(absl::StrCat(what, ": expected a challenge"));
  }
  WireWriter proof;
  proof.U64(bootstrap::ComputeProof(p.secret, challenge.payload));
  BRAID_RETURN_IF_ERROR(Send(fd.get(), MessageType::kProof, proof.Take(), p.deadline, what));
  WireWriter join;
  join.U32(static_cast<uint32_t>(p.rank)).U32(static_cast<uint32_t>(failed.size()));
  for (int r : failed) join.U32(static_cast<uint32_t>(r));
  BRAID_RETURN_IF_ERROR(Send(fd.get(), MessageType::kShrinkJoin, join.Take(), p.deadline, what));
  BRAID_ASSIGN_OR_RETURN(Frame reply, bootstrap::ReceiveFrame(fd.get(), kMaxRecoveryPayload, p.deadline, what));
  WireReader reader(reply.payload);
  if (reply.type == MessageType::kError) {
    std::string text;
    reader.String(bootstrap::kMaxErrorBytes, &text);
    return MakeError(absl::StatusCode::kFailedPrecondition, what, text);
  }
  ShrinkAgreement result;
  std::string host;
  uint32_t port = 0, count = 0;
  std::vector<std::byte> nonce;
  if (reply.type != MessageType::kShrinkResult || !reader.String(255, &host) || !reader.U32(&port) ||
      port > 65535 || !reader.Bytes(64, &nonce) || !reader.U32(&count) ||
      count > static_cast<uint32_t>(p.nranks)) {
    return MakeError(absl::StatusCode::kDataLoss, what, "malformed shrink result");
  }
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t member = 0;
    if (!reader.U32(&member) || member >= static_cast<uint32_t>(p.nranks)) {
      return MakeError(absl::StatusCode::kDataLoss, what, "malformed shrink member list");
    }
    result.members.push_back(static_cast<int>(member));
  }
  result.id = UniqueId{host, static_cast<uint16_t>(port), DeriveSecret(p.secret, nonce)};
  return result;
}

struct Joined {
  int rank;
  UniqueFd fd;
};

// Reads one survivor's challenge-response and join. Errors drop the connection (hostile or
// confused clients never disturb the agreement).
absl::StatusOr<Joined> Admit(const ShrinkParams& p, UniqueFd fd, std::set<int>* failed) {
  Deadline deadline = Deadline::After(std::min<std::chrono::nanoseconds>(kHandshakeBudget, p.deadline.remaining()));
  const std::string what = "shrink: a survivor's join";
  std::array<std::byte, bootstrap::kNonceBytes> nonce;
  bootstrap::FillRandom(nonce);
  BRAID_RETURN_IF_ERROR(Send(fd.get(), MessageType::kChallenge, {nonce.begin(), nonce.end()}, deadline, what));
  BRAID_ASSIGN_OR_RETURN(Frame proof, bootstrap::ReceiveFrame(fd.get(), 64, deadline, what));
  WireReader proof_reader(proof.payload);
  uint64_t value = 0;
  if (proof.type != MessageType::kProof || !proof_reader.U64(&value) ||
      value != bootstrap::ComputeProof(p.secret, nonce)) {
    return absl::PermissionDeniedError("shrink: a connection failed the challenge");
  }
  BRAID_ASSIGN_OR_RETURN(Frame join, bootstrap::ReceiveFrame(fd.get(), kMaxRecoveryPayload, deadline, what));
  WireReader reader(join.payload);
  uint32_t rank = 0, count = 0;
  if (join.type != MessageType::kShrinkJoin || !reader.U32(&rank) ||
      rank >= static_cast<uint32_t>(p.nranks) || !reader.U32(&count) ||
      count > static_cast<uint32_t>(p.nranks)) {
    return absl::DataLossError("shrink: malformed join");
  }
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t r = 0;
    if (!reader.U32(&r) || r >= static_cast<uint32_t>(p.nranks)) {
      return absl::DataLossError("shrink: malformed failed-rank list");
    }
    failed->insert(static_cast<int>(r));
  }
  return Joined{static_cast<int>(rank), std::move(fd)};
}

absl::StatusOr<ShrinkAgreement> Coordinate(const ShrinkParams& p, std::set<int> failed) {
  std::vector<Joined> joined;
  std::set<int> present = {p.rank};
  // Survivors may spend a patience on each stopped candidate below us before they come here.
  Deadline give_up = Deadline::After(
      std::min<std::chrono::nanoseconds>(p.patience * (p.rank + 2), p.deadline.remaining()));
  auto settled = [&] {
    for (int r = 0; r < p.nranks; ++r) {
      if (!present.count(r) && !failed.count(r)) return false;
    }
    return true;
  };
  while (!settled() && !give_up.expired()) {
    pollfd pfd{p.listener->fd(), POLLIN, 0};
    if (::poll(&pfd, 1, give_up.remaining_ms(100)) <= 0) continue;
    UniqueFd fd(::accept4(p.listener->fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) continue;
    std::set<int> reported;
    auto admitted = Admit(p, std::move(fd), &reported);
    if (!admitted.ok()) {
      BRAID_LOG(kWarn, "shrink coordinator (rank ", p.rank, "): refused a connection: ",
                admitted.status().message());
      continue;
    }
    failed.insert(reported.begin(), reported.end());
    present.insert(admitted->rank);
    // A rank that joined is alive, whatever others suspected; a second join replaces the first.
    std::erase_if(joined, [&](const Joined& j) { return j.rank == admitted->rank; });
    joined.push_back(std::move(*admitted));
  }
  std::vector<int> members(present.begin(), present.end());
  for (int r = 0; r < p.nranks; ++r) {
    if (!present.count(r) && !failed.count(r)) {
      BRAID_LOG(kWarn, "shrink coordinator (rank ", p.rank, "): ",
                DescribeRank(r, p.hosts[static_cast<size_t>(r)]),
                " did not join in time; it is left out");
    }
  }
  std::array<std::byte, 16> nonce;
  bootstrap::FillRandom(nonce);
  std::vector<std::byte> secret = DeriveSecret(p.secret, nonce);
  BRAID_ASSIGN_OR_RETURN(auto me, DecodeRecoveryBlob(p.listeners[p.rank]));
  BRAID_ASSIGN_OR_RETURN(UniqueId id, StartRoot(me.first, 0, secret));
  WireWriter result;
  result.String(id.root_host).U32(id.root_port).Bytes(nonce).U32(static_cast<uint32_t>(members.size()));
  for (int r : members) result.U32(static_cast<uint32_t>(r));
  std::vector<std::byte> payload = result.Take();
  for (Joined& j : joined) {
    absl::Status sent = Send(j.fd.get(), MessageType::kShrinkResult, payload, p.deadline, "shrink result");
    if (!sent.ok()) BRAID_LOG(kWarn, "shrink coordinator: ", sent.message());
  }
  return ShrinkAgreement{id, members};
}

}  // namespace

Blob EncodeRecoveryBlob(const std::string& ip, uint16_t port) {
  WireWriter writer;
  writer.U32(kRecoveryMagic).U32(port).String(ip);
  return writer.Take();
}

absl::StatusOr<std::pair<std::string, uint16_t>> DecodeRecoveryBlob(std::span<const std::byte> blob) {
  WireReader reader(blob);
  uint32_t magic = 0, port = 0;
  std::string ip;
  if (!reader.U32(&magic) || magic != kRecoveryMagic || !reader.U32(&port) || port == 0 ||
      port > 65535 || !reader.String(255, &ip) || !reader.AtEnd()) {
    return MakeError(absl::StatusCode::kDataLoss, "shrink", "malformed recovery address",
                     "make sure every rank runs the same Braid version");
  }
  return std::make_pair(ip, static_cast<uint16_t>(port));
}

absl::StatusOr<std::unique_ptr<RecoveryListener>> RecoveryListener::Create(
    const std::string& address) {
  BRAID_ASSIGN_OR_RETURN(bootstrap::SocketAddress bind_to, bootstrap::ResolveAddress(address, 0, true));
  auto listener = std::unique_ptr<RecoveryListener>(new RecoveryListener());
  listener->fd_ = UniqueFd(::socket(bind_to.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener->fd_.valid()) return SystemError("recovery listener: socket", errno);
  if (::bind(listener->fd_.get(), bind_to.get(), bind_to.length) != 0) {
    return SystemError(absl::StrCat("recovery listener: bind to ", address), errno,
                       "choose another interface with BRAID_SOCKET_IFNAME");
  }
  if (::listen(listener->fd_.get(), 128) != 0) return SystemError("recovery listener: listen", errno);
  sockaddr_storage bound{};
  socklen_t length = sizeof(bound);
  ::getsockname(listener->fd_.get(), reinterpret_cast<sockaddr*>(&bound), &length);
  listener->address_ = address;
  listener->port_ = bootstrap::AddressPort(reinterpret_cast<sockaddr*>(&bound));
  return listener;
}

Blob RecoveryListener::blob() const { return EncodeRecoveryBlob(address_, port_); }

absl::StatusOr<ShrinkAgreement> AgreeOnSurvivors(const ShrinkParams& p) {
  std::set<int> failed(p.known_failed.begin(), p.known_failed.end());
  failed.erase(p.rank);
  absl::Status last;
  for (int candidate = 0; candidate < p.nranks; ++candidate) {
    if (failed.count(candidate)) continue;
    if (candidate == p.rank) return Coordinate(p, failed);
    auto agreed = JoinCoordinator(p, candidate, failed);
    if (agreed.ok()) return agreed;
    last = agreed.status();
    if (p.deadline.expired()) break;
    BRAID_LOG(kWarn, "shrink (rank ", p.rank, "): skipping candidate coordinator ",
              DescribeRank(candidate, p.hosts[static_cast<size_t>(candidate)]), ": ",
              last.message());
    failed.insert(candidate);
  }
  return MakeError(absl::StatusCode::kUnavailable, absl::StrCat("braidCommShrink on rank ", p.rank),
                   absl::StrCat("no coordinator could be reached: ", last.message()),
                   "check that the surviving ranks all call braidCommShrink");
}

}  // namespace braid
