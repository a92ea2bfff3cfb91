// braidrun: a local launcher. Starts N ranks of one command on this machine with the Braid
// launcher environment set, multiplexes their output line by line, and tears everything down
// as soon as one rank fails, on Ctrl-C/SIGTERM or on --timeout. Across machines use mpirun/srun.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr double kGraceSeconds = 3.0;   // between SIGTERM and SIGKILL when tearing down
constexpr size_t kMaxLine = 64 * 1024;  // longer lines are flushed in pieces

void Usage(FILE* out) {
  std::fprintf(out,
               "Usage: braidrun -n N [--timeout SECONDS] [--] CMD [ARGS...]\n"
               "\n"
               "Starts N ranks of CMD on this machine with BRAID_RANK, BRAID_WORLD_SIZE,\n"
               "BRAID_LOCAL_RANK, BRAID_LOCAL_SIZE and BRAID_ROOT=127.0.0.1:<free port> set.\n"
               "Rank 0's stdout is passed through unchanged; every other line (other ranks'\n"
               "stdout, every rank's stderr) is prefixed with \"[rank R] \".\n"
               "\n"
               "If any rank exits non-zero or is killed by a signal, the others are sent SIGTERM\n"
               "(SIGKILL after %.0f s) and braidrun exits non-zero. Ctrl-C/SIGTERM to braidrun is\n"
               "forwarded to every rank. braidrun is for one machine; across machines launch the\n"
               "same command with mpirun or srun (Braid reads their environment).\n"
               "\n"
               "Options:\n"
               "  -n, -np, --np N       number of ranks (required, >= 1)\n"
               "  --timeout SECONDS     kill every rank and fail after SECONDS\n"
               "  -h, --help            this text\n"
               "\n"
               "Exit status: 0 if every rank exited 0; the first failing rank's exit status\n"
               "(128+signal if it was killed); 124 on --timeout; 128+signal if interrupted.\n",
               kGraceSeconds);
}

double Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      poll(&p, 1, 100);
      continue;
    }
    if (n <= 0) return;  // EPIPE etc: the reader went away; drop the output
    off += static_cast<size_t>(n);
  }
}

// Picks a free TCP port on 127.0.0.1 for the rendezvous root (rank 0 binds it right after).
int PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

struct Stream {
  int fd = -1;
  int out_fd = 1;      // where complete lines go
  std::string prefix;  // "" for rank 0's stdout
  std::string partial;
};

struct Rank {
  pid_t pid = -1;
  bool running = false;
  Stream streams[2];  // stdout, stderr
};

// Emits the complete lines of s->partial (all of it when flush_all).
void EmitLines(Stream* s, bool flush_all) {
  size_t start = 0;
  std::string out;
  for (;;) {
    size_t nl = s->partial.find('\n', start);
    if (nl == std::string::npos) break;
    out += s->prefix;
    out.append(s->partial, start, nl + 1 - start);
    start = nl + 1;
  }
  s->partial.erase(0, start);
  if ((flush_all || s->partial.size() >= kMaxLine) && !s->partial.empty()) {
    out += s->prefix + s->partial + "\n";
    s->partial.clear();
  }
  if (!out.empty()) WriteAll(s->out_fd, out);
}

// Reads what is available; returns false at EOF (and closes the stream).
bool Drain(Stream* s) {
  char buf[65536];
  for (;;) {
    ssize_t n = read(s->fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      EmitLines(s, false);
      return true;
    }
    if (n <= 0) {
      EmitLines(s, true);
      close(s->fd);
      s->fd = -1;
      return false;
    }
    s->partial.append(buf, static_cast<size_t>(n));
    if (s->partial.size() >= kMaxLine) EmitLines(s, false);
  }
}

// A random per-job secret so only this job's ranks can join its rendezvous.
std::string RandomSecret() {
  unsigned char bytes[16] = {};
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (read(fd, bytes, sizeof(bytes)) != static_cast<ssize_t>(sizeof(bytes))) bytes[0] ^= 1;
    close(fd);
  }
  std::string hex;
  for (unsigned char b : bytes) {
    static const char kDigits[] = "0123456789abcdef";
    hex += kDigits[b >> 4];
    hex += kDigits[b & 15];
  }
  return hex;
}

[[noreturn]] void ExecRank(char** cmd, int rank, int nranks, const std::string& root,
                           const std::string& secret, int out_w,
                           int err_w, pid_t parent, const sigset_t& oldmask) {
  // Die with braidrun even if it is SIGKILLed; the race with an already dead parent is closed
  // by the getppid check.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);
  setpgid(0, 0);  // own process group, so teardown reaches the rank's children too
  sigprocmask(SIG_SETMASK, &oldmask, nullptr);
  // A shell that started braidrun in the background left SIGINT/SIGQUIT ignored; ranks must
  // still be stoppable by the signals braidrun forwards.
  for (int s : {SIGPIPE, SIGINT, SIGQUIT, SIGTERM}) signal(s, SIG_DFL);
  if (isatty(STDIN_FILENO) || rank != 0) {
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
  }
  dup2(out_w, STDOUT_FILENO);
  dup2(err_w, STDERR_FILENO);
  setenv("BRAID_RANK", std::to_string(rank).c_str(), 1);
  setenv("BRAID_WORLD_SIZE", std::to_string(nranks).c_str(), 1);
  setenv("BRAID_LOCAL_RANK", std::to_string(rank).c_str(), 1);
  setenv("BRAID_LOCAL_SIZE", std::to_string(nranks).c_str(), 1);
  setenv("BRAID_ROOT", root.c_str(), 1);
  setenv("BRAID_SECRET", secret.c_str(), 1);
  execvp(cmd[0], cmd);
  std::fprintf(stderr, "braidrun: cannot execute '%s': %s\n", cmd[0], std::strerror(errno));
  _exit(127);
}

class Launcher {
 public:
  int Run(char** cmd, int nranks, double timeout) {
    sigset_t mask, oldmask;
    sigemptyset(&mask);
    for (int s : {SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&mask, s);
    sigprocmask(SIG_BLOCK, &mask, &oldmask);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) return Fail("signalfd", 1);

    int port = PickFreePort();
    if (port < 0) return Fail("cannot find a free port on 127.0.0.1", 1);
    std::string root = "127.0.0.1:" + std::to_string(port);
    const std::string secret = RandomSecret();
    ranks_.resize(nranks);
    pid_t self = getpid();
    for (int r = 0; r < nranks; ++r) {
      int out[2], err[2];
      if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) return Fail("pipe", 1);
      pid_t pid = fork();
      if (pid < 0) {
        std::perror("braidrun: fork");
        Shutdown(SIGKILL);
        exit_code_ = 1;
        break;
      }
      if (pid == 0) ExecRank(cmd, r, nranks, root, secret, out[1], err[1], self, oldmask);
      setpgid(pid, pid);  // also here, so a kill right after fork reaches the group
      close(out[1]);
      close(err[1]);
      Rank& rk = ranks_[r];
      rk.pid = pid;
      rk.running = true;
      std::string prefix = "[rank " + std::to_string(r) + "] ";
      rk.streams[0] = Stream{out[0], STDOUT_FILENO, r == 0 ? "" : prefix, {}};
      rk.streams[1] = Stream{err[0], STDERR_FILENO, prefix, {}};
      for (Stream& s : rk.streams) fcntl(s.fd, F_SETFL, fcntl(s.fd, F_GETFL) | O_NONBLOCK);
    }
    if (timeout > 0) timeout_at_ = Now() + timeout;
    Loop(sfd);
    close(sfd);
    return exit_code_;
  }

 private:
  int Fail(const char* what, int code) {
    std::fprintf(stderr, "braidrun: %s: %s\n", what, std::strerror(errno));
    return code;
  }

  void Shutdown(int sig) {
    if (!shutting_down_) {
      shutting_down_ = true;
      kill_at_ = Now() + kGraceSeconds;
    }
    for (Rank& r : ranks_) {
      if (r.pid > 0 && r.running) kill(-r.pid, sig);
    }
  }

  void Reap() {
    for (;;) {
      int status = 0;
      pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid <= 0) return;
      for (size_t i = 0; i < ranks_.size(); ++i) {
        Rank& r = ranks_[i];
        if (r.pid != pid) continue;
        r.running = false;
        // Anything the rank left behind in its group (sh's children...) goes too.
        kill(-r.pid, SIGKILL);
        bool failed = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
        if (!failed) break;
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (!shutting_down_) {
          if (WIFEXITED(status)) {
            std::fprintf(stderr, "braidrun: rank %zu exited with status %d\n", i,
                         WEXITSTATUS(status));
          } else {
            std::fprintf(stderr, "braidrun: rank %zu killed by signal %d (%s)\n", i,
                         WTERMSIG(status), strsignal(WTERMSIG(status)));
          }
          exit_code_ = code;
          Shutdown(SIGTERM);
        } else if (exit_code_ == 0) {
          exit_code_ = code;
        }
        break;
      }
    }
  }

  bool AnyRunning() const {
    for (const Rank& r : ranks_)
      if (r.running) return true;
    return false;
  }

  void Loop(int sfd) {
    double drain_until = -1;  // once every rank exited: how long to wait for stray writers
    for (;;) {
      std::vector<pollfd> fds{{sfd, POLLIN, 0}};
      std::vector<Stream*> streams{nullptr};
      for (Rank& r : ranks_) {
        for (Stream& s : r.streams) {
          if (s.fd < 0) continue;
          fds.push_back({s.fd, POLLIN, 0});
          streams.push_back(&s);
        }
      }
      bool running = AnyRunning();
      if (!running) {
        if (fds.size() == 1) return;
        if (drain_until < 0) drain_until = Now() + 0.5;
        if (Now() >= drain_until) {
          for (Stream* s : streams)
            if (s) EmitLines(s, true), close(s->fd), s->fd = -1;
          return;
        }
      }
      double now = Now();
      double next = running ? 1e300 : drain_until;
      if (timeout_at_ > 0 && !shutting_down_) next = std::min(next, timeout_at_);
      if (shutting_down_ && running) next = std::min(next, kill_at_);
      int wait_ms = next >= 1e299 ? -1 : static_cast<int>(std::max(0.0, next - now) * 1000) + 1;
      int n = poll(fds.data(), fds.size(), wait_ms);
      if (n < 0 && errno != EINTR) {
        std::perror("braidrun: poll");
        Shutdown(SIGKILL);
      }
      if (n > 0) {
        // Output first, so a rank's last words come before braidrun's report of its exit.
        for (size_t i = 1; i < fds.size(); ++i)
          if (fds[i].revents) Drain(streams[i]);
        if (fds[0].revents & POLLIN) HandleSignals(sfd);
      }
      now = Now();
      if (timeout_at_ > 0 && !shutting_down_ && now >= timeout_at_ && AnyRunning()) {
        std::fprintf(stderr,
                     "braidrun: timeout: ranks still running after the --timeout; "
                     "killing them\n");
        exit_code_ = 124;
        Shutdown(SIGTERM);
      }
      if (shutting_down_ && now >= kill_at_ && AnyRunning()) Shutdown(SIGKILL);
    }
  }

  void HandleSignals(int sfd) {
    signalfd_siginfo si;
    while (read(sfd, &si, sizeof(si)) == static_cast<ssize_t>(sizeof(si))) {
      int sig = static_cast<int>(si.ssi_signo);
      if (sig == SIGCHLD) {
        Reap();
        continue;
      }
      if (shutting_down_ && interrupted_) {
        Shutdown(SIGKILL);  // second Ctrl-C: no more grace
        continue;
      }
      std::fprintf(stderr, "braidrun: got signal %d (%s); stopping every rank\n", sig,
                   strsignal(sig));
      interrupted_ = true;
      if (exit_code_ == 0) exit_code_ = 128 + sig;
      bool was = shutting_down_;
      Shutdown(sig == SIGQUIT ? SIGQUIT : (sig == SIGINT ? SIGINT : SIGTERM));
      if (was) Shutdown(SIGKILL);
    }
    Reap();
  }

  std::vector<Rank> ranks_;
  bool shutting_down_ = false;
  bool interrupted_ = false;
  double kill_at_ = 0;
  double timeout_at_ = 0;
  int exit_code_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  int nranks = 0;
  double timeout = 0;
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "braidrun: %s needs a value (see braidrun --help)\n", name);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      Usage(stdout);
      return 0;
    } else if (a == "-n" || a == "-np" || a == "--np") {
      const char* v = value(a.c_str());
      char* end = nullptr;
      long n = std::strtol(v, &end, 10);
      if (*v == '\0' || *end != '\0' || n < 1 || n > 4096) {
        std::fprintf(stderr, "braidrun: -n wants a rank count between 1 and 4096, got '%s'\n", v);
        return 2;
      }
      nranks = static_cast<int>(n);
    } else if (a == "--timeout") {
      const char* v = value("--timeout");
      char* end = nullptr;
      timeout = std::strtod(v, &end);
      if (*v == '\0' || *end != '\0' || !(timeout > 0)) {
        std::fprintf(stderr, "braidrun: --timeout wants a positive number of seconds, got '%s'\n",
                     v);
        return 2;
      }
    } else if (a == "--") {
      ++i;
      break;
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "braidrun: unknown option '%s' (see braidrun --help)\n", a.c_str());
      return 2;
    } else {
      break;
    }
  }
  if (nranks < 1 || i >= argc) {
    std::fprintf(stderr,
                 nranks < 1 ? "braidrun: -n N is required\n" : "braidrun: no command given\n");
    Usage(stderr);
    return 2;
  }
  Launcher launcher;
  return launcher.Run(argv + i, nranks, timeout);
}
