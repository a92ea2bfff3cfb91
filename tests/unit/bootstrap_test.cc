// Bootstrap: real multi-process rendezvous through a root over loopback sockets (forked ranks),
// including hostile and broken peers. The id and wire encodings: bootstrap_wire_test.cc.
#include "bootstrap/bootstrap.h"

#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "bootstrap/tcp/root.h"
#include "bootstrap/tcp/socket.h"
#include "bootstrap/tcp/wire.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace braid {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// Runs body(i) in `n` forked children; returns each child's error text ("" = success). A child
// still running after `timeout` is killed and reported.
std::vector<std::string> ForkEach(int n, const std::function<std::string(int)>& body,
                                  std::chrono::seconds timeout = 60s) {
  std::vector<pid_t> pids;
  std::vector<int> pipes;
  for (int i = 0; i < n; ++i) {
    int fds[2];
    if (::pipe(fds) != 0) std::abort();
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(fds[0]);
      std::string error = body(i);
      if (!error.empty()) (void)!::write(fds[1], error.data(), error.size());
      ::close(fds[1]);
      ::_exit(error.empty() ? 0 : 1);
    }
    ::close(fds[1]);
    pids.push_back(pid);
    pipes.push_back(fds[0]);
  }
  std::vector<std::string> results(n);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (int i = 0; i < n; ++i) {
    char buffer[4096];
    while (true) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{pipes[i], POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
        ::kill(pids[i], SIGKILL);
        results[i] = "child timed out";
        break;
      }
      ssize_t got = ::read(pipes[i], buffer, sizeof(buffer));
      if (got <= 0) break;
      results[i].append(buffer, static_cast<size_t>(got));
    }
    ::close(pipes[i]);
    int status = 0;
    ::waitpid(pids[i], &status, 0);
    if (results[i].empty() && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
      results[i] = absl::StrCat("child exited abnormally, status ", status);
    }
  }
  return results;
}

std::string Hostname() {
  char name[256] = {};
  ::gethostname(name, sizeof(name) - 1);
  return name;
}

// A deterministic blob whose size depends on rank and round (0 bytes included).
Blob MakeBlob(int rank, int round) {
  size_t size = static_cast<size_t>(rank) * 1000 + static_cast<size_t>(round) * 37;
  if (round == 2 && rank == 1) size = bootstrap::kMaxBlobBytes;  // exactly the limit.
  Blob blob(size);
  for (size_t i = 0; i < size; ++i)
    blob[i] = static_cast<std::byte>((i * 31 + rank * 7 + round) & 0xff);
  return blob;
}

// One rank's whole life: join, check hosts, three AllGather rounds, close.
std::string RankBody(const UniqueId& id, int rank, int nranks) {
  auto joined = Bootstrap::Join(id, rank, nranks, Deadline::After(30s));
  if (!joined.ok()) return std::string(joined.status().message());
  Bootstrap& b = **joined;
  if (b.hosts().size() != static_cast<size_t>(nranks)) return "wrong hosts() size";
  for (const std::string& h : b.hosts()) {
    if (h != Hostname()) return absl::StrCat("unexpected host ", h);
  }
  for (int round = 0; round < 3; ++round) {
    auto all = b.AllGather(MakeBlob(rank, round), Deadline::After(30s));
    if (!all.ok()) return std::string(all.status().message());
    if (all->size() != static_cast<size_t>(nranks)) return "wrong AllGather size";
    for (int r = 0; r < nranks; ++r) {
      if ((*all)[r] != MakeBlob(r, round)) return absl::StrCat("blob of rank ", r, " differs");
    }
  }
  b.Close();
  auto after = b.AllGather(Blob{}, Deadline::After(1s));
  if (after.ok()) return "AllGather after Close() succeeded";
  return "";
}

std::vector<std::string> RunRendezvous(const UniqueId& id, int nranks) {
  return ForkEach(nranks, [&](int rank) { return RankBody(id, rank, nranks); });
}

void ExpectAllOk(const std::vector<std::string>& results) {
  for (size_t i = 0; i < results.size(); ++i) EXPECT_EQ(results[i], "") << "rank " << i;
}

uint16_t UnusedPort() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

UniqueFd RawConnect(const UniqueId& id) {
  auto fd = bootstrap::ConnectWithRetry(id.root_host, id.root_port, Deadline::After(5s), "");
  EXPECT_TRUE(fd.ok()) << fd.status();
  return fd.ok() ? std::move(*fd) : UniqueFd();
}

// True if the root closes `fd` (EOF after whatever it sent) within `within`.
bool ClosedByRoot(int fd, std::chrono::milliseconds within) {
  auto deadline = std::chrono::steady_clock::now() + within;
  char buffer[256];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return true;
  }
  return false;
}

class RendezvousTest : public ::testing::TestWithParam<int> {};

TEST_P(RendezvousTest, AllGatherOfDifferentSizes) {
  auto id = StartRoot("127.0.0.1", 0);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->root_host, "127.0.0.1");
  EXPECT_NE(id->root_port, 0);
  EXPECT_EQ(id->secret.size(), 16u);
  ExpectAllOk(RunRendezvous(*id, GetParam()));
}

INSTANTIATE_TEST_SUITE_P(Ranks, RendezvousTest, ::testing::Values(1, 3, 5));

TEST(Bootstrap, RootInParentRankInParent) {
  // The process that hosts the root is also rank 0 (what braidGetUniqueId callers do).
  auto id = StartRoot("127.0.0.1", 0);
  ASSERT_TRUE(id.ok()) << id.status();
  std::string parent_result;
  std::thread parent([&] { parent_result = RankBody(*id, 0, 2); });
  auto results = ForkEach(1, [&](int) { return RankBody(*id, 1, 2); });
  parent.join();
  EXPECT_EQ(parent_result, "");
  ExpectAllOk(results);
}

TEST(Bootstrap, WrongSecretIsRefusedAndRendezvousCompletes) {
  auto id = StartRoot("127.0.0.1", 0);
  ASSERT_TRUE(id.ok()) << id.status();
  UniqueId tampered = *id;
  tampered.secret[3] ^= std::byte{0x40};
  std::string refused;
  std::thread intruder([&] {
    auto b = Bootstrap::Join(tampered, 0, 2, Deadline::After(10s));
    refused = b.ok() ? "joined!" : std::string(b.status().message());
  });
  auto results = RunRendezvous(*id, 2);
  intruder.join();
  ExpectAllOk(results);
  EXPECT_THAT(refused, HasSubstr("wrong secret"));
  EXPECT_THAT(refused, HasSubstr(absl::StrCat("127.0.0.1:", id->root_port)));
}

TEST(Bootstrap, GarbageSilentAndOversizedPeersDoNotDisturb) {
  bootstrap::RootOptions options;
  options.handshake_timeout = 500ms;
  auto id = bootstrap::StartRootWithOptions("127.0.0.1", 0, {}, options);
  ASSERT_TRUE(id.ok()) << id.status();

  UniqueFd silent = RawConnect(*id);
  UniqueFd garbage = RawConnect(*id);
  std::string junk(1000, 'x');
  ASSERT_EQ(::send(garbage.get(), junk.data(), junk.size(), MSG_NOSIGNAL), 1000);
  UniqueFd oversized = RawConnect(*id);
  std::vector<std::byte> huge = bootstrap::EncodeFrame(bootstrap::MessageType::kProof, {});
  huge[8] = std::byte{0};
  huge[11] = std::byte{0x40};  // claims a 1 GiB proof.
  ASSERT_EQ(::send(oversized.get(), huge.data(), huge.size(), MSG_NOSIGNAL), 12);
  UniqueFd truncated = RawConnect(*id);
  std::vector<std::byte> proof = bootstrap::EncodeFrame(bootstrap::MessageType::kProof,
                                                        bootstrap::WireWriter().U64(42).data());
  ASSERT_EQ(::send(truncated.get(), proof.data(), 15, MSG_NOSIGNAL), 15);

  ExpectAllOk(RunRendezvous(*id, 3));
  EXPECT_TRUE(ClosedByRoot(garbage.get(), 2000ms));
  EXPECT_TRUE(ClosedByRoot(oversized.get(), 2000ms));
}

TEST(Bootstrap, SilentConnectionIsDroppedAfterHandshakeTimeout) {
  bootstrap::RootOptions options;
  options.handshake_timeout = 300ms;
  auto id = bootstrap::StartRootWithOptions("127.0.0.1", 0, {}, options);
  ASSERT_TRUE(id.ok()) << id.status();
  UniqueFd silent = RawConnect(*id);
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(ClosedByRoot(silent.get(), 3000ms));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 250ms);
  // The root still serves the real rendezvous afterwards.
  ExpectAllOk(RunRendezvous(*id, 2));
}

TEST(Bootstrap, DuplicateRankIsRejected) {
  auto id = StartRoot("127.0.0.1", 0);
  ASSERT_TRUE(id.ok()) << id.status();
  // Two processes both claim rank 0; the parent is rank 1 and stays joined until both are done,
  // so whichever rank 0 arrives second is refused whatever the timing.
  std::unique_ptr<Bootstrap> parent;
  std::thread parent_join([&] {
    auto b = Bootstrap::Join(*id, 1, 2, Deadline::After(30s));
    ASSERT_TRUE(b.ok()) << b.status();
    parent = std::move(*b);
  });
  auto results = ForkEach(2, [&](int) {
    auto b = Bootstrap::Join(*id, 0, 2, Deadline::After(30s));
    return b.ok() ? std::string() : std::string(b.status().message());
  });
  parent_join.join();
  int refused = 0;
  for (const std::string& r : results) {
    if (r.empty()) continue;
    ++refused;
    EXPECT_THAT(r, HasSubstr("duplicate rank: rank 0 already joined"));
  }
  EXPECT_EQ(refused, 1);
  ASSERT_NE(parent, nullptr);
  EXPECT_EQ(parent->hosts().size(), 2u);
}

TEST(Bootstrap, InconsistentRankCountIsRejected) {
  auto id = StartRoot("127.0.0.1", 0);
  ASSERT_TRUE(id.ok()) << id.status();
  // Rank 0 says nranks=2, rank 1 says nranks=3: whichever arrives second is refused, whatever
  // the timing; then the missing ranks of the winner's world complete the rendezvous.
  struct Claim {
    int rank, nranks;
    absl::StatusOr<std::unique_ptr<Bootstrap>> result = absl::UnknownError("pending");
    std::atomic<bool> done{false};
  };
  Claim claims[2] = {{0, 2}, {1, 3}};
  std::vector<std::thread> threads;
  for (Claim& c : claims) {
    threads.emplace_back([&id, &c] {
      c.result = Bootstrap::Join(*id, c.rank, c.nranks, Deadline::After(30s));
      c.done = true;
    });
  }
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!claims[0].done && !claims[1].done && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  const int loser = claims[0].done ? 0 : 1;
  ASSERT_TRUE(claims[loser].done);
  ASSERT_FALSE(claims[loser].result.ok());
  EXPECT_THAT(claims[loser].result.status().message(),
              HasSubstr("every rank must pass the same nranks"));
  const Claim& winner = claims[1 - loser];
  std::vector<std::unique_ptr<Bootstrap>> others;
  std::vector<std::thread> completers;
  std::mutex mutex;
  for (int r = 0; r < winner.nranks; ++r) {
    if (r == winner.rank) continue;
    completers.emplace_back([&, r] {
      auto b = Bootstrap::Join(*id, r, winner.nranks, Deadline::After(30s));
      EXPECT_TRUE(b.ok()) << b.status();
      std::lock_guard<std::mutex> lock(mutex);
      if (b.ok()) others.push_back(std::move(*b));
    });
  }
  for (auto& t : completers) t.join();
  for (auto& t : threads) t.join();
  ASSERT_TRUE(winner.result.ok()) << winner.result.status();
  EXPECT_EQ((*winner.result)->hosts().size(), static_cast<size_t>(winner.nranks));
}

TEST(Bootstrap, JoinWithoutRootTimesOutWithinDeadline) {
  UniqueId id{"127.0.0.1", UnusedPort(), std::vector<std::byte>(16, std::byte{1})};
  auto start = std::chrono::steady_clock::now();
  auto b = Bootstrap::Join(id, 0, 2, Deadline::After(1s));
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(b.status().message(),
              HasSubstr(absl::StrCat("could not reach the bootstrap root at 127.0.0.1:",
                                     id.root_port, " within 1 s")));
  EXPECT_THAT(b.status().message(),
              HasSubstr("Remedy: check BRAID_ROOT/MASTER_ADDR and that rank 0 is running"));
  EXPECT_GE(took, 900ms);
  EXPECT_LT(took, 2500ms);  // generous: CI machines are busy.
}

TEST(Bootstrap, RanksMayStartBeforeTheRootListens) {
  uint16_t port = UnusedPort();
  std::vector<std::byte> secret(16, std::byte{7});
  UniqueId id{"127.0.0.1", port, secret};
  std::thread late_root([&] {
    std::this_thread::sleep_for(400ms);
    auto root = StartRoot("127.0.0.1", port, secret);
    EXPECT_TRUE(root.ok()) << root.status();
  });
  auto results = RunRendezvous(id, 3);
  late_root.join();
  ExpectAllOk(results);
}

TEST(Bootstrap, FixedPortInUseGivesRemedy) {
  UniqueFd holder(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(holder.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(::listen(holder.get(), 1), 0);
  socklen_t len = sizeof(a);
  ::getsockname(holder.get(), reinterpret_cast<sockaddr*>(&a), &len);
  auto root = StartRoot("127.0.0.1", ntohs(a.sin_port), std::vector<std::byte>(16));
  ASSERT_FALSE(root.ok());
  EXPECT_THAT(root.status().message(), HasSubstr("Address already in use"));
  EXPECT_THAT(root.status().message(), HasSubstr("BRAID_ROOT or MASTER_PORT"));
}

TEST(Bootstrap, RankLeavingFailsOthersAllGatherClearly) {
  auto id = StartRoot("127.0.0.1", 0);
  ASSERT_TRUE(id.ok()) << id.status();
  auto results = ForkEach(2, [&](int rank) -> std::string {
    auto b = Bootstrap::Join(*id, rank, 2, Deadline::After(30s));
    if (!b.ok()) return std::string(b.status().message());
    if (rank == 1) {
      (*b)->Close();
      return "";
    }
    auto all = (*b)->AllGather(Blob(8), Deadline::After(10s));
    if (all.ok()) return "AllGather succeeded without rank 1";
    if (all.status().message().find("rank 1") == std::string::npos ||
        all.status().message().find("has left the rendezvous") == std::string::npos) {
      return absl::StrCat("unexpected error: ", all.status().message());
    }
    return "";
  });
  ExpectAllOk(results);
}

TEST(Bootstrap, RootTimeoutNamesMissingRanks) {
  bootstrap::RootOptions options;
  options.timeout = 500ms;
  auto id = bootstrap::StartRootWithOptions("127.0.0.1", 0, {}, options);
  ASSERT_TRUE(id.ok()) << id.status();
  auto b = Bootstrap::Join(*id, 0, 3, Deadline::After(10s));
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(), HasSubstr("waiting for ranks 1, 2 of 3 to join"));
}

TEST(Bootstrap, JoinDeadlineWhileWaitingForOtherRanks) {
  auto id = StartRoot("127.0.0.1", 0);
  ASSERT_TRUE(id.ok()) << id.status();
  auto b = Bootstrap::Join(*id, 0, 2, Deadline::After(500ms));
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(b.status().message(), HasSubstr("not all 2 ranks arrived within"));
}

TEST(Bootstrap, OversizedContributionIsRefusedLocally) {
  auto id = StartRoot("127.0.0.1", 0);
  ASSERT_TRUE(id.ok()) << id.status();
  auto b = Bootstrap::Join(*id, 0, 1, Deadline::After(10s));
  ASSERT_TRUE(b.ok()) << b.status();
  auto all = (*b)->AllGather(Blob(bootstrap::kMaxBlobBytes + 1), Deadline::After(5s));
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.status().code(), absl::StatusCode::kInvalidArgument);
  auto fine = (*b)->AllGather(Blob(3, std::byte{9}), Deadline::After(5s));
  ASSERT_TRUE(fine.ok()) << fine.status();
  EXPECT_EQ((*fine)[0], Blob(3, std::byte{9}));
}

// Root threads of this process, by the name the root gives its thread (sanitizer runtimes
// start threads of their own, so a plain thread count would not do).
int ThreadCount() {
  int count = 0;
  if (DIR* dir = ::opendir("/proc/self/task")) {
    while (dirent* e = ::readdir(dir)) {
      if (e->d_name[0] == '.') continue;
      std::ifstream comm(std::string("/proc/self/task/") + e->d_name + "/comm");
      std::string name;
      std::getline(comm, name);
      count += name == "braid-root";
    }
    ::closedir(dir);
  }
  return count;
}

TEST(Bootstrap, RootThreadExitsOnceEveryRankClosed) {
  // Earlier tests' roots have all finished or are finishing; wait for a stable count.
  std::this_thread::sleep_for(200ms);
  const int baseline = ThreadCount();
  auto id = StartRoot("127.0.0.1", 0);
  ASSERT_TRUE(id.ok()) << id.status();
  auto started = std::chrono::steady_clock::now() + 2s;  // the thread names itself first thing
  while (ThreadCount() < baseline + 1 && std::chrono::steady_clock::now() < started) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(ThreadCount(), baseline + 1);
  ExpectAllOk(RunRendezvous(*id, 3));
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (ThreadCount() > baseline && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_LE(ThreadCount(), baseline);
}

TEST(Bootstrap, ProcessMayExitWhileRootIsAlive) {
  auto results = ForkEach(
      1,
      [](int) -> std::string {
        auto id = StartRoot("127.0.0.1", 0);
        if (!id.ok()) return std::string(id.status().message());
        // A rank joined and waiting keeps the root busy; exit() runs static destructors meanwhile.
        UniqueId copy = *id;
        std::thread([copy] { (void)Bootstrap::Join(copy, 0, 2, Deadline::After(30s)); }).detach();
        std::this_thread::sleep_for(100ms);
        std::exit(0);
      },
      10s);
  ExpectAllOk(results);
}

TEST(Bootstrap, InvalidJoinArguments) {
  UniqueId id{"127.0.0.1", 1234, std::vector<std::byte>(16)};
  EXPECT_EQ(Bootstrap::Join(id, 2, 2, Deadline::After(1s)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Bootstrap::Join(id, -1, 2, Deadline::After(1s)).status().code(),
            absl::StatusCode::kInvalidArgument);
  id.secret.clear();
  EXPECT_EQ(Bootstrap::Join(id, 0, 2, Deadline::After(1s)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace braid
