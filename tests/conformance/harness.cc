#include "tests/conformance/harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"

namespace braid::conformance {
namespace {

using Clock = std::chrono::steady_clock;

bool WriteAll(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool ReadAll(int fd, void* data, size_t size, Deadline deadline) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    pollfd pfd{fd, POLLIN, 0};
    if (deadline.expired()) return false;
    if (poll(&pfd, 1, deadline.remaining_ms(100)) <= 0) continue;
    ssize_t n = read(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool WriteBlob(int fd, const std::vector<std::byte>& blob) {
  uint32_t n = static_cast<uint32_t>(blob.size());
  return WriteAll(fd, &n, sizeof(n)) && WriteAll(fd, blob.data(), blob.size());
}

bool ReadBlob(int fd, std::vector<std::byte>* blob, Deadline deadline) {
  uint32_t n = 0;
  if (!ReadAll(fd, &n, sizeof(n), deadline) || n > (1u << 20)) return false;
  blob->resize(n);
  return ReadAll(fd, blob->data(), n, deadline);
}

int g_result_fd = -1;

void ReportAndExit(const absl::Status& status) {
  std::string text = status.ok() ? "OK" : status.ToString();
  WriteAll(g_result_fd, text.data(), text.size());
  close(g_result_fd);
  _exit(status.ok() ? 0 : 1);
}

[[noreturn]] void RunChild(const std::string& transport, ChildSpec& spec, int child, int blob_out,
                           int blobs_in, Deadline deadline) {
  ChildEnv env;
  env.child = child;
  env.context = spec.context;
  auto body = [&]() -> absl::Status {
    const TransportEntry* entry = nullptr;
    for (const auto& e : TransportRegistry()) {
      if (e.name == transport) entry = &e;
    }
    if (entry == nullptr) return absl::NotFoundError(absl::StrCat("no transport ", transport));
    BRAID_ASSIGN_OR_RETURN(env.transport, entry->create(env.context));
    BRAID_ASSIGN_OR_RETURN(Blob blob, env.transport->listen());
    if (!WriteBlob(blob_out, blob)) return absl::InternalError("child: writing blob to parent");
    uint32_t count = 0;
    if (!ReadAll(blobs_in, &count, sizeof(count), deadline)) {
      return absl::InternalError("child: reading blobs from parent");
    }
    env.blobs.resize(count);
    for (auto& b : env.blobs) {
      if (!ReadBlob(blobs_in, &b, deadline)) return absl::InternalError("child: reading blob");
    }
    if (spec.connect_all) BRAID_RETURN_IF_ERROR(env.ConnectAll(deadline));
    BRAID_RETURN_IF_ERROR(spec.body(env));
    env.conns.clear();
    env.transport.reset();
    return absl::OkStatus();
  };
  ReportAndExit(body());
  _exit(2);
}

}  // namespace

absl::Status ChildEnv::Connect(std::span<const int> peers, Deadline deadline) {
  BRAID_ASSIGN_OR_RETURN(auto connections, transport->connect(peers, blobs, deadline));
  conns.resize(context.nranks);
  for (auto& c : connections) {
    int peer = c->peer();
    conns.at(peer) = std::move(c);
  }
  return absl::OkStatus();
}

absl::Status ChildEnv::ConnectAll(Deadline deadline) {
  std::vector<int> peers;
  for (int r = 0; r < context.nranks; ++r) {
    if (r != context.rank) peers.push_back(r);
  }
  return Connect(peers, deadline);
}

absl::Status ChildEnv::WaitAll(std::span<const RequestPtr> requests, Deadline deadline) {
  auto spin_until = Clock::now() + std::chrono::microseconds(50);
  while (true) {
    BRAID_RETURN_IF_ERROR(transport->progress());
    bool all = true;
    for (const auto& r : requests) all = all && r->done();
    if (all) return absl::OkStatus();
    if (deadline.expired()) return absl::DeadlineExceededError("test wait timed out");
    if (Clock::now() >= spin_until) {
      transport->prepare_to_sleep();
      pollfd pfd{transport->wait_fd(), POLLIN, 0};
      poll(&pfd, 1, deadline.remaining_ms(100));
    }
  }
}

absl::StatusOr<size_t> ChildEnv::WaitAny(std::span<const RequestPtr> requests,
                                         std::vector<bool>& seen, Deadline deadline) {
  while (true) {
    BRAID_RETURN_IF_ERROR(transport->progress());
    for (size_t i = 0; i < requests.size(); ++i) {
      if (!seen[i] && requests[i]->done()) {
        seen[i] = true;
        return i;
      }
    }
    if (deadline.expired()) return absl::DeadlineExceededError("test wait-any timed out");
    transport->prepare_to_sleep();
    pollfd pfd{transport->wait_fd(), POLLIN, 0};
    poll(&pfd, 1, deadline.remaining_ms(100));
  }
}

absl::Status ChildEnv::Drive(std::chrono::milliseconds duration) {
  auto deadline = Deadline::After(duration);
  while (!deadline.expired()) {
    BRAID_RETURN_IF_ERROR(transport->progress());
    transport->prepare_to_sleep();
    pollfd pfd{transport->wait_fd(), POLLIN, 0};
    poll(&pfd, 1, deadline.remaining_ms(10));
  }
  return transport->progress();
}

void ChildEnv::ExitNow() { ReportAndExit(absl::OkStatus()); _exit(0); }

std::vector<ChildOutcome> RunChildren(const std::string& transport, std::vector<ChildSpec> specs,
                                      std::chrono::seconds timeout) {
  const size_t n = specs.size();
  auto deadline = Deadline::After(timeout);
  std::vector<ChildOutcome> outcomes(n);
  std::vector<pid_t> pids(n, -1);
  std::vector<int> blob_rd(n, -1), blobs_wr(n, -1), result_rd(n, -1);
  for (size_t i = 0; i < n; ++i) {
    int p1[2], p2[2], p3[2];
    if (pipe2(p1, O_CLOEXEC) || pipe2(p2, O_CLOEXEC) || pipe2(p3, O_CLOEXEC)) abort();
    pid_t pid = fork();
    if (pid == 0) {
      close(p1[0]);
      close(p2[1]);
      close(p3[0]);
      for (size_t j = 0; j < i; ++j) {
        close(blob_rd[j]);
        close(blobs_wr[j]);
        close(result_rd[j]);
      }
      g_result_fd = p3[1];
      RunChild(transport, specs[i], static_cast<int>(i), p1[1], p2[0], deadline);
    }
    pids[i] = pid;
    close(p1[1]);
    close(p2[0]);
    close(p3[1]);
    blob_rd[i] = p1[0];
    blobs_wr[i] = p2[1];
    result_rd[i] = p3[0];
  }
  // Relay the blobs: collect every child's, then send all of them to everyone.
  std::vector<Blob> blobs(n);
  bool relayed = true;
  for (size_t i = 0; i < n && relayed; ++i) relayed = ReadBlob(blob_rd[i], &blobs[i], deadline);
  if (relayed) {
    for (size_t i = 0; i < n; ++i) {
      uint32_t count = static_cast<uint32_t>(n);
      WriteAll(blobs_wr[i], &count, sizeof(count));
      for (auto& b : blobs) WriteBlob(blobs_wr[i], b);
    }
  }
  // Collect results until every result pipe closes or the deadline passes.
  std::vector<std::string> text(n);
  std::vector<bool> open(n, true);
  size_t left = n;
  while (left > 0 && !deadline.expired()) {
    std::vector<pollfd> fds;
    for (size_t i = 0; i < n; ++i) fds.push_back({open[i] ? result_rd[i] : -1, POLLIN, 0});
    poll(fds.data(), fds.size(), deadline.remaining_ms(200));
    for (size_t i = 0; i < n; ++i) {
      if (!open[i] || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      ssize_t got = read(result_rd[i], buf, sizeof(buf));
      if (got > 0) {
        text[i].append(buf, static_cast<size_t>(got));
      } else {
        open[i] = false;
        --left;
      }
    }
  }
  for (size_t i = 0; i < n; ++i) {
    int status = 0;
    pid_t done = 0;
    while (!deadline.expired() && (done = waitpid(pids[i], &status, WNOHANG)) == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (done != pids[i]) {
      kill(pids[i], SIGKILL);
      waitpid(pids[i], &status, 0);
      outcomes[i] = {false, absl::StrCat("child ", i, " timed out after ", timeout.count(),
                                         "s and was killed; partial report: ", text[i])};
    } else if (WIFSIGNALED(status)) {
      outcomes[i] = {false, absl::StrCat("child ", i, " died of signal ", WTERMSIG(status),
                                         "; report: ", text[i])};
    } else {
      bool ok = WEXITSTATUS(status) == 0 && text[i] == "OK";
      outcomes[i] = {ok, absl::StrCat("child ", i, " exit ", WEXITSTATUS(status), ": ", text[i])};
    }
    close(blob_rd[i]);
    close(blobs_wr[i]);
    close(result_rd[i]);
  }
  return outcomes;
}

TransportContext MakeContext(int rank, int nranks, uint64_t comm_id, uint8_t secret_seed) {
  TransportContext context;
  // The environment's BRAID_* settings (e.g. BRAID_OFI_PROVIDER set per CTest entry) apply.
  context.config = ParseConfig().value_or(Config{});
  context.rank = rank;
  context.nranks = nranks;
  context.comm_id = comm_id;
  for (int i = 0; i < 16; ++i) context.secret.push_back(std::byte(secret_seed * 31 + i * 7));
  // One host, as the children really are: host-local transports (shm) refuse other hosts.
  for (int r = 0; r < nranks; ++r) context.hosts.push_back("testhost");
  context.config.timeout = std::chrono::seconds(60);
  return context;
}

std::vector<ChildOutcome> RunRanks(const std::string& transport, int nranks, const Body& body,
                                   std::chrono::seconds timeout,
                                   const std::function<void(Config&)>& tweak) {
  std::vector<ChildSpec> specs;
  uint64_t comm_id = 0x5eed0000u + static_cast<uint64_t>(getpid());
  for (int r = 0; r < nranks; ++r) {
    ChildSpec spec;
    spec.context = MakeContext(r, nranks, comm_id, 1);
    if (tweak) tweak(spec.context.config);
    // The composite routes by host: pairs of ranks share a fake host, so both halves run.
    if (transport == "hybrid") {
      for (int q = 0; q < nranks; ++q) spec.context.hosts[q] = absl::StrCat("testhost", q / 2);
    }
    spec.body = body;
    specs.push_back(std::move(spec));
  }
  return RunChildren(transport, std::move(specs), timeout);
}

static inline uint8_t PatternByte(size_t i, size_t size, int rank, uint64_t tag) {
  return static_cast<uint8_t>(i * 131 + (i >> 8) * 7 + (i >> 16) * 13 + size * 5 +
                              static_cast<size_t>(rank) * 17 + tag * 3);
}

void FillPattern(std::byte* data, size_t size, int rank, uint64_t tag) {
  for (size_t i = 0; i < size; ++i) data[i] = std::byte(PatternByte(i, size, rank, tag));
}

std::string CheckPattern(const std::byte* data, size_t size, int rank, uint64_t tag) {
  for (size_t i = 0; i < size; ++i) {
    uint8_t want = PatternByte(i, size, rank, tag);
    if (static_cast<uint8_t>(data[i]) != want) {
      return absl::StrCat("byte ", i, " of ", size, " (from rank ", rank, ", tag ", tag, ") is ",
                          static_cast<int>(data[i]), ", expected ", want);
    }
  }
  return "";
}

std::vector<std::string> UsableTransports() {
  std::vector<std::string> names;
  // BRAID_TRANSPORT in the environment makes a transport that only runs when forced usable.
  Config config = ParseConfig().value_or(Config{});
  for (const auto& entry : TransportRegistry()) {
    if (entry.probe(config).usable) names.push_back(entry.name);
  }
  return names;
}

}  // namespace braid::conformance
