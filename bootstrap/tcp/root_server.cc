// The rendezvous root's server: a poll loop over the listening socket and every connection.
// Unauthenticated connections are cheap to drop (small frame limits, a handshake timeout), so
// garbage or silent peers never disturb the rendezvous of real ranks.
#include <pthread.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bootstrap/tcp/root.h"
#include "bootstrap/tcp/socket.h"
#include "bootstrap/tcp/wire.h"
#include "core/status.h"

namespace braid::bootstrap {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kClosingGrace = std::chrono::seconds(2);
constexpr size_t kMaxPendingConnections = 1024;

enum class Phase { kAwaitProof, kAwaitHello, kJoined };

struct Conn {
  UniqueFd fd;
  std::string peer;
  Phase phase = Phase::kAwaitProof;
  std::array<std::byte, kNonceBytes> nonce{};
  Clock::time_point accepted;
  FrameParser parser;
  std::vector<std::byte> out;
  size_t out_offset = 0;
  int rank = -1;
  bool retired = false;  // a joined rank that has left (bye, error or disconnect).
  bool closing = false;  // flush `out`, half-close, drain, then drop.
  bool write_shut = false;
  Clock::time_point closing_since;
  bool dead = false;

  bool pending_output() const { return out_offset < out.size(); }
};

class RootServer {
 public:
  RootServer(UniqueFd listen_fd, std::vector<std::byte> secret, RootOptions options)
      : listen_(std::move(listen_fd)),
        secret_(std::move(secret)),
        options_(options),
        rendezvous_deadline_(Clock::now() + options.timeout) {}

  void Run();

 private:
  bool Finished() const;
  int PollTimeoutMs(Clock::time_point now) const;
  void AcceptAll();
  void ReadFrom(Conn& c);
  void Flush(Conn& c);
  void CheckTimers(Clock::time_point now);
  void Handle(Conn& c, Frame frame);
  void HandleProof(Conn& c, const Frame& frame);
  void HandleHello(Conn& c, const Frame& frame);
  void HandleGather(Conn& c, const Frame& frame);
  void Send(Conn& c, MessageType type, std::span<const std::byte> payload);
  void Refuse(Conn& c, absl::string_view text);
  void Retire(Conn& c);
  void RankGone(Conn& c, absl::string_view how);
  void FailAll(absl::string_view text);
  std::string Describe(int rank) const { return DescribeRank(rank, hosts_[rank]); }
  std::string MissingRanks(bool contributions) const;
  size_t MaxPayload(const Conn& c) const;

  UniqueFd listen_;
  std::vector<std::byte> secret_;
  RootOptions options_;
  std::vector<std::unique_ptr<Conn>> conns_;

  int nranks_ = 0;
  std::vector<Conn*> by_rank_;
  std::vector<bool> gone_rank_;
  std::vector<std::string> hosts_;
  int joined_ = 0;
  int gone_ = 0;
  bool complete_ = false;
  bool failed_ = false;
  std::string left_reason_;  // why no further AllGather round can complete.
  Clock::time_point rendezvous_deadline_;

  uint64_t round_ = 0;
  std::vector<std::optional<Blob>> contributions_;
  int contributed_ = 0;
  Clock::time_point round_deadline_ = Clock::time_point::max();
};

void RootServer::Run() {
  std::vector<pollfd> fds;
  while (!Finished()) {
    fds.clear();
    if (listen_.valid()) fds.push_back({listen_.get(), POLLIN, 0});
    for (auto& c : conns_) {
      short events = 0;
      if (!c->closing || c->write_shut) events |= POLLIN;
      if (c->pending_output()) events |= POLLOUT;
      fds.push_back({c->fd.get(), events, 0});
    }
    int rc = ::poll(fds.data(), fds.size(), PollTimeoutMs(Clock::now()));
    if (rc < 0 && errno != EINTR) break;  // nothing sensible left to do.
    size_t i = 0;
    bool listener_ready = false;
    if (listen_.valid()) listener_ready = (fds[i++].revents & POLLIN) != 0;
    const size_t polled = conns_.size();
    for (size_t k = 0; k < polled; ++k, ++i) {
      Conn& c = *conns_[k];
      if (c.dead || fds[i].revents == 0) continue;
      if (fds[i].revents & POLLOUT) Flush(c);
      if (!c.dead && (fds[i].revents & (POLLIN | POLLHUP | POLLERR))) ReadFrom(c);
    }
    if (listener_ready && listen_.valid()) AcceptAll();
    CheckTimers(Clock::now());
    std::erase_if(conns_, [](const std::unique_ptr<Conn>& c) { return c->dead; });
  }
  // Process exit may already be under way; touch nothing but our own state.
}

bool RootServer::Finished() const {
  if (!failed_ && !(complete_ && gone_ == nranks_)) return false;
  // Let error messages and results reach their ranks before leaving.
  return std::none_of(conns_.begin(), conns_.end(),
                      [](const auto& c) { return c->closing && !c->dead; });
}

int RootServer::PollTimeoutMs(Clock::time_point now) const {
  Clock::time_point next = now + std::chrono::seconds(1);
  if (!complete_ && !failed_) next = std::min(next, rendezvous_deadline_);
  next = std::min(next, round_deadline_);
  for (const auto& c : conns_) {
    if (c->phase != Phase::kJoined) next = std::min(next, c->accepted + options_.handshake_timeout);
    if (c->closing) next = std::min(next, c->closing_since + kClosingGrace);
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1;
  return static_cast<int>(std::clamp<long long>(ms, 0, 1000));
}

void RootServer::AcceptAll() {
  while (true) {
    sockaddr_storage address{};
    socklen_t length = sizeof(address);
    int fd = ::accept4(listen_.get(), reinterpret_cast<sockaddr*>(&address), &length,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or a transient error; poll will tell us again.
    auto c = std::make_unique<Conn>();
    c->fd.reset(fd);
    const auto* sa = reinterpret_cast<const sockaddr*>(&address);
    c->peer = FormatHostPort(NumericHost(sa), AddressPort(sa));
    size_t pending = std::count_if(conns_.begin(), conns_.end(),
                                   [](const auto& x) { return x->phase != Phase::kJoined; });
    if (failed_ || pending >= kMaxPendingConnections) continue;  // closed by ~Conn.
    c->accepted = Clock::now();
    FillRandom(c->nonce);
    Send(*c, MessageType::kChallenge, c->nonce);
    conns_.push_back(std::move(c));
  }
}

size_t RootServer::MaxPayload(const Conn& c) const {
  switch (c.phase) {
    case Phase::kAwaitProof:
      return 8;
    case Phase::kAwaitHello:
      return 12 + kMaxHostnameBytes;
    case Phase::kJoined:
      return 16 + kMaxBlobBytes;
  }
  return 0;
}

void RootServer::ReadFrom(Conn& c) {
  std::byte buffer[64 * 1024];
  for (int reads = 0; reads < 16 && !c.dead; ++reads) {
    ssize_t n = ::recv(c.fd.get(), buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
      if (c.phase == Phase::kJoined && !c.retired) RankGone(c, "disconnected from the root");
      c.dead = true;
      return;
    }
    if (c.closing) continue;  // draining after an error: discard.
    c.parser.Append(std::span<const std::byte>(buffer, static_cast<size_t>(n)));
    while (!c.dead && !c.closing) {
      absl::StatusOr<std::optional<Frame>> frame = c.parser.Next(MaxPayload(c));
      if (!frame.ok()) {
        if (c.phase == Phase::kJoined) {
          Refuse(c, frame.status().message());
        } else {
          c.dead = true;  // garbage from an unauthenticated peer: just drop it.
        }
        return;
      }
      if (!frame->has_value()) break;
      Handle(c, std::move(**frame));
    }
  }
}

void RootServer::Flush(Conn& c) {
  while (c.pending_output()) {
    ssize_t n =
        ::send(c.fd.get(), c.out.data() + c.out_offset, c.out.size() - c.out_offset, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_offset += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (c.phase == Phase::kJoined && !c.retired) RankGone(c, "disconnected from the root");
    c.dead = true;
    return;
  }
  c.out.clear();
  c.out_offset = 0;
  if (c.closing && !c.write_shut) {
    // Half-close and drain, so unread bytes from the peer never turn into a reset that
    // destroys the error message before the peer reads it.
    ::shutdown(c.fd.get(), SHUT_WR);
    c.write_shut = true;
  }
}

void RootServer::CheckTimers(Clock::time_point now) {
  for (auto& c : conns_) {
    if (c->dead) continue;
    if (c->closing && now - c->closing_since > kClosingGrace) c->dead = true;
    if (!c->closing && c->phase != Phase::kJoined &&
        now - c->accepted > options_.handshake_timeout) {
      c->dead = true;  // connected but never proved the secret.
    }
  }
  if (!complete_ && !failed_ && nranks_ > 0 && now >= rendezvous_deadline_) {
    FailAll(absl::StrCat("the bootstrap root timed out after ", DescribeSeconds(options_.timeout),
                         " waiting for ", MissingRanks(false), " of ", nranks_,
                         " to join. Remedy: start every rank with the same "
                         "unique id (or BRAID_ROOT) and world size; look for a rank that failed "
                         "earlier; raise BRAID_TIMEOUT if ranks start slowly"));
  } else if (!complete_ && nranks_ == 0 && now >= rendezvous_deadline_) {
    failed_ = true;  // nobody came: exit quietly.
    listen_.reset();
  }
  if (complete_ && !failed_ && now >= round_deadline_) {
    FailAll(absl::StrCat("bootstrap AllGather round ", round_, " timed out after ",
                         DescribeSeconds(options_.timeout), ": ", MissingRanks(true),
                         " never contributed. Remedy: every rank must call the same sequence "
                         "of collective operations; look for a rank that failed or hangs"));
  }
}

std::string RootServer::MissingRanks(bool contributions) const {
  std::vector<int> missing;
  for (int r = 0; r < nranks_; ++r) {
    bool present = contributions ? contributions_[r].has_value() : by_rank_[r] != nullptr;
    if (!present) missing.push_back(r);
  }
  if (missing.size() > 16) missing.resize(16);
  return absl::StrCat(missing.size() == 1 ? "rank " : "ranks ", absl::StrJoin(missing, ", "));
}

void RootServer::Send(Conn& c, MessageType type, std::span<const std::byte> payload) {
  if (c.dead) return;
  std::vector<std::byte> frame = EncodeFrame(type, payload);
  c.out.insert(c.out.end(), frame.begin(), frame.end());
  Flush(c);
}

void RootServer::Refuse(Conn& c, absl::string_view text) {
  if (c.closing || c.dead) return;
  absl::string_view clipped = text.substr(0, kMaxErrorBytes);
  Send(c, MessageType::kError, WireWriter().String(clipped).data());
  c.closing = true;
  c.closing_since = Clock::now();
  if (!c.pending_output() && !c.write_shut) {
    ::shutdown(c.fd.get(), SHUT_WR);
    c.write_shut = true;
  }
  if (c.phase == Phase::kJoined && !c.retired) RankGone(c, "was refused by the root");
}

void RootServer::Retire(Conn& c) {
  if (c.retired || c.phase != Phase::kJoined) return;
  c.retired = true;
  by_rank_[c.rank] = nullptr;
  gone_rank_[c.rank] = true;
  ++gone_;
}

void RootServer::RankGone(Conn& c, absl::string_view how) {
  if (c.retired) return;
  Retire(c);
  std::string who = Describe(c.rank);
  if (!complete_) {
    FailAll(absl::StrCat(who, " ", how, " before all ", nranks_,
                         " ranks joined, so the rendezvous cannot complete"));
    return;
  }
  if (left_reason_.empty()) {
    left_reason_ = absl::StrCat(who, " has left the rendezvous (", how,
                                "), and a bootstrap AllGather needs every rank");
  }
  for (int r = 0; r < nranks_; ++r) {
    if (contributions_[r].has_value() && by_rank_[r] != nullptr) {
      Conn& waiting = *by_rank_[r];
      Retire(waiting);
      Refuse(waiting, left_reason_);
    }
  }
}

void RootServer::FailAll(absl::string_view text) {
  failed_ = true;
  listen_.reset();
  round_deadline_ = Clock::time_point::max();
  for (auto& c : conns_) {
    if (c->phase == Phase::kJoined && !c->dead) {
      Retire(*c);
      Refuse(*c, text);
    } else if (c->phase != Phase::kJoined) {
      c->dead = true;
    }
  }
}

void RootServer::Handle(Conn& c, Frame frame) {
  switch (c.phase) {
    case Phase::kAwaitProof:
      if (frame.type != MessageType::kProof) {
        c.dead = true;
        return;
      }
      HandleProof(c, frame);
      return;
    case Phase::kAwaitHello:
      if (frame.type != MessageType::kHello) {
        c.dead = true;
        return;
      }
      HandleHello(c, frame);
      return;
    case Phase::kJoined:
      if (frame.type == MessageType::kGather) {
        HandleGather(c, frame);
      } else if (frame.type == MessageType::kBye) {
        RankGone(c, "closed its bootstrap connection");
        c.dead = true;
      } else {
        Refuse(c, absl::StrCat("unexpected ", MessageTypeName(frame.type), " message"));
      }
      return;
  }
}

void RootServer::HandleProof(Conn& c, const Frame& frame) {
  WireReader reader(frame.payload);
  uint64_t proof = 0;
  if (!reader.U64(&proof) || !reader.AtEnd()) {
    c.dead = true;
    return;
  }
  // The comparison runs over a fixed-size integer; its timing does not leak the secret.
  if (proof != ComputeProof(secret_, c.nonce)) {
    Refuse(c,
           "wrong secret: this rank's unique id does not belong to the rendezvous served "
           "at this address (an id from another job or run?)");
    return;
  }
  c.phase = Phase::kAwaitHello;
}

void RootServer::HandleHello(Conn& c, const Frame& frame) {
  WireReader reader(frame.payload);
  uint32_t rank = 0, nranks = 0;
  std::string host;
  if (!reader.U32(&rank) || !reader.U32(&nranks) || !reader.String(kMaxHostnameBytes, &host) ||
      !reader.AtEnd()) {
    Refuse(c, "malformed hello message");
    return;
  }
  if (nranks < 1 || nranks > static_cast<uint32_t>(kMaxRanks)) {
    Refuse(c, absl::StrCat("nranks ", nranks, " is out of range (1..", kMaxRanks, ")"));
    return;
  }
  if (rank >= nranks) {
    Refuse(c, absl::StrCat("rank ", rank, " is out of range for nranks ", nranks));
    return;
  }
  if (failed_) {
    Refuse(c, "the rendezvous has already failed");
    return;
  }
  if (nranks_ == 0) {
    nranks_ = static_cast<int>(nranks);
    by_rank_.assign(nranks_, nullptr);
    gone_rank_.assign(nranks_, false);
    hosts_.assign(nranks_, "");
    contributions_.assign(nranks_, std::nullopt);
  } else if (static_cast<int>(nranks) != nranks_) {
    Refuse(c, absl::StrCat("rank ", rank, " (host ", host, ") says nranks=", nranks,
                           " but the ranks that joined first said nranks=", nranks_,
                           "; every rank must pass the same nranks"));
    return;
  }
  if (by_rank_[rank] != nullptr || gone_rank_[rank]) {
    Refuse(c,
           absl::StrCat("duplicate rank: rank ", rank, " already joined from host ", hosts_[rank],
                        "; every rank must use a distinct rank number in 0..", nranks_ - 1));
    return;
  }
  if (complete_) {
    Refuse(c, absl::StrCat("the rendezvous is already complete (all ", nranks_, " ranks joined)"));
    return;
  }
  c.phase = Phase::kJoined;
  c.rank = static_cast<int>(rank);
  by_rank_[rank] = &c;
  hosts_[rank] = std::move(host);
  if (++joined_ < nranks_) return;
  complete_ = true;
  WireWriter welcome;
  welcome.U32(static_cast<uint32_t>(nranks_));
  for (const std::string& h : hosts_) welcome.String(h);
  for (int r = 0; r < nranks_; ++r) {
    if (by_rank_[r] != nullptr) Send(*by_rank_[r], MessageType::kWelcome, welcome.data());
  }
}

void RootServer::HandleGather(Conn& c, const Frame& frame) {
  WireReader reader(frame.payload);
  uint64_t round = 0;
  Blob blob;
  if (!reader.U64(&round) || !reader.Bytes(kMaxBlobBytes, &blob) || !reader.AtEnd()) {
    Refuse(c, "malformed gather message");
    return;
  }
  if (!complete_) {
    Refuse(c, "AllGather before the rendezvous completed");
    return;
  }
  if (!left_reason_.empty()) {
    Refuse(c, left_reason_);
    return;
  }
  if (round != round_ || contributions_[c.rank].has_value()) {
    Refuse(c, absl::StrCat("AllGather round ", round, " from ", Describe(c.rank),
                           " does not match the root's round ", round_,
                           " (ranks called AllGather a different number of times)"));
    return;
  }
  if (contributed_ == 0) round_deadline_ = Clock::now() + options_.timeout;
  contributions_[c.rank] = std::move(blob);
  if (++contributed_ < nranks_) return;

  size_t total = 0;
  for (const auto& b : contributions_) total += b->size() + 4;
  if (total > kMaxGatherResultBytes) {
    FailAll(absl::StrCat("bootstrap AllGather round ", round_, " would return ", total,
                         " bytes, above the limit of ", kMaxGatherResultBytes));
    return;
  }
  WireWriter result;
  result.U64(round_).U32(static_cast<uint32_t>(nranks_));
  for (auto& b : contributions_) {
    result.Bytes(*b);
    b.reset();
  }
  contributed_ = 0;
  ++round_;
  round_deadline_ = Clock::time_point::max();
  for (int r = 0; r < nranks_; ++r) {
    if (by_rank_[r] != nullptr) Send(*by_rank_[r], MessageType::kGatherResult, result.data());
  }
}

}  // namespace

void ServeRendezvous(UniqueFd listen_fd, std::vector<std::byte> secret, RootOptions options) {
  pthread_setname_np(pthread_self(), "braid-root");  // visible in top -H, gdb and tests
  RootServer server(std::move(listen_fd), std::move(secret), options);
  server.Run();
}

}  // namespace braid::bootstrap
