#include "core/communicator.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bootstrap/bootstrap.h"
#include "collectives/collectives.h"
#include "collectives/tuning.h"
#include "core/log.h"
#include "core/status.h"

namespace braid {
namespace {

// FNV-1a: a stable (cross-process) 64-bit id for the communicator, derived from the secret.
uint64_t CommIdFromSecret(std::span<const std::byte> secret, uint16_t port) {
  uint64_t h = 1469598103934665603ull;
  for (std::byte b : secret) h = (h ^ static_cast<uint8_t>(b)) * 1099511628211ull;
  return (h ^ port) * 1099511628211ull;
}

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

bool Operation::done() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return done_;
}

absl::Status Operation::status() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return status_;
}

absl::Status Operation::Wait() {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [&] { return done_; });
  return status_;
}

void Operation::Finish(absl::Status status) {
  std::lock_guard<std::mutex> lock(mutex_);
  status_ = std::move(status);
  done_ = true;
  cv_.notify_all();
}

absl::StatusOr<std::unique_ptr<Communicator>> Communicator::Create(const UniqueId& id, int nranks,
                                                                   int rank) {
  if (nranks < 1 || rank < 0 || rank >= nranks) {
    return MakeError(absl::StatusCode::kInvalidArgument, "braidCommInitRank",
                     absl::StrCat("rank ", rank, " is out of range for ", nranks, " ranks"),
                     "pass 0 <= rank < nranks with nranks >= 1");
  }
  BRAID_ASSIGN_OR_RETURN(Config config, ParseConfig());
  SetLogLevel(config.log_level);
  std::unique_ptr<Communicator> comm(new Communicator());
  BRAID_ASSIGN_OR_RETURN(comm->tuning_.overrides, ParseAlgorithmOverrides(config.algo));
  comm->tuning_.chunk_override = config.chunk_bytes;
  comm->rank_ = rank;
  comm->nranks_ = nranks;
  comm->config_ = config;
  comm->timeout_ms_ = config.timeout.count();
  Deadline deadline = Deadline::After(config.timeout);

  BRAID_ASSIGN_OR_RETURN(std::unique_ptr<Bootstrap> bootstrap,
                         Bootstrap::Join(id, rank, nranks, deadline));
  comm->hosts_ = bootstrap->hosts();
  SetLogIdentity(rank, comm->hosts_[static_cast<size_t>(rank)]);
  BRAID_LOG(kInfo, "configuration: ", DescribeConfig(config));

  // Start this rank's transport; a failure is published rather than returned, so the other
  // ranks learn why instead of waiting for a timeout.
  absl::Status local = absl::OkStatus();
  Blob address;
  auto entry = ChooseTransport(config);
  auto local_address = SelectLocalAddress(config.socket_ifname, id.root_host);
  if (!entry.ok()) {
    local = entry.status();
  } else if (!local_address.ok()) {
    local = local_address.status();
  } else {
    TransportContext context{rank, nranks, CommIdFromSecret(id.secret, id.root_port), id.secret,
                             comm->hosts_, *local_address, config};
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
                         bootstrap->AllGather(EncodeJoinBlob(chosen, local, address), deadline));
  std::vector<Blob> addresses(static_cast<size_t>(nranks));
  for (int r = 0; r < nranks; ++r) {
    BRAID_ASSIGN_OR_RETURN(JoinInfo info, DecodeJoinBlob(blobs[static_cast<size_t>(r)], r));
    if (!info.ok) {
      return MakeError(absl::StatusCode::kFailedPrecondition, "communicator creation",
                       absl::StrCat(DescribeRank(r, comm->hosts_[static_cast<size_t>(r)]),
                                    " could not start a transport: ", info.text));
    }
    if (info.text != chosen) {
      return MakeError(absl::StatusCode::kFailedPrecondition, "communicator creation",
                       absl::StrCat("ranks disagree on the transport: rank ", rank, " chose \"",
                                    chosen, "\" but ",
                                    DescribeRank(r, comm->hosts_[static_cast<size_t>(r)]),
                                    " chose \"", info.text, "\""),
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
  for (auto& connection : comm->connections_) {
    comm->peers_[static_cast<size_t>(connection->peer())] = connection.get();
  }
  bootstrap->Close();
  auto spin = config.spin;
  if (spin.count() < 0) {
    cpu_set_t cpus;
    int ncpus = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? CPU_COUNT(&cpus) : 1;
    int local = static_cast<int>(std::count(comm->hosts_.begin(), comm->hosts_.end(),
                                            comm->hosts_[static_cast<size_t>(rank)]));
    spin = SpinForHost(local, ncpus);
    BRAID_LOG(kInfo, local, " ranks on this host, ", ncpus, " CPUs: spinning ", spin.count(),
              " us before sleeping");
  }
  comm->engine_ = std::make_unique<ProgressEngine>(comm->transport_.get(), spin);
  BRAID_RETURN_IF_ERROR(comm->Tune());
  return comm;
}

absl::Status Communicator::Tune() {
  if (!config_.tuning_file.empty()) {
    BRAID_ASSIGN_OR_RETURN(tuning_.link, LoadTuningFile(config_.tuning_file));
    tuning_.source = absl::StrCat("file ", config_.tuning_file);
  } else if (config_.tune && nranks_ > 1) {
    LinkModel measured;
    BRAID_RETURN_IF_ERROR(Run("link measurement", [&](CollectiveContext& ctx) {
      BRAID_ASSIGN_OR_RETURN(measured, MeasureLinkModel(ctx));
      return absl::OkStatus();
    }));
    tuning_.link = measured;
    tuning_.source = "measured";
  }
  BRAID_LOG(kInfo, "selector: link model ", DescribeLinkModel(tuning_.link), " (",
            tuning_.source, ")");
  return absl::OkStatus();
}

Choice Communicator::ChooseAlgorithm(Collective collective, size_t bytes) const {
  return Select(collective, nranks_, bytes, tuning_);
}

Communicator::~Communicator() {
  {
    std::lock_guard<std::mutex> lock(order_mutex_);
    stopping_ = true;
  }
  order_cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  connections_.clear();
  transport_.reset();
}

void Communicator::Abort() {
  // Mark broken before waking waiters, so nothing woken can start using the transport.
  RecordFailure(absl::CancelledError("the communicator was aborted (braidCommAbort)"));
  if (engine_) engine_->Abort();
  {
    std::lock_guard<std::mutex> lock(order_mutex_);
    stopping_ = true;
  }
  order_cv_.notify_all();
}

absl::Status Communicator::async_error() const {
  std::lock_guard<std::mutex> lock(error_mutex_);
  return async_error_;
}

void Communicator::RecordFailure(const absl::Status& status) {
  std::lock_guard<std::mutex> lock(error_mutex_);
  if (async_error_.ok()) async_error_ = status;
  broken_.store(true);
}

absl::Status Communicator::CheckUsable() const {
  if (!broken_.load()) return absl::OkStatus();
  absl::Status first = async_error();
  if (first.code() == absl::StatusCode::kCancelled) return first;
  return MakeError(absl::StatusCode::kFailedPrecondition, "communicator is unusable",
                   absl::StrCat("an earlier operation failed: ", first.message()),
                   "destroy this communicator (braidCommAbort) and create a new one");
}

absl::Status Communicator::Execute(uint64_t ticket, const std::string& description,
                                   const Body& body) {
  BRAID_RETURN_IF_ERROR(CheckUsable());
  CollectiveContext ctx;
  ctx.rank = rank_;
  ctx.nranks = nranks_;
  ctx.peers = peers_;
  ctx.hosts = &hosts_;
  ctx.engine = engine_.get();
  ctx.sequence = ticket;
  ctx.deadline = Deadline::After(std::chrono::milliseconds(timeout_ms_.load()));
  ctx.chunk_bytes = config_.chunk_bytes;
  ctx.operation = absl::StrCat(description, " #", ticket);
  ctx.scratch = &scratch_;
  ctx.tuning = &tuning_;
  BRAID_LOG(kTrace, "start ", ctx.operation);
  absl::Status status = body(ctx);
  BRAID_LOG(kTrace, "end ", ctx.operation, ": ", status.ok() ? "ok" : status.message());
  if (!status.ok()) {
    // Stray messages of a half-finished collective would corrupt the next one: the
    // communicator is broken. Closing the transport also tells the peers at once.
    BRAID_LOG(kWarn, status.message());
    RecordFailure(status);
    connections_.clear();
    peers_.assign(peers_.size(), nullptr);
    transport_.reset();
  }
  return status;
}

absl::Status Communicator::Run(std::string description, const Body& body) {
  uint64_t ticket;
  {
    std::unique_lock<std::mutex> lock(order_mutex_);
    ticket = next_ticket_++;
    order_cv_.wait(lock, [&] { return running_ticket_ == ticket || stopping_; });
  }
  absl::Status status = Execute(ticket, description, body);
  {
    std::lock_guard<std::mutex> lock(order_mutex_);
    running_ticket_ = ticket + 1;
  }
  order_cv_.notify_all();
  return status;
}

absl::StatusOr<std::shared_ptr<Operation>> Communicator::Start(std::string description,
                                                               Body body) {
  BRAID_RETURN_IF_ERROR(CheckUsable());
  auto operation = std::make_shared<Operation>();
  {
    std::lock_guard<std::mutex> lock(order_mutex_);
    queue_.push_back({next_ticket_++, std::move(description), std::move(body), operation});
    if (!worker_.joinable()) {
      worker_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "braid-worker");
        WorkerLoop();
      });
    }
  }
  order_cv_.notify_all();
  return operation;
}

void Communicator::WorkerLoop() {
  std::unique_lock<std::mutex> lock(order_mutex_);
  while (true) {
    order_cv_.wait(lock, [&] {
      return stopping_ || (!queue_.empty() && running_ticket_ == queue_.front().ticket);
    });
    if (queue_.empty() && stopping_) return;
    if (queue_.empty() || running_ticket_ != queue_.front().ticket) {
      // Stopping with work left: fail it rather than run it.
      Pending pending = std::move(queue_.front());
      queue_.pop_front();
      absl::Status why = CheckUsable();
      pending.operation->Finish(why.ok() ? absl::CancelledError("communicator destroyed") : why);
      continue;
    }
    Pending pending = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    absl::Status status = Execute(pending.ticket, pending.description, pending.body);
    pending.operation->Finish(status);
    lock.lock();
    running_ticket_ = pending.ticket + 1;
    order_cv_.notify_all();
  }
}

}  // namespace braid
