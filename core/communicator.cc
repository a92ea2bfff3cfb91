#include "core/communicator.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bootstrap/bootstrap.h"
#include "bootstrap/recovery.h"
#include "collectives/collectives.h"
#include "core/group_builder.h"
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
  BRAID_ASSIGN_OR_RETURN(Config config, BeginCreation("braidCommInitRank", nranks, rank));
  Deadline deadline = Deadline::After(config.timeout);

  BRAID_ASSIGN_OR_RETURN(std::unique_ptr<Bootstrap> bootstrap,
                         Bootstrap::Join(id, rank, nranks, deadline));
  SetLogIdentity(rank, bootstrap->hosts()[static_cast<size_t>(rank)]);
  BRAID_LOG(kInfo, "configuration: ", DescribeConfig(config));

  GroupSpec spec;
  spec.rank = rank;
  spec.nranks = nranks;
  spec.hosts = bootstrap->hosts();
  spec.comm_id = CommIdFromSecret(id.secret, id.root_port);
  spec.secret = id.secret;
  spec.local_address = SelectLocalAddress(config.socket_ifname, id.root_host);
  spec.config = config;
  BlobExchange exchange = [&](const Blob& mine, Deadline d) {
    return bootstrap->AllGather(mine, d);
  };
  BRAID_ASSIGN_OR_RETURN(std::unique_ptr<Communicator> built,
                         BuildGroup(std::move(spec), exchange, deadline));
  bootstrap->Close();
  return built;
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
  heartbeat_.reset();
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
                                   const Body& body, bool collective) {
  BRAID_RETURN_IF_ERROR(CheckUsable());
  CollectiveContext ctx;
  ctx.rank = rank_;
  ctx.nranks = nranks_;
  ctx.peers = peers_;
  ctx.hosts = &hosts_;
  ctx.engine = engine_.get();
  ctx.sequence = collective ? next_collective_++ : 0;
  ctx.deadline = Deadline::After(std::chrono::milliseconds(timeout_ms_.load()));
  ctx.chunk_bytes = config_.chunk_bytes;
  ctx.operation = absl::StrCat(description, " #", ticket);
  ctx.scratch = &scratch_;
  ctx.agreement_round = config_.debug_check;
  ctx.tuning = &tuning_;
  BRAID_LOG(kTrace, "start ", ctx.operation);
  absl::Status status = body(ctx);
  BRAID_LOG(kTrace, "end ", ctx.operation, ": ", status.ok() ? "ok" : status.message());
  if (!status.ok()) {
    // Stray messages of a half-finished collective would corrupt the next one: the
    // communicator is broken. Closing the transport also tells the peers at once.
    BRAID_LOG(kWarn, status.message());
    RecordFailure(status);
    heartbeat_.reset();
    RememberFailedRanks();
    connections_.clear();
    peers_.assign(peers_.size(), nullptr);
    transport_.reset();
  }
  return status;
}

absl::Status Communicator::Run(std::string description, const Body& body, bool collective) {
  uint64_t ticket;
  {
    std::unique_lock<std::mutex> lock(order_mutex_);
    ticket = next_ticket_++;
    order_cv_.wait(lock, [&] { return running_ticket_ == ticket || stopping_; });
  }
  absl::Status status = Execute(ticket, description, body, collective);
  {
    std::lock_guard<std::mutex> lock(order_mutex_);
    running_ticket_ = ticket + 1;
  }
  order_cv_.notify_all();
  return status;
}

absl::StatusOr<std::shared_ptr<Operation>> Communicator::Start(
    std::string description, Body body, bool collective, std::shared_ptr<Operation> operation) {
  BRAID_RETURN_IF_ERROR(CheckUsable());
  if (!operation) operation = std::make_shared<Operation>();
  {
    std::lock_guard<std::mutex> lock(order_mutex_);
    queue_.push_back(
        {next_ticket_++, std::move(description), std::move(body), operation, collective});
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
    absl::Status status =
        Execute(pending.ticket, pending.description, pending.body, pending.collective);
    pending.operation->Finish(status);
    lock.lock();
    running_ticket_ = pending.ticket + 1;
    order_cv_.notify_all();
  }
}

}  // namespace braid
