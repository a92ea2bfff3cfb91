#include "transports/verbs/verbs_device.h"

#include <arpa/inet.h>
#include <sys/resource.h>

#include <cstring>
#include <fstream>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/status.h"

namespace braid::verbs {
namespace {

bool ReadLine(const std::string& path, std::string* out) {
  std::ifstream in(path);
  if (!in || !std::getline(in, *out)) return false;
  *out = std::string(absl::StripAsciiWhitespace(*out));
  return true;
}

// "0000:0000:0000:0000:0000:ffff:c612:0001" -> 16 bytes.
bool ParseSysfsGid(const std::string& text, unsigned char out[16]) {
  std::vector<std::string> groups = absl::StrSplit(text, ':');
  if (groups.size() != 8) return false;
  for (int i = 0; i < 8; ++i) {
    uint32_t value = 0;
    if (groups[i].size() != 4 || !absl::SimpleHexAtoi(groups[i], &value)) return false;
    out[2 * i] = static_cast<unsigned char>(value >> 8);
    out[2 * i + 1] = static_cast<unsigned char>(value & 0xff);
  }
  return true;
}

bool IsV4Mapped(const unsigned char gid[16]) {
  static const unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(gid, prefix, 12) == 0;
}

bool IsZero(const unsigned char gid[16]) {
  for (int i = 0; i < 16; ++i) {
    if (gid[i] != 0) return false;
  }
  return true;
}

struct DeviceList {
  ibv_device** list = nullptr;
  int count = 0;
  DeviceList() { list = ibv_get_device_list(&count); }
  ~DeviceList() {
    if (list != nullptr) ibv_free_device_list(list);
  }
};

}  // namespace

HcaFilter ParseHcaFilter(absl::string_view spec) {
  HcaFilter filter;
  spec = absl::StripAsciiWhitespace(spec);
  if (absl::ConsumePrefix(&spec, "^")) filter.exclude = true;
  if (absl::ConsumePrefix(&spec, "=")) filter.exact = true;
  for (absl::string_view part : absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
    part = absl::StripAsciiWhitespace(part);
    HcaFilter::Item item;
    std::vector<absl::string_view> name_port = absl::StrSplit(part, absl::MaxSplits(':', 1));
    item.name = std::string(name_port[0]);
    if (name_port.size() == 2 && !absl::SimpleAtoi(name_port[1], &item.port)) item.port = -2;
    if (!item.name.empty()) filter.items.push_back(item);
  }
  return filter;
}

bool HcaSelected(const HcaFilter& filter, absl::string_view device, int port) {
  if (filter.items.empty()) return true;
  bool listed = false;
  for (const HcaFilter::Item& item : filter.items) {
    bool name_ok = filter.exact ? device == item.name : absl::StartsWith(device, item.name);
    if (name_ok && (item.port == -1 || item.port == port)) listed = true;
  }
  return filter.exclude ? !listed : listed;
}

absl::StatusOr<int> SelectRoceGid(const std::string& port_dir, const std::string& local_address) {
  in6_addr wanted{};
  bool have_wanted = false;
  in_addr v4{};
  if (inet_pton(AF_INET, local_address.c_str(), &v4) == 1) {
    std::memset(&wanted, 0, sizeof(wanted));
    wanted.s6_addr[10] = wanted.s6_addr[11] = 0xff;
    std::memcpy(&wanted.s6_addr[12], &v4, 4);
    have_wanted = true;
  } else if (inet_pton(AF_INET6, local_address.c_str(), &wanted) == 1) {
    have_wanted = true;
  }
  int best = -1, best_score = -1;
  std::vector<std::string> seen;
  for (int index = 0; index < 256; ++index) {
    std::string type, text;
    // Unused entries have no type (reading fails) and a zero GID.
    if (!ReadLine(absl::StrCat(port_dir, "/gids/", index), &text)) break;
    if (!ReadLine(absl::StrCat(port_dir, "/gid_attrs/types/", index), &type)) continue;
    unsigned char gid[16];
    if (!ParseSysfsGid(text, gid) || IsZero(gid)) continue;
    seen.push_back(absl::StrCat(index, "=", type, " ", text));
    if (!absl::StrContains(absl::AsciiStrToLower(type), "v2")) continue;
    int score = 1;
    if (IsV4Mapped(gid)) score += 2;
    if (have_wanted && std::memcmp(gid, wanted.s6_addr, 16) == 0) score += 4;
    if (score > best_score) best = index, best_score = score;
  }
  if (best < 0) {
    return MakeError(absl::StatusCode::kNotFound,
                     absl::StrCat("choosing a RoCE v2 GID in ", port_dir),
                     seen.empty() ? std::string("the GID table is empty")
                                  : absl::StrCat("no RoCE v2 entry among: ",
                                                 absl::StrJoin(seen, "; ")),
                     "give the Ethernet interface of the RDMA port an IP address (RoCE v2 GIDs "
                     "follow the addresses), or set BRAID_IB_GID_INDEX (see show_gids)");
  }
  return best;
}

std::string WhyNoActivePort(const Config& config) {
  DeviceList devices;
  if (devices.list == nullptr || devices.count == 0) {
    return "no RDMA device (ibv_get_device_list found none; load the driver, e.g. mlx5_ib or "
           "rdma_rxe)";
  }
  HcaFilter filter = ParseHcaFilter(config.ib_hca);
  std::vector<std::string> found;
  for (int i = 0; i < devices.count; ++i) {
    const char* name = ibv_get_device_name(devices.list[i]);
    ibv_context* ctx = ibv_open_device(devices.list[i]);
    if (ctx == nullptr) {
      found.push_back(absl::StrCat(name, " (cannot open: ", std::strerror(errno), ")"));
      continue;
    }
    ibv_device_attr dev{};
    if (ibv_query_device(ctx, &dev) == 0) {
      for (int port = 1; port <= dev.phys_port_cnt; ++port) {
        ibv_port_attr attr{};
        if (ibv_query_port(ctx, static_cast<uint8_t>(port), &attr) != 0) continue;
        bool selected = HcaSelected(filter, name, port);
        if (attr.state == IBV_PORT_ACTIVE && selected) {
          ibv_close_device(ctx);
          return "";
        }
        found.push_back(absl::StrCat(name, ":", port, " ", ibv_port_state_str(attr.state),
                                     selected ? "" : " (excluded by BRAID_IB_HCA)"));
      }
    }
    ibv_close_device(ctx);
  }
  return absl::StrCat("no active port selected (found ", absl::StrJoin(found, ", "),
                      config.ib_hca.empty() ? "" : absl::StrCat("; BRAID_IB_HCA=", config.ib_hca),
                      ")");
}

absl::StatusOr<PortChoice> ChoosePort(const Config& config, const std::string& local_address,
                                      ibv_context** context) {
  DeviceList devices;
  HcaFilter filter = ParseHcaFilter(config.ib_hca);
  for (int i = 0; devices.list != nullptr && i < devices.count; ++i) {
    const char* name = ibv_get_device_name(devices.list[i]);
    ibv_context* ctx = ibv_open_device(devices.list[i]);
    if (ctx == nullptr) continue;
    ibv_device_attr dev{};
    if (ibv_query_device(ctx, &dev) != 0) {
      ibv_close_device(ctx);
      continue;
    }
    for (int port = 1; port <= dev.phys_port_cnt; ++port) {
      PortChoice choice;
      if (ibv_query_port(ctx, static_cast<uint8_t>(port), &choice.attr) != 0) continue;
      if (choice.attr.state != IBV_PORT_ACTIVE || !HcaSelected(filter, name, port)) continue;
      choice.device = name;
      choice.port = port;
      choice.ethernet = choice.attr.link_layer == IBV_LINK_LAYER_ETHERNET;
      if (config.ib_gid_index >= 0) {
        choice.gid_index = config.ib_gid_index;
      } else if (choice.ethernet) {
        auto gid = SelectRoceGid(
            absl::StrCat("/sys/class/infiniband/", name, "/ports/", port), local_address);
        if (!gid.ok()) {
          ibv_close_device(ctx);
          return gid.status();
        }
        choice.gid_index = *gid;
      }
      if (ibv_query_gid(ctx, static_cast<uint8_t>(port), choice.gid_index, &choice.gid) != 0 ||
          (choice.ethernet && IsZero(choice.gid.raw))) {
        ibv_close_device(ctx);
        return MakeError(absl::StatusCode::kNotFound,
                         absl::StrCat("reading GID ", choice.gid_index, " of ", name, ":", port),
                         "the GID table has no such entry",
                         "set BRAID_IB_GID_INDEX to an index listed by show_gids, or unset it");
      }
      *context = ctx;
      return choice;
    }
    ibv_close_device(ctx);
  }
  return MakeError(absl::StatusCode::kFailedPrecondition, "verbs transport",
                   WhyNoActivePort(config),
                   "check `ibv_devinfo` (state PORT_ACTIVE), the cable/switch or `rdma link`, "
                   "and BRAID_IB_HCA");
}

std::string MemlockLimitText() {
  rlimit limit{};
  if (getrlimit(RLIMIT_MEMLOCK, &limit) != 0) return "unknown";
  if (limit.rlim_cur == RLIM_INFINITY) return "unlimited";
  return absl::StrCat(limit.rlim_cur / 1024, " KiB");
}

bool MemlockTooLow(size_t needed) {
  rlimit limit{};
  if (getrlimit(RLIMIT_MEMLOCK, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return false;
  if (limit.rlim_cur >= needed) return false;
  // CAP_IPC_LOCK (bit 14 of the effective set; root, usually) lifts the limit for pinning.
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    uint64_t caps = 0;
    if (absl::StartsWith(line, "CapEff:") &&
        absl::SimpleHexAtoi(absl::StripAsciiWhitespace(line.substr(7)), &caps)) {
      return (caps & (1ull << 14)) == 0;
    }
  }
  return true;
}

}  // namespace braid::verbs
