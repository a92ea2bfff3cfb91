#include "core/group_builder.h"

#include <sched.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "bootstrap/recovery.h"  // Communicator owns a RecoveryListener: complete type.
#include "core/communicator.h"
#include "core/log.h"
#include "core/status.h"

namespace braid {
namespace {

// What each rank publishes at creation: the transport it chose and its address, or the reason
// it could not start one, so every rank fails fast with the same explanation.
Blob EncodeJoinBlob(const std::string& transport, const absl::Status& status, const Blob& addr) {
  std::string head = status.ok() ? transport : std::string(status.message());
  Blob out(1 + 4 + head.size());
  out[0] = std::byte{status.ok() ? uint8_t{1} : uint8_t{0}};
  uint32_t len = static_cast<uint32_t>(head.size());
  std::memcpy(out.data() + 1, &len, 4);
  std::memcpy(out.data() + 5, head.data(), head.size());
  out.insert(out.end(), addr.begin(), addr.end());
  return out;
}

struct JoinInfo {
  bool ok = false;
  std::string text;  // transport name, or the error.
  Blob address;
};

absl::StatusOr<JoinInfo> DecodeJoinBlob(const Blob& blob, int rank) {
  uint32_t len = 0;
  if (blob.size() >= 5) std::memcpy(&len, blob.data() + 1, 4);
  if (blob.size() < 5 || blob.size() - 5 < len) {
    return MakeError(absl::StatusCode::kDataLoss, "communicator creation",
                     absl::StrCat("rank ", rank, " published a malformed join record"),
                     "make sure every rank runs the same Braid version");
  }
  JoinInfo info;
  info.ok = blob[0] == std::byte{1};
  info.text.assign(reinterpret_cast<const char*>(blob.data() + 5), len);
  info.address.assign(blob.begin() + 5 + len, blob.end());
  return info;
}

}  // namespace

absl::StatusOr<Config> BeginCreation(absl::string_view api, int nranks, int rank) {
  if (nranks < 1 || rank < 0 || rank >= nranks) {
    return MakeError(absl::StatusCode::kInvalidArgument, api,
                     absl::StrCat("rank ", rank, " is out of range for ", nranks, " ranks"),
                     "pass 0 <= rank < nranks with nranks >= 1");
  }
  BRAID_ASSIGN_OR_RETURN(Config config, ParseConfig());
  SetLogLevel(config.log_level);
  return config;
}

uint64_t DeriveCommId(uint64_t parent, std::initializer_list<int64_t> salt) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i) h = (h ^ ((v >> (8 * i)) & 0xff)) * 1099511628211ull;
  };
  mix(parent);
  for (int64_t s : salt) mix(static_cast<uint64_t>(s));
  return h;
}

absl::StatusOr<std::vector<Blob>> AllGatherBlobs(const Blob& mine, int nranks,
                                                 const FixedAllGather& allgather) {
  auto n = static_cast<size_t>(nranks);
  uint64_t my_length = mine.size();
  std::vector<uint64_t> lengths(n);
  BRAID_RETURN_IF_ERROR(allgather(&my_length, lengths.data(), sizeof(uint64_t)));
  uint64_t longest = *std::max_element(lengths.begin(), lengths.end());
  if (longest > (1u << 20)) {
    return MakeError(absl::StatusCode::kDataLoss, "communicator creation",
                     absl::StrCat("a rank published a ", longest, "-byte blob (limit 1 MiB)"),
                     "make sure every rank runs the same Braid version");
  }
  size_t record = std::max<size_t>(longest, 1);
  std::vector<std::byte> padded(record, std::byte{0}), all(record * n);
  std::copy(mine.begin(), mine.end(), padded.begin());
  BRAID_RETURN_IF_ERROR(allgather(padded.data(), all.data(), record));
  std::vector<Blob> blobs(n);
  for (size_t r = 0; r < n; ++r) {
    auto begin = all.begin() + static_cast<std::ptrdiff_t>(r * record);
    blobs[r].assign(begin, begin + static_cast<std::ptrdiff_t>(lengths[r]));
  }
  return blobs;
}

absl::StatusOr<std::unique_ptr<Communicator>> BuildGroup(GroupSpec spec,
                                                         const BlobExchange& exchange,
                                                         Deadline deadline) {
  const int rank = spec.rank, nranks = spec.nranks;
  std::unique_ptr<Communicator> comm(new Communicator());
  comm->rank_ = rank;
  comm->nranks_ = nranks;
  comm->config_ = spec.config;
  comm->timeout_ms_ = spec.config.timeout.count();
  comm->hosts_ = spec.hosts;
  comm->comm_id_ = spec.comm_id;
  comm->secret_ = spec.secret;
  if (spec.local_address.ok()) comm->local_address_ = *spec.local_address;

  // Start this rank's transport; a failure is published rather than returned, so the other
  // ranks learn why instead of waiting for a timeout.
  absl::Status local = absl::OkStatus();
  Blob address;
  auto entry = ChooseTransport(spec.config, spec.hosts);
  if (!entry.ok()) {
    local = entry.status();
  } else if (!spec.local_address.ok()) {
    local = spec.local_address.status();
  } else {
    TransportContext context{rank, nranks, spec.comm_id, spec.secret, spec.hosts,
                             *spec.local_address, spec.config};
    auto transport = (*entry)->create(context);
    if (transport.ok()) {
      comm->transport_ = std::move(*transport);
      auto listened = comm->transport_->listen();
      if (listened.ok()) address = std::move(*listened);
      else local = listened.status();
    } else {
      local = transport.status();
    }
  }
  std::string chosen = entry.ok() ? (*entry)->name : "";
  BRAID_ASSIGN_OR_RETURN(std::vector<Blob> blobs,
                         exchange(EncodeJoinBlob(chosen, local, address), deadline));
  if (blobs.size() != static_cast<size_t>(nranks)) {
    return MakeError(absl::StatusCode::kInternal, "communicator creation",
                     absl::StrCat("the blob exchange returned ", blobs.size(), " blobs for ",
                                  nranks, " ranks"));
  }
  std::vector<Blob> addresses(static_cast<size_t>(nranks));
  for (int r = 0; r < nranks; ++r) {
    const std::string& host = spec.hosts[static_cast<size_t>(r)];
    BRAID_ASSIGN_OR_RETURN(JoinInfo info, DecodeJoinBlob(blobs[static_cast<size_t>(r)], r));
    if (!info.ok) {
      return MakeError(absl::StatusCode::kFailedPrecondition, "communicator creation",
                       absl::StrCat(DescribeRank(r, host), " could not start a transport: ",
                                    info.text));
    }
    if (info.text != chosen) {
      return MakeError(absl::StatusCode::kFailedPrecondition, "communicator creation",
                       absl::StrCat("ranks disagree on the transport: rank ", rank, " chose \"",
                                    chosen, "\" but ", DescribeRank(r, host), " chose \"",
                                    info.text, "\""),
                       "set BRAID_TRANSPORT to the same value on every rank");
    }
    addresses[static_cast<size_t>(r)] = std::move(info.address);
  }
  comm->transport_name_ = chosen;
  BRAID_LOG(kInfo, "transport ", chosen, ", ", nranks, " ranks");

  std::vector<int> peers;
  for (int r = 0; r < nranks; ++r) {
    if (r != rank) peers.push_back(r);
  }
  BRAID_ASSIGN_OR_RETURN(comm->connections_,
                         comm->transport_->connect(peers, addresses, deadline));
  comm->peers_.assign(static_cast<size_t>(nranks), nullptr);
  comm->sends_issued_.assign(static_cast<size_t>(nranks), 0);
  comm->recvs_issued_.assign(static_cast<size_t>(nranks), 0);
  for (auto& connection : comm->connections_) {
    comm->peers_[static_cast<size_t>(connection->peer())] = connection.get();
  }
  auto spin = spec.config.spin;
  if (spin.count() < 0) {
    cpu_set_t cpus;
    int ncpus = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? CPU_COUNT(&cpus) : 1;
    int local_ranks = static_cast<int>(std::count(comm->hosts_.begin(), comm->hosts_.end(),
                                                  comm->hosts_[static_cast<size_t>(rank)]));
    spin = SpinForHost(local_ranks, ncpus);
    BRAID_LOG(kInfo, local_ranks, " ranks on this host, ", ncpus, " CPUs: spinning ",
              spin.count(), " us before sleeping");
  }
  comm->engine_ = std::make_unique<ProgressEngine>(comm->transport_.get(), spin);
  // Second exchange round: where each member's recovery listener is (braidCommShrink).
  if (spec.local_address.ok()) {
    BRAID_RETURN_IF_ERROR(comm->PrepareRecovery(exchange, *spec.local_address, deadline));
  } else {
    BRAID_RETURN_IF_ERROR(exchange(Blob{}, deadline).status());
  }
  comm->StartHeartbeat();
  return comm;
}

}  // namespace braid
