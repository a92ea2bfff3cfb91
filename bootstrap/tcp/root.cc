// StartRoot: binds the root's listening socket (with clear errors for a taken or foreign
// address) and hands it to a detached thread running ServeRendezvous.
#include "bootstrap/tcp/root.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "bootstrap/tcp/socket.h"
#include "bootstrap/tcp/wire.h"
#include "core/status.h"

namespace braid::bootstrap {
namespace {

absl::StatusOr<UniqueFd> Listen(const SocketAddress& address, const std::string& shown_host,
                                uint16_t port) {
  const std::string where = FormatHostPort(shown_host, port);
  UniqueFd fd(::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return SystemError("create the bootstrap root's socket", errno);
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd.get(), address.get(), address.length) != 0) {
    int err = errno;
    std::string what = absl::StrCat("bind the bootstrap root to ", where);
    if (err == EADDRINUSE) {
      return SystemError(what, err,
                         absl::StrCat("port ", port,
                                      " is taken by another process (another job, "
                                      "or an earlier run still holding it; `ss -ltnp` shows "
                                      "which). Choose a free port in BRAID_ROOT or MASTER_PORT"));
    }
    if (err == EADDRNOTAVAIL) {
      return SystemError(what, err,
                         absl::StrCat(shown_host,
                                      " is not an address of this machine; the root "
                                      "runs on rank 0, so BRAID_ROOT/MASTER_ADDR must name "
                                      "rank 0's host"));
    }
    if (err == EACCES) {
      return SystemError(what, err, "ports below 1024 need privileges; use a port >= 1024");
    }
    return SystemError(what, err);
  }
  if (::listen(fd.get(), SOMAXCONN) != 0) {
    return SystemError(absl::StrCat("listen on ", where), errno);
  }
  return fd;
}

}  // namespace

RootOptions DefaultRootOptions() {
  RootOptions options;
  if (const char* text = std::getenv("BRAID_TIMEOUT")) {
    double seconds = 0;
    if (absl::SimpleAtod(text, &seconds) && seconds > 0) {
      options.timeout = std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
    }
  }
  return options;
}

absl::StatusOr<UniqueId> StartRootWithOptions(const std::string& bind_host, uint16_t port,
                                              std::span<const std::byte> secret,
                                              const RootOptions& options) {
  if (!secret.empty() && secret.size() != kSecretBytes) {
    return MakeError(absl::StatusCode::kInvalidArgument, "start the bootstrap root",
                     absl::StrCat("secret must be ", kSecretBytes, " bytes, got ", secret.size()));
  }
  std::string advertised;
  std::string listen_host = bind_host;
  if (IsWildcardHost(bind_host)) {
    const char* ifname = std::getenv("BRAID_SOCKET_IFNAME");
    BRAID_ASSIGN_OR_RETURN(advertised, SelectLocalAddress(ifname ? ifname : "", ""));
    listen_host = advertised.find(':') != std::string::npos ? "::" : "0.0.0.0";
  }
  BRAID_ASSIGN_OR_RETURN(SocketAddress address, ResolveAddress(listen_host, port, true));
  if (advertised.empty()) advertised = NumericHost(address.get());
  BRAID_ASSIGN_OR_RETURN(UniqueFd fd,
                         Listen(address, bind_host.empty() ? listen_host : bind_host, port));
  SocketAddress bound;
  bound.length = sizeof(bound.storage);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound.storage), &bound.length) != 0) {
    return SystemError("read the bootstrap root's address", errno);
  }
  UniqueId id;
  id.root_host = advertised;
  id.root_port = AddressPort(bound.get());
  id.secret.assign(secret.begin(), secret.end());
  if (id.secret.empty()) {
    id.secret.resize(kSecretBytes);
    FillRandom(id.secret);
  }
  // The thread owns the server outright; the process may exit at any time while it runs (it
  // touches no global state), and it leaves by itself once the rendezvous is over.
  std::thread(ServeRendezvous, std::move(fd), id.secret, options).detach();
  return id;
}

}  // namespace braid::bootstrap

namespace braid {

absl::StatusOr<UniqueId> StartRoot(const std::string& bind_host, uint16_t port) {
  return bootstrap::StartRootWithOptions(bind_host, port, {}, bootstrap::DefaultRootOptions());
}

absl::StatusOr<UniqueId> StartRoot(const std::string& bind_host, uint16_t port,
                                   std::span<const std::byte> secret) {
  return bootstrap::StartRootWithOptions(bind_host, port, secret, bootstrap::DefaultRootOptions());
}

}  // namespace braid
