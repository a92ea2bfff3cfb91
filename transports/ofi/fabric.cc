#include "transports/ofi/fabric.h"

#include <rdma/fi_cm.h>
#include <rdma/fi_errno.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/status.h"

namespace braid::ofi {
namespace {

// What Braid can cope with, which is everything EFA asks for: per-operation fi_context2
// storage, and descriptors, provider keys and endpoint-bound MRs. fi_getinfo returns the
// subset the provider actually needs, which Rail honours.
InfoPtr MakeHints(const std::string& provider, bool rma) {
  InfoPtr hints(fi_allocinfo());
  hints->caps = FI_MSG | FI_TAGGED;
  if (rma) {
    // One-sided writes announce themselves with 4 bytes of remote CQ data (all EFA offers).
    hints->caps |= FI_RMA | FI_WRITE | FI_REMOTE_WRITE;
    hints->domain_attr->cq_data_size = 4;
  }
  hints->mode = FI_CONTEXT | FI_CONTEXT2;
  hints->ep_attr->type = FI_EP_RDM;
  hints->domain_attr->mr_mode =
      FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY | FI_MR_ENDPOINT;
  hints->domain_attr->threading = FI_THREAD_DOMAIN;
  if (!provider.empty()) hints->fabric_attr->prov_name = strdup(provider.c_str());
  return hints;
}

// fi_getinfo for `provider` ("" = any), with FI_RMA when offered; an empty result is not an
// error.
absl::StatusOr<InfoPtr> GetInfo(const std::string& provider) {
  for (bool rma : {true, false}) {
    InfoPtr hints = MakeHints(provider, rma);
    fi_info* found = nullptr;
    int rc = fi_getinfo(kFabricVersion, nullptr, nullptr, 0, hints.get(), &found);
    if (rc == -FI_ENODATA) continue;
    if (rc != 0) return absl::UnavailableError(FabricError("fi_getinfo", rc));
    return InfoPtr(found);
  }
  return InfoPtr();
}

std::string ProvidersIn(const fi_info* list) {
  std::set<std::string> names;
  for (const fi_info* i = list; i != nullptr; i = i->next) names.insert(i->fabric_attr->prov_name);
  return absl::StrJoin(names, ", ");
}

}  // namespace

std::string FabricError(const char* call, int rc) {
  return absl::StrCat(call, " failed: ", fi_strerror(-rc), " (", rc, ")");
}

std::string CoreProvider(const char* prov_name) {
  std::string name = prov_name ? prov_name : "";
  return name.substr(0, name.find(';'));
}

bool IsSoftwareProvider(const std::string& core) {
  static const std::set<std::string> software = {"tcp", "udp", "sockets", "shm", "sm2", "net",
                                                 "ofi_rxm", "ofi_rxd"};
  return software.count(core) > 0;
}

absl::StatusOr<FabricChoice> ChooseFabric(const Config& config, std::string* tried) {
  std::string wanted = config.ofi_provider;
  // FI_PROVIDER (which may also exclude, "^name") is applied by libfabric itself; it only
  // stops Braid from preferring efa on its own.
  const char* fi_provider = std::getenv("FI_PROVIDER");
  FabricChoice choice;
  if (wanted.empty() && fi_provider == nullptr) {
    BRAID_ASSIGN_OR_RETURN(choice.all, GetInfo("efa"));  // preferred whenever present.
  }
  if (!choice.all) {
    BRAID_ASSIGN_OR_RETURN(choice.all, GetInfo(wanted));
  }
  std::string asked = !wanted.empty() ? absl::StrCat("provider \"", wanted, "\"")
                     : fi_provider ? absl::StrCat("FI_PROVIDER=", fi_provider)
                                   : std::string("any provider");
  if (tried) *tried = asked;
  if (!choice.all) {
    // Say which requirement is missing: ask again with fewer of them.
    InfoPtr hints = MakeHints(wanted, false);
    hints->caps = 0;
    fi_info* rdm = nullptr;
    bool has_rdm = fi_getinfo(kFabricVersion, nullptr, nullptr, 0, hints.get(), &rdm) == 0;
    std::string offered = has_rdm ? ProvidersIn(rdm) : "";
    if (rdm) fi_freeinfo(rdm);
    std::string detail =
        has_rdm ? absl::StrCat(asked, " offers reliable-datagram endpoints (", offered,
                               ") but not the required capabilities FI_MSG|FI_TAGGED with Braid's "
                               "mode (FI_CONTEXT|FI_CONTEXT2) and mr_mode bits")
                : absl::StrCat(asked, " offers no reliable-datagram endpoint (FI_EP_RDM)");
    return MakeError(absl::StatusCode::kUnavailable, "ofi transport: fi_getinfo", detail,
                     "run `fi_info -t FI_EP_RDM` to see what libfabric offers; choose a provider "
                     "with BRAID_OFI_PROVIDER (efa on AWS, tcp or shm elsewhere)");
  }
  // One provider: efa if offered, else the first non-shm one (shm cannot leave the host).
  const fi_info* pick = choice.all.get();
  if (wanted.empty()) {
    for (const fi_info* i = choice.all.get(); i; i = i->next) {
      if (CoreProvider(i->fabric_attr->prov_name) != "shm") {
        pick = i;
        break;
      }
    }
  }
  choice.provider = pick->fabric_attr->prov_name;
  std::set<std::string> domains;
  for (fi_info* i = choice.all.get(); i; i = i->next) {
    if (choice.provider != i->fabric_attr->prov_name) continue;
    if (!domains.insert(i->domain_attr->name).second) continue;  // one rail per NIC.
    choice.nics.push_back(i);
  }
  // Software providers list every network interface as a domain (containers' and test
  // namespaces' veths too); they are a test vehicle, not multi-rail: one NIC unless asked.
  if (config.ofi_nics.empty() && IsSoftwareProvider(CoreProvider(choice.provider.c_str())) &&
      choice.nics.size() > 1) {
    choice.nics.resize(1);
  }
  // BRAID_OFI_NICS: a count, or domain names.
  if (!config.ofi_nics.empty()) {
    int count = 0;
    std::vector<fi_info*> kept;
    if (absl::SimpleAtoi(config.ofi_nics, &count)) {
      if (count < 1 || static_cast<size_t>(count) > choice.nics.size()) {
        return MakeError(absl::StatusCode::kInvalidArgument,
                         absl::StrCat("BRAID_OFI_NICS=", config.ofi_nics),
                         absl::StrCat(choice.provider, " has ", choice.nics.size(), " NIC(s)"),
                         "ask for at most that many");
      }
      kept.assign(choice.nics.begin(), choice.nics.begin() + count);
    } else {
      for (absl::string_view name : absl::StrSplit(config.ofi_nics, ',', absl::SkipEmpty())) {
        auto it = std::find_if(choice.nics.begin(), choice.nics.end(),
                               [&](fi_info* i) { return name == i->domain_attr->name; });
        if (it == choice.nics.end()) {
          std::vector<std::string> names;
          for (fi_info* i : choice.nics) names.push_back(i->domain_attr->name);
          return MakeError(absl::StatusCode::kInvalidArgument,
                           absl::StrCat("BRAID_OFI_NICS=", config.ofi_nics),
                           absl::StrCat("no domain \"", name, "\" in ", choice.provider),
                           absl::StrCat("use some of: ", absl::StrJoin(names, ",")));
        }
        kept.push_back(*it);
      }
    }
    choice.nics = kept;
  }
  return choice;
}

absl::StatusOr<std::unique_ptr<Rail>> Rail::Open(fi_info* info, int index, bool strict) {
  auto rail = std::make_unique<Rail>();
  rail->info = info;
  rail->index = index;
  uint64_t mr_mode = info->domain_attr->mr_mode;
  rail->local_mr_ = strict || (mr_mode & FI_MR_LOCAL) || (info->mode & FI_LOCAL_MR);
  rail->bind_mr_ = (mr_mode & FI_MR_ENDPOINT) != 0;
  rail->prov_key_ = strict || (mr_mode & FI_MR_PROV_KEY);
  rail->max_msg = info->ep_attr->max_msg_size;
  rail->can_write = (info->caps & FI_RMA) && (mr_mode & FI_MR_VIRT_ADDR) &&
                    info->domain_attr->cq_data_size >= 4;
  rail->rma_ = (info->caps & FI_RMA) != 0;
  std::string where = absl::StrCat("ofi transport: NIC ", info->domain_attr->name, " (",
                                   info->fabric_attr->prov_name, ")");
  auto check = [&](const char* call, int rc) -> absl::Status {
    if (rc == 0) return absl::OkStatus();
    return MakeError(absl::StatusCode::kUnavailable, where, FabricError(call, rc),
                     "check the provider with fi_info; FI_LOG_LEVEL=warn shows libfabric's view");
  };
  BRAID_RETURN_IF_ERROR(check("fi_fabric", fi_fabric(info->fabric_attr, &rail->fabric, nullptr)));
  BRAID_RETURN_IF_ERROR(check("fi_domain", fi_domain(rail->fabric, info, &rail->domain, nullptr)));
  fi_cq_attr cq_attr{};
  cq_attr.format = FI_CQ_FORMAT_TAGGED;
  cq_attr.size = std::max<size_t>(info->tx_attr->size + info->rx_attr->size, 1024);
  cq_attr.wait_obj = FI_WAIT_FD;  // lets the progress engine sleep; not every provider has one.
  if (fi_cq_open(rail->domain, &cq_attr, &rail->cq, nullptr) != 0) {
    cq_attr.wait_obj = FI_WAIT_NONE;
    BRAID_RETURN_IF_ERROR(check("fi_cq_open", fi_cq_open(rail->domain, &cq_attr, &rail->cq, nullptr)));
  } else if (fi_control(&rail->cq->fid, FI_GETWAIT, &rail->wait_fd) != 0) {
    rail->wait_fd = -1;
  }
  fi_av_attr av_attr{};
  av_attr.type = info->domain_attr->av_type == FI_AV_MAP ? FI_AV_MAP : FI_AV_TABLE;
  BRAID_RETURN_IF_ERROR(check("fi_av_open", fi_av_open(rail->domain, &av_attr, &rail->av, nullptr)));
  BRAID_RETURN_IF_ERROR(check("fi_endpoint", fi_endpoint(rail->domain, info, &rail->ep, nullptr)));
  BRAID_RETURN_IF_ERROR(check("fi_ep_bind(av)", fi_ep_bind(rail->ep, &rail->av->fid, 0)));
  BRAID_RETURN_IF_ERROR(
      check("fi_ep_bind(cq)", fi_ep_bind(rail->ep, &rail->cq->fid, FI_TRANSMIT | FI_RECV)));
  BRAID_RETURN_IF_ERROR(check("fi_enable", fi_enable(rail->ep)));
  size_t len = 0;
  fi_getname(&rail->ep->fid, nullptr, &len);
  rail->address.resize(len);
  BRAID_RETURN_IF_ERROR(check("fi_getname", fi_getname(&rail->ep->fid, rail->address.data(), &len)));
  rail->address.resize(len);
  return rail;
}

Rail::~Rail() {
  // Endpoint first: it cancels what is still in flight before its queues and domain go.
  if (ep) fi_close(&ep->fid);
  if (av) fi_close(&av->fid);
  if (cq) fi_close(&cq->fid);
  if (domain) fi_close(&domain->fid);
  if (fabric) fi_close(&fabric->fid);
}

absl::StatusOr<fid_mr*> Rail::Register(const void* base, size_t length, bool always) {
  if (!local_mr_ && !always) return nullptr;
  fid_mr* mr = nullptr;
  // Without FI_MR_PROV_KEY the key is ours to choose; libfabric's tcp before 2.2 insists that
  // it be unique even for send/recv-only MRs.
  uint64_t key = next_key_++;
  uint64_t access = FI_SEND | FI_RECV | (rma_ ? FI_WRITE | FI_REMOTE_WRITE : 0);
  int rc = fi_mr_reg(domain, base, std::max<size_t>(length, 1), access, 0, key, 0, &mr, nullptr);
  if (rc != 0) {
    return MakeError(absl::StatusCode::kResourceExhausted,
                     absl::StrCat("ofi transport: registering ", length, " bytes on NIC ",
                                  info->domain_attr->name),
                     FabricError("fi_mr_reg", rc),
                     "raise the locked-memory limit (ulimit -l unlimited) or register fewer "
                     "buffers");
  }
  if (bind_mr_) {
    rc = fi_mr_bind(mr, &ep->fid, 0);
    if (rc == 0) rc = fi_mr_enable(mr);
    if (rc != 0) {
      fi_close(&mr->fid);
      return absl::InternalError(
          absl::StrCat("ofi transport: binding an MR to the endpoint (FI_MR_ENDPOINT): ",
                       FabricError("fi_mr_bind/fi_mr_enable", rc)));
    }
  }
  if (prov_key_ && fi_mr_key(mr) == FI_KEY_NOTAVAIL) {
    fi_close(&mr->fid);
    return absl::InternalError("ofi transport: the provider gave no key for a registered MR");
  }
  return mr;
}

}  // namespace braid::ofi
