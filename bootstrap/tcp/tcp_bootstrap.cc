// The rank side of the TCP rendezvous: connect to the root (retrying until it listens), prove
// the secret, announce rank/nranks/host, then exchange blobs through the root.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "bootstrap/bootstrap.h"
#include "bootstrap/tcp/socket.h"
#include "bootstrap/tcp/wire.h"
#include "core/status.h"

namespace braid {
namespace {

using bootstrap::DescribeSeconds;
using bootstrap::MessageType;
using bootstrap::WireReader;
using bootstrap::WireWriter;

constexpr absl::string_view kReachRemedy =
    "check BRAID_ROOT/MASTER_ADDR and that rank 0 is running";

// The text of a kError frame from the root.
std::string ErrorText(const bootstrap::Frame& frame) {
  WireReader reader(frame.payload);
  std::string text;
  if (!reader.String(bootstrap::kMaxErrorBytes, &text)) return "(malformed error message)";
  return text;
}

class TcpBootstrap final : public Bootstrap {
 public:
  TcpBootstrap(UniqueFd fd, std::string root, std::string me, int nranks,
               std::vector<std::string> hosts)
      : fd_(std::move(fd)),
        root_(std::move(root)),
        me_(std::move(me)),
        nranks_(nranks),
        hosts_(std::move(hosts)) {}
  ~TcpBootstrap() override { Close(); }

  absl::StatusOr<std::vector<Blob>> AllGather(const Blob& mine, Deadline deadline) override;
  const std::vector<std::string>& hosts() const override { return hosts_; }
  void Close() override;

 private:
  absl::Status Broken(absl::Status status) {
    fd_.reset();  // the stream may be mid-frame: never reuse it.
    return status;
  }

  UniqueFd fd_;
  std::string root_;
  std::string me_;  // "rank R (host H)" for messages.
  int nranks_;
  std::vector<std::string> hosts_;
  uint64_t round_ = 0;
};

absl::StatusOr<std::vector<Blob>> TcpBootstrap::AllGather(const Blob& mine, Deadline deadline) {
  const std::string what =
      absl::StrCat(me_, ": bootstrap AllGather round ", round_, " through the root at ", root_);
  if (!fd_.valid()) {
    return MakeError(absl::StatusCode::kFailedPrecondition, what,
                     "the bootstrap connection is closed (Close() was called or an earlier "
                     "exchange failed)");
  }
  if (mine.size() > bootstrap::kMaxBlobBytes) {
    return MakeError(absl::StatusCode::kInvalidArgument, what,
                     absl::StrCat("contribution of ", mine.size(), " bytes exceeds the limit of ",
                                  bootstrap::kMaxBlobBytes));
  }
  const auto budget = deadline.remaining();
  absl::Status sent = bootstrap::SendFrame(fd_.get(), MessageType::kGather,
                                           WireWriter().U64(round_).Bytes(mine).data(), deadline,
                                           "a bootstrap AllGather contribution");
  if (!sent.ok()) return Broken(MakeError(sent.code(), what, sent.message()));
  const size_t max_reply =
      std::min<size_t>(bootstrap::kMaxGatherResultBytes,
                       12 + static_cast<size_t>(nranks_) * (bootstrap::kMaxBlobBytes + 4));
  absl::StatusOr<bootstrap::Frame> reply =
      bootstrap::ReceiveFrame(fd_.get(), max_reply, deadline, "the bootstrap AllGather result");
  if (!reply.ok()) {
    if (reply.status().code() == absl::StatusCode::kDeadlineExceeded) {
      return Broken(MakeError(absl::StatusCode::kDeadlineExceeded, what,
                              absl::StrCat("not complete within ", DescribeSeconds(budget)),
                              "every rank must call AllGather the same number of times; look "
                              "for a rank that failed or hangs"));
    }
    return Broken(MakeError(reply.status().code(), what, reply.status().message(),
                            "the root (rank 0's process) may have exited; see its log"));
  }
  if (reply->type == MessageType::kError) {
    return Broken(MakeError(absl::StatusCode::kAborted, what,
                            absl::StrCat("refused by the root: ", ErrorText(*reply))));
  }
  WireReader reader(reply->payload);
  uint64_t round = 0;
  uint32_t count = 0;
  if (reply->type != MessageType::kGatherResult || !reader.U64(&round) || !reader.U32(&count) ||
      round != round_ || count != static_cast<uint32_t>(nranks_)) {
    return Broken(MakeError(absl::StatusCode::kDataLoss, what,
                            absl::StrCat("unexpected ", bootstrap::MessageTypeName(reply->type),
                                         " reply (round ", round, ", ", count, " blobs)")));
  }
  std::vector<Blob> blobs(nranks_);
  for (Blob& blob : blobs) {
    if (!reader.Bytes(bootstrap::kMaxBlobBytes, &blob)) {
      return Broken(MakeError(absl::StatusCode::kDataLoss, what, "truncated AllGather result"));
    }
  }
  if (!reader.AtEnd()) {
    return Broken(MakeError(absl::StatusCode::kDataLoss, what, "trailing bytes in the result"));
  }
  ++round_;
  return blobs;
}

void TcpBootstrap::Close() {
  if (!fd_.valid()) return;
  // Best effort: the root also treats a plain disconnect as leaving.
  (void)bootstrap::SendFrame(fd_.get(), MessageType::kBye, {},
                             Deadline::After(std::chrono::milliseconds(200)), "bye");
  // shutdown() reaches the socket even if a fork()ed child still holds a copy of the fd.
  ::shutdown(fd_.get(), SHUT_RDWR);
  fd_.reset();
}

}  // namespace

// BRAID_HOSTNAME overrides the kernel's name: ranks reporting the same name are one host (shared
// memory, host-aware algorithms). Network namespaces share the machine's name, so the cluster
// tests give each namespace its own.
std::string LocalHostname() {
  if (const char* forced = std::getenv("BRAID_HOSTNAME"); forced != nullptr && *forced != '\0') {
    return std::string(forced).substr(0, bootstrap::kMaxHostnameBytes);
  }
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0) return "unknown-host";
  return std::string(name).substr(0, bootstrap::kMaxHostnameBytes);
}

absl::StatusOr<std::unique_ptr<Bootstrap>> Bootstrap::Join(const UniqueId& id, int rank, int nranks,
                                                           Deadline deadline) {
  const std::string host = LocalHostname();
  const std::string me = DescribeRank(rank, host);
  const std::string root = bootstrap::FormatHostPort(id.root_host, id.root_port);
  const std::string what = absl::StrCat(me, ": join the bootstrap root at ", root);
  if (nranks < 1 || nranks > bootstrap::kMaxRanks || rank < 0 || rank >= nranks) {
    return MakeError(
        absl::StatusCode::kInvalidArgument, what,
        absl::StrCat("rank ", rank, " / nranks ", nranks, " is invalid; need 0 <= rank < nranks"));
  }
  if (id.secret.size() != bootstrap::kSecretBytes || id.root_port == 0) {
    return MakeError(absl::StatusCode::kInvalidArgument, what,
                     "the unique id has no secret or port (not from braidGetUniqueId?)");
  }
  const auto budget = deadline.remaining();
  absl::StatusOr<UniqueFd> connected =
      bootstrap::ConnectWithRetry(id.root_host, id.root_port, deadline, kReachRemedy);
  if (!connected.ok()) {
    return absl::Status(connected.status().code(),
                        absl::StrCat(me, ": ", connected.status().message()));
  }
  UniqueFd fd = std::move(*connected);

  absl::StatusOr<bootstrap::Frame> challenge =
      bootstrap::ReceiveFrame(fd.get(), bootstrap::kNonceBytes, deadline, "the challenge");
  if (!challenge.ok() || challenge->type != MessageType::kChallenge ||
      challenge->payload.size() != bootstrap::kNonceBytes) {
    return MakeError(
        absl::StatusCode::kUnavailable, what,
        absl::StrCat("the service at that address did not answer like a Braid "
                     "bootstrap root (",
                     challenge.ok() ? "unexpected first message" : challenge.status().message(),
                     ")"),
        "check BRAID_ROOT/MASTER_PORT: another service may listen on that port");
  }
  WireWriter proof;
  proof.U64(bootstrap::ComputeProof(id.secret, challenge->payload));
  WireWriter hello;
  hello.U32(static_cast<uint32_t>(rank)).U32(static_cast<uint32_t>(nranks)).String(host);
  std::vector<std::byte> out = bootstrap::EncodeFrame(MessageType::kProof, proof.data());
  std::vector<std::byte> hello_frame = bootstrap::EncodeFrame(MessageType::kHello, hello.data());
  out.insert(out.end(), hello_frame.begin(), hello_frame.end());
  absl::Status sent = bootstrap::WriteFully(fd.get(), out, deadline, "the handshake");
  if (!sent.ok()) return MakeError(sent.code(), what, sent.message(), kReachRemedy);

  const size_t max_welcome = 4 + static_cast<size_t>(nranks) * (4 + bootstrap::kMaxHostnameBytes);
  absl::StatusOr<bootstrap::Frame> reply = bootstrap::ReceiveFrame(
      fd.get(), std::max(max_welcome, bootstrap::kMaxErrorBytes + 4), deadline, "the welcome");
  if (!reply.ok()) {
    if (reply.status().code() == absl::StatusCode::kDeadlineExceeded) {
      return MakeError(absl::StatusCode::kDeadlineExceeded, what,
                       absl::StrCat("joined, but not all ", nranks, " ranks arrived within ",
                                    DescribeSeconds(budget)),
                       "start every rank with the same unique id (or BRAID_ROOT) and world "
                       "size; look for a rank that failed earlier; raise BRAID_TIMEOUT if ranks "
                       "start slowly");
    }
    return MakeError(reply.status().code(), what, reply.status().message(),
                     "the root (rank 0's process) may have exited or timed out; see its log");
  }
  if (reply->type == MessageType::kError) {
    return MakeError(absl::StatusCode::kFailedPrecondition, what,
                     absl::StrCat("refused by the root: ", ErrorText(*reply)),
                     "pass every rank the unique id of the same braidGetUniqueId call, a "
                     "distinct rank and the same nranks");
  }
  WireReader reader(reply->payload);
  uint32_t count = 0;
  std::vector<std::string> hosts;
  bool ok = reply->type == MessageType::kWelcome && reader.U32(&count) &&
            count == static_cast<uint32_t>(nranks);
  for (uint32_t r = 0; ok && r < count; ++r) {
    hosts.emplace_back();
    ok = reader.String(bootstrap::kMaxHostnameBytes, &hosts.back());
  }
  if (!ok || !reader.AtEnd()) {
    return MakeError(
        absl::StatusCode::kDataLoss, what,
        absl::StrCat("malformed ", bootstrap::MessageTypeName(reply->type), " from the root"));
  }
  return std::unique_ptr<Bootstrap>(
      new TcpBootstrap(std::move(fd), root, me, nranks, std::move(hosts)));
}

}  // namespace braid
