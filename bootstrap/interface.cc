// Local address selection for the data path, with NCCL_SOCKET_IFNAME-style interface specs.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "bootstrap/bootstrap.h"
#include "bootstrap/tcp/socket.h"
#include "core/status.h"

namespace braid {
namespace {

struct Interface {
  std::string name;
  std::string address;  // numeric
  int family = 0;
  bool loopback = false;
};

bool IsLinkLocalV6(const sockaddr* sa) {
  const auto* a6 = reinterpret_cast<const sockaddr_in6*>(sa);
  return IN6_IS_ADDR_LINKLOCAL(&a6->sin6_addr);
}

// Interfaces that are up, with one entry per usable IPv4/IPv6 address, IPv4 first.
absl::StatusOr<std::vector<Interface>> UpInterfaces() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return SystemError("list network interfaces", errno);
  std::vector<Interface> v4, v6;
  for (ifaddrs* ifa = list; ifa != nullptr; ifa = ifa->ifa_next) {
    if (ifa->ifa_addr == nullptr || !(ifa->ifa_flags & IFF_UP)) continue;
    int family = ifa->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    if (family == AF_INET6 && IsLinkLocalV6(ifa->ifa_addr)) continue;  // needs a scope id.
    Interface i{ifa->ifa_name, bootstrap::NumericHost(ifa->ifa_addr), family,
                (ifa->ifa_flags & IFF_LOOPBACK) != 0};
    (family == AF_INET ? v4 : v6).push_back(std::move(i));
  }
  ::freeifaddrs(list);
  v4.insert(v4.end(), v6.begin(), v6.end());
  return v4;
}

std::string Describe(const std::vector<Interface>& interfaces) {
  if (interfaces.empty()) return "none";
  return absl::StrJoin(interfaces, ", ", [](std::string* out, const Interface& i) {
    absl::StrAppend(out, i.name, " (", i.address, ")");
  });
}

// The local address the kernel would use to reach `host` (UDP connect sends nothing).
absl::StatusOr<std::string> AddressRoutingTo(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), "9", &hints, &found) != 0 || found == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot resolve ", host));
  }
  UniqueFd fd(::socket(found->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  int rc = fd.valid() ? ::connect(fd.get(), found->ai_addr, found->ai_addrlen) : -1;
  ::freeaddrinfo(found);
  if (rc != 0) return absl::NotFoundError(absl::StrCat("no route to ", host));
  sockaddr_storage local{};
  socklen_t length = sizeof(local);
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local), &length) != 0) {
    return absl::NotFoundError("getsockname failed");
  }
  std::string address = bootstrap::NumericHost(reinterpret_cast<const sockaddr*>(&local));
  if (address.empty() || bootstrap::IsWildcardHost(address)) {
    return absl::NotFoundError("no source address");
  }
  return address;
}

bool Virtual(const Interface& i) {
  return absl::StartsWith(i.name, "docker") || absl::StartsWith(i.name, "virbr") ||
         absl::StartsWith(i.name, "veth") || absl::StartsWith(i.name, "br-");
}

}  // namespace

absl::StatusOr<std::string> SelectLocalAddress(const std::string& ifname_spec,
                                               const std::string& root_host) {
  BRAID_ASSIGN_OR_RETURN(std::vector<Interface> interfaces, UpInterfaces());
  absl::StatusOr<std::string> routed =
      root_host.empty() ? absl::NotFoundError("no root") : AddressRoutingTo(root_host);

  absl::string_view spec = absl::StripAsciiWhitespace(ifname_spec);
  if (!spec.empty()) {
    const bool exclude = absl::ConsumePrefix(&spec, "^");
    const bool exact = absl::ConsumePrefix(&spec, "=");
    std::vector<absl::string_view> names = absl::StrSplit(spec, ',', absl::SkipWhitespace());
    for (auto& n : names) n = absl::StripAsciiWhitespace(n);
    auto listed = [&](const Interface& i) {
      return std::any_of(names.begin(), names.end(), [&](absl::string_view n) {
        return exact ? i.name == n : absl::StartsWith(i.name, n);
      });
    };
    std::vector<Interface> chosen;
    for (const Interface& i : interfaces) {
      if (listed(i) != exclude) chosen.push_back(i);
    }
    if (chosen.empty()) {
      return MakeError(absl::StatusCode::kNotFound, "select the local network interface",
                       absl::StrCat("BRAID_SOCKET_IFNAME=\"", ifname_spec,
                                    "\" matches no interface that is up with an IP address; "
                                    "available: ",
                                    Describe(interfaces)),
                       "set BRAID_SOCKET_IFNAME to one of those names (a prefix, =name for an "
                       "exact name, ^name to exclude), or unset it");
    }
    // Among the matches, prefer the one the kernel routes to the root through.
    if (routed.ok()) {
      for (const Interface& i : chosen) {
        if (i.address == *routed) return i.address;
      }
    }
    return chosen.front().address;
  }

  if (routed.ok()) return *routed;
  for (bool allow_virtual : {false, true}) {
    for (const Interface& i : interfaces) {
      if (!i.loopback && (allow_virtual || !Virtual(i))) return i.address;
    }
  }
  for (const Interface& i : interfaces) {
    if (i.loopback) return i.address;
  }
  return std::string("127.0.0.1");
}

}  // namespace braid
