#include "tests/multiproc/rank_harness.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace braid::testing {
namespace {

void WriteAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

[[noreturn]] void RunChild(int rank, int nranks, const braidUniqueId& id, const RankBody& body,
                           const RankOptions& options, const PerRankOptions& per_rank,
                           int report_fd) {
  for (const auto& [name, value] : options.env) setenv(name.c_str(), value.c_str(), 1);
  if (per_rank.env) {
    for (const auto& [name, value] : per_rank.env(rank)) setenv(name.c_str(), value.c_str(), 1);
  }
  // BRAID_TEST_RANKS_PER_HOST=k (set by CTest for a whole suite) groups ranks k per fake host.
  if (const char* per_host = std::getenv("BRAID_TEST_RANKS_PER_HOST"); per_host && std::atoi(per_host) > 0) {
    std::string name = "fakehost" + std::to_string(rank / std::atoi(per_host));
    setenv("BRAID_HOSTNAME", name.c_str(), 1);
  }
  if (!per_rank.stderr_dir.empty()) {
    std::string path = per_rank.stderr_dir + "/rank" + std::to_string(rank) + ".log";
    if (!freopen(path.c_str(), "w", stderr)) std::_Exit(3);
    setvbuf(stderr, nullptr, _IONBF, 0);
  }
  std::string report;
  braidComm_t comm = nullptr;
  braidResult_t rc = braidCommInitRank(&comm, nranks, id, rank);
  if (rc != braidSuccess) {
    report = "braidCommInitRank: " + ResultText(rc);
  } else {
    report = body(rank, nranks, comm);
    if (options.destroy) braidCommDestroy(comm);
  }
  WriteAll(report_fd, report);
  close(report_fd);
  // exit(), not _Exit(): sanitizers report leaks and set the exit code in atexit handlers.
  std::exit(report.empty() ? 0 : 1);
}

// The rendezvous root is a thread in whichever process calls braidGetUniqueId. Hosting it in a
// helper process keeps this one single-threaded, so forking the ranks is safe (and TSan-clean).
struct RootProcess {
  pid_t pid = -1;
  ~RootProcess() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }
};

std::string StartRootProcess(RootProcess* root, braidUniqueId* id) {
  int fds[2];
  if (pipe(fds) != 0) return "pipe failed";
  root->pid = fork();
  if (root->pid == 0) {
    close(fds[0]);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    braidUniqueId made;
    if (braidGetUniqueId(&made) != braidSuccess) std::_Exit(1);
    WriteAll(fds[1], std::string(made.internal, sizeof(made.internal)));
    close(fds[1]);
    while (true) pause();
  }
  close(fds[1]);
  size_t got = 0;
  while (got < sizeof(id->internal)) {
    ssize_t n = read(fds[0], id->internal + got, sizeof(id->internal) - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fds[0]);
  return got == sizeof(id->internal) ? "" : "the root process could not create a unique id";
}

}  // namespace

std::string ResultText(braidResult_t result) {
  return std::string(braidGetErrorString(result)) + ": " + braidGetLastError();
}

std::string RunRanks(int nranks, const RankBody& body, const RankOptions& options) {
  return RunRanks(nranks, body, options, PerRankOptions());
}

std::string RunRanks(int nranks, const RankBody& body, const RankOptions& options,
                     const PerRankOptions& per_rank) {
  braidUniqueId id;
  RootProcess root;
  if (std::string error = StartRootProcess(&root, &id); !error.empty()) return error;
  std::vector<pid_t> pids;
  std::vector<int> fds;
  for (int rank = 0; rank < nranks; ++rank) {
    int pipe_fds[2];
    if (pipe(pipe_fds) != 0) return "pipe failed";
    pid_t pid = fork();
    if (pid == 0) {
      close(pipe_fds[0]);
      RunChild(rank, nranks, id, body, options, per_rank, pipe_fds[1]);
    }
    close(pipe_fds[1]);
    pids.push_back(pid);
    fds.push_back(pipe_fds[0]);
  }
  // Collect reports until every child closed its pipe, or kill them all at the deadline.
  std::vector<std::string> reports(static_cast<size_t>(nranks));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(options.timeout_seconds);
  size_t open_fds = fds.size();
  bool timed_out = false;
  while (open_fds > 0) {
    std::vector<pollfd> polled;
    for (int fd : fds) polled.push_back({fd, POLLIN, 0});
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    poll(polled.data(), polled.size(), static_cast<int>(std::min<long long>(left, 1000)));
    for (size_t i = 0; i < polled.size(); ++i) {
      if (fds[i] < 0 || !(polled[i].revents & (POLLIN | POLLHUP))) continue;
      char buffer[4096];
      ssize_t n = read(fds[i], buffer, sizeof(buffer));
      if (n > 0) {
        reports[i].append(buffer, static_cast<size_t>(n));
      } else {
        close(fds[i]);
        fds[i] = -1;
        --open_fds;
      }
    }
  }
  std::string result;
  for (size_t i = 0; i < pids.size(); ++i) {
    if (timed_out) kill(pids[i], SIGKILL);
    int status = 0;
    waitpid(pids[i], &status, 0);
    if (fds[i] >= 0) close(fds[i]);
    std::string line;
    if (timed_out) line = "killed after the harness timeout of " + std::to_string(options.timeout_seconds) + " s";
    else if (WIFSIGNALED(status)) line = "died from signal " + std::to_string(WTERMSIG(status));
    else if (WEXITSTATUS(status) != 0) line = reports[i].empty() ? "exited with status " + std::to_string(WEXITSTATUS(status)) : reports[i];
    if (!line.empty()) result += "rank " + std::to_string(i) + ": " + line + "\n";
  }
  return result;
}

}  // namespace braid::testing
