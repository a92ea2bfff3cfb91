#include "tools/health/local_checks.h"

#include <sys/resource.h>
#include <sys/utsname.h>

#include <braid/braid.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "bootstrap/bootstrap.h"
#include "core/config.h"
#include "transports/transport.h"

namespace braid::health {
namespace {

namespace fs = std::filesystem;

std::string ReadLine(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return std::string(absl::StripAsciiWhitespace(line));
}

std::string DescribeLimit(rlim_t limit) {
  if (limit == RLIM_INFINITY) return "unlimited";
  if (limit >= (rlim_t{1} << 30)) return absl::StrCat(limit >> 30, " GiB");
  if (limit >= (rlim_t{1} << 20)) return absl::StrCat(limit >> 20, " MiB");
  return absl::StrCat(limit >> 10, " KiB");
}

// RDMA devices and ports from sysfs, readable without libibverbs and without opening devices.
struct RdmaSummary {
  int devices = 0;
  int active_ports = 0;
  std::vector<std::string> ports;  // "dev:port STATE link_layer rate, N RoCE v2 GIDs"
};

RdmaSummary ScanRdma(const fs::path& root) {
  RdmaSummary summary;
  std::error_code ec;
  fs::path base = root / "class/infiniband";
  if (!fs::is_directory(base, ec)) return summary;
  for (const auto& device : fs::directory_iterator(base, ec)) {
    ++summary.devices;
    for (const auto& port : fs::directory_iterator(device.path() / "ports", ec)) {
      std::string state = ReadLine(port.path() / "state");  // e.g. "4: ACTIVE"
      std::string link = ReadLine(port.path() / "link_layer");
      std::string rate = ReadLine(port.path() / "rate");
      int roce_v2 = 0;
      for (const auto& type : fs::directory_iterator(port.path() / "gid_attrs/types", ec)) {
        if (absl::StrContains(ReadLine(type.path()), "v2")) ++roce_v2;
      }
      if (absl::StrContains(state, "ACTIVE")) ++summary.active_ports;
      std::string line = absl::StrCat(device.path().filename().string(), ":",
                                      port.path().filename().string(), " ", state, " ", link,
                                      " ", rate);
      if (link == "Ethernet") absl::StrAppend(&line, ", ", roce_v2, " RoCE v2 GIDs");
      summary.ports.push_back(line);
    }
  }
  return summary;
}

}  // namespace

std::vector<LocalCheck> RunLocalChecks(const std::string& transport,
                                       const std::string& sysfs_root) {
  std::vector<LocalCheck> checks;
  utsname uts{};
  ::uname(&uts);
  checks.push_back({"versions", absl::StrCat("braid ", BRAID_MAJOR, ".", BRAID_MINOR, ".",
                                             BRAID_PATCH, ", kernel ", uts.release), true, ""});

  auto config = ParseConfig();
  Config defaults;
  const Config& cfg = config.ok() ? *config : defaults;
  for (const TransportEntry& entry : TransportRegistry()) {
    ProbeResult probe = entry.probe(cfg);
    bool in_use = entry.name == transport;
    LocalCheck check{absl::StrCat("transport ", entry.name),
                     absl::StrCat(probe.usable ? "usable" : "not usable", in_use ? " (in use)" : "",
                                  probe.reason.empty() ? "" : ": ", probe.reason),
                     probe.usable || !in_use, ""};
    if (!check.ok) check.remedy = "the transport in use cannot run here; see docs/transports.md";
    checks.push_back(check);
  }

  RdmaSummary rdma = ScanRdma(sysfs_root);
  if (rdma.devices == 0) {
    checks.push_back({"rdma devices", "none", true, ""});
  } else {
    for (const std::string& port : rdma.ports) checks.push_back({"rdma port", port, true, ""});
    if (rdma.active_ports == 0) {
      checks.push_back({"rdma active ports", "0", false,
                        "no RDMA port is ACTIVE: check cables and the switch (ibstat, "
                        "rdma link show)"});
    }
  }

  rlimit memlock{};
  ::getrlimit(RLIMIT_MEMLOCK, &memlock);
  // RDMA pins buffers: a small limit makes registration fail mid-job. Irrelevant without RDMA.
  bool memlock_ok = rdma.devices == 0 || memlock.rlim_cur == RLIM_INFINITY ||
                    memlock.rlim_cur >= (rlim_t{1} << 30);
  checks.push_back({"RLIMIT_MEMLOCK", DescribeLimit(memlock.rlim_cur), memlock_ok,
                    memlock_ok ? "" : "raise it: ulimit -l unlimited (or memlock in "
                                      "/etc/security/limits.conf, LimitMEMLOCK for systemd)"});

  auto address = SelectLocalAddress(cfg.socket_ifname, "");
  checks.push_back({"data address", address.ok() ? *address : std::string(address.status().message()),
                    address.ok(), address.ok() ? "" : "set BRAID_SOCKET_IFNAME to a working interface"});
  return checks;
}

}  // namespace braid::health
