// Hostile input: while ranks create a communicator and run checked random collectives, an
// attacker process connects to every port the job listens on (bootstrap root, transport and
// recovery listeners, found through /proc) with wrong secrets, random bytes, truncated and
// oversized frames, and idle connections. The job must not notice: every rank succeeds with
// correct results.
#include <arpa/inet.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/multiproc/random_ops.h"
#include "tests/multiproc/rank_harness.h"

namespace braid::testing {
namespace {

// Socket inodes of the processes whose parent is `parent`.
std::set<std::string> ChildSocketInodes(pid_t parent) {
  std::set<std::string> inodes;
  for (int pid : ChildPids(parent)) {
    std::string fd_dir = "/proc/" + std::to_string(pid) + "/fd";
    DIR* fds = opendir(fd_dir.c_str());
    if (!fds) continue;
    while (dirent* fd = readdir(fds)) {
      char target[128] = {};
      if (readlink((fd_dir + "/" + fd->d_name).c_str(), target, sizeof(target) - 1) > 0 &&
          std::strncmp(target, "socket:[", 8) == 0) {
        inodes.insert(std::string(target + 8, strlen(target) - 9));
      }
    }
    closedir(fds);
  }
  return inodes;
}

// IPv4 listening ports (host order) whose socket inode is in `inodes`.
std::vector<std::pair<uint32_t, uint16_t>> ListeningPorts(const std::set<std::string>& inodes) {
  std::vector<std::pair<uint32_t, uint16_t>> found;
  std::ifstream tcp("/proc/net/tcp");
  std::string line;
  std::getline(tcp, line);
  while (std::getline(tcp, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues, timer, retrans, uid, timeout, inode;
    fields >> slot >> local >> remote >> state >> queues >> timer >> retrans >> uid >> timeout >> inode;
    if (state != "0A" || !inodes.count(inode)) continue;  // 0A: LISTEN.
    uint32_t address = static_cast<uint32_t>(std::stoul(local.substr(0, 8), nullptr, 16));
    uint16_t port = static_cast<uint16_t>(std::stoul(local.substr(9), nullptr, 16));
    found.push_back({address, port});
  }
  return found;
}

int Connect(uint32_t address, uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = address == 0 ? htonl(INADDR_LOOPBACK) : address;  // /proc is raw order.
  timeval tv{0, 200000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void Put(std::vector<uint8_t>& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

// One attack on one port; idle connections are kept in `idle`.
void Attack(std::mt19937_64& rng, uint32_t address, uint16_t port, std::vector<int>& idle) {
  int fd = Connect(address, port);
  if (fd < 0) return;
  std::vector<uint8_t> bytes;
  switch (rng() % 7) {
    case 0:  // random bytes.
      for (size_t i = 0, n = rng() % 4096 + 1; i < n; ++i) bytes.push_back(static_cast<uint8_t>(rng()));
      break;
    case 1:  // bootstrap frame header claiming a huge payload, then nothing.
      Put(bytes, 0x42445242, 4); Put(bytes, 1, 1); Put(bytes, 3, 1); Put(bytes, 0, 2);
      Put(bytes, 0xFFFFFFFFu, 4);
      break;
    case 2: {  // answer the bootstrap challenge with a wrong proof.
      uint8_t challenge[64];
      recv(fd, challenge, sizeof(challenge), 0);
      Put(bytes, 0x42445242, 4); Put(bytes, 1, 1); Put(bytes, 2, 1); Put(bytes, 0, 2);
      Put(bytes, 8, 4); Put(bytes, rng(), 8);
      break;
    }
    case 3:  // a TCP transport hello with the right shape and a wrong proof.
      Put(bytes, 0x48545242, 4); Put(bytes, 3, 2); Put(bytes, 1, 2); Put(bytes, rng(), 8);
      Put(bytes, 0, 4); Put(bytes, 1, 4); Put(bytes, 0, 4); Put(bytes, 2, 4); Put(bytes, rng(), 8);
      bytes.resize(64);
      break;
    case 4:  // truncated: the first bytes of a header.
      Put(bytes, 0x42445242, 4); Put(bytes, 1, 1);
      break;
    case 5:  // idle: connect and say nothing, for the rest of the test.
      if (idle.size() < 32) {
        idle.push_back(fd);
        return;
      }
      break;
    default: {  // a frame of the shrink agreement without any proof.
      Put(bytes, 0x42445242, 4); Put(bytes, 1, 1); Put(bytes, 9, 1); Put(bytes, 0, 2);
      Put(bytes, 8, 4); Put(bytes, 0, 4); Put(bytes, 1, 4);
      break;
    }
  }
  [[maybe_unused]] ssize_t sent = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  close(fd);
}

// Attacks the ports of `parent`'s children until killed.
[[noreturn]] void AttackerMain(pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  std::mt19937_64 rng(getpid());
  std::vector<int> idle;
  while (true) {
    auto ports = ListeningPorts(ChildSocketInodes(parent));
    // HOSTILE_DEBUG=1 shows that the attacker really finds the job's ports.
    if (getenv("HOSTILE_DEBUG")) fprintf(stderr, "attacker: %zu ports\n", ports.size());
    for (const auto& [address, port] : ports) Attack(rng, address, port, idle);
    std::this_thread::sleep_for(std::chrono::milliseconds(ports.empty() ? 5 : 20));
  }
}

TEST(Hostile, StrangersOnEveryPortDoNotDisturbTheJob) {
  for (int n : {2, 3}) {
    pid_t me = getpid();
    pid_t attacker = fork();
    if (attacker == 0) AttackerMain(me);
    RankOptions options;
    options.env = {{"BRAID_TIMEOUT", "60"}};
    std::string result = RunRanks(n, [](int rank, int nranks, braidComm_t comm) -> std::string {
      std::mt19937_64 rng(42);
      RandomOpLimits limits;
      braidResult_t rc;
      auto until = std::chrono::steady_clock::now() + std::chrono::seconds(4);
      int done = 0;
      // Same op count on every rank: run 40, then keep going in blocks while time remains
      // (decided by rank 0 and broadcast so every rank agrees).
      while (true) {
        for (int i = 0; i < 40; ++i, ++done) {
          if (auto e = RunRandomCollective(rng, rank, nranks, comm, limits, &rc); !e.empty()) {
            return "collective " + std::to_string(done) + ": " + e;
          }
        }
        int more = rank == 0 && std::chrono::steady_clock::now() < until;
        if (braidBroadcast(&more, &more, 1, braidInt32, 0, comm) != braidSuccess) {
          return "broadcast: " + ResultText(braidRemoteError);
        }
        if (!more) break;
      }
      return "";
    }, options);
    kill(attacker, SIGKILL);
    waitpid(attacker, nullptr, 0);
    EXPECT_EQ(result, "") << n << " ranks";
  }
}

}  // namespace
}  // namespace braid::testing
