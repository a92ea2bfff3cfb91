#include "tests/multiproc/rank_harness.h"

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <new>
#include <thread>
#include <vector>

namespace braid::testing {
namespace {

FaultState* g_fault = nullptr;

long long NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

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
    if (g_fault) g_fault->ready.fetch_add(1);
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

FaultState* CurrentFault() { return g_fault; }

std::vector<int> ChildPids(int parent) {
  std::vector<int> pids;
  DIR* proc = opendir("/proc");
  if (!proc) return pids;
  while (dirent* entry = readdir(proc)) {
    int pid = atoi(entry->d_name);
    if (pid <= 0) continue;
    std::ifstream stat("/proc/" + std::string(entry->d_name) + "/stat");
    std::string line;
    std::getline(stat, line);
    size_t close = line.rfind(')');  // the command name may contain spaces and parentheses.
    if (close == std::string::npos || close + 2 > line.size()) continue;
    std::istringstream rest(line.substr(close + 2));
    std::string state;
    int ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent) pids.push_back(pid);
  }
  closedir(proc);
  return pids;
}

std::string ResultText(braidResult_t result) {
  return std::string(braidGetErrorString(result)) + ": " + braidGetLastError();
}

std::string RunRanksImpl(int nranks, const RankBody& body, const RankOptions& options,
                         const PerRankOptions& per_rank, const FaultPlan& plan);

std::string RunRanks(int nranks, const RankBody& body, const RankOptions& options) {
  return RunRanksImpl(nranks, body, options, PerRankOptions(), FaultPlan{});
}

std::string RunRanksWithFault(int nranks, const RankBody& body, const RankOptions& options,
                              const FaultPlan& plan) {
  return RunRanksImpl(nranks, body, options, PerRankOptions(), plan);
}

std::string RunRanks(int nranks, const RankBody& body, const RankOptions& options,
                     const PerRankOptions& per_rank) {
  return RunRanksImpl(nranks, body, options, per_rank, FaultPlan{});
}

// Both variants: per-rank settings and an optional fault injected mid-run.
std::string RunRanksImpl(int nranks, const RankBody& body, const RankOptions& options,
                         const PerRankOptions& per_rank, const FaultPlan& plan) {
  braidUniqueId id;
  RootProcess root;
  struct SharedPage {
    FaultState* state = nullptr;
    ~SharedPage() {
      if (state) munmap(state, sizeof(FaultState));
      g_fault = nullptr;
    }
  } shared;
  if (plan.victim >= 0) {
    void* page = mmap(nullptr, sizeof(FaultState), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) return "mmap failed";
    shared.state = g_fault = new (page) FaultState();
  }
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
  bool injected = false, victim_killed = false;
  while (open_fds > 0) {
    if (g_fault && !injected && g_fault->ready.load() == nranks) {
      std::this_thread::sleep_for(std::chrono::milliseconds(plan.delay_ms));
      g_fault->victim.store(plan.victim);
      g_fault->fault_ns.store(NowNs());
      kill(pids[static_cast<size_t>(plan.victim)], plan.signal);
      injected = true;
    }
    if (injected && !victim_killed && open_fds == 1 && fds[static_cast<size_t>(plan.victim)] >= 0) {
      // Every survivor is done: the (stopped) victim goes now.
      kill(pids[static_cast<size_t>(plan.victim)], SIGKILL);
      victim_killed = true;
    }
    std::vector<pollfd> polled;
    for (int fd : fds) polled.push_back({fd, POLLIN, 0});
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    int wait_ms = g_fault && !injected ? 10 : 1000;
    poll(polled.data(), polled.size(), static_cast<int>(std::min<long long>(left, wait_ms)));
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
    if (injected && static_cast<int>(i) == plan.victim) continue;  // its death was the point.
    if (timed_out) line = "killed after the harness timeout of " + std::to_string(options.timeout_seconds) + " s";
    else if (WIFSIGNALED(status)) line = "died from signal " + std::to_string(WTERMSIG(status));
    else if (WEXITSTATUS(status) != 0) line = reports[i].empty() ? "exited with status " + std::to_string(WEXITSTATUS(status)) : reports[i];
    if (!line.empty()) result += "rank " + std::to_string(i) + ": " + line + "\n";
  }
  if (g_fault && !injected) result += "the fault was never injected (not every rank got ready)\n";
  return result;
}

}  // namespace braid::testing
