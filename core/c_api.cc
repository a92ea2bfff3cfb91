// The C ABI of include/braid/braid.h over Communicator. Handles stay valid (as small tombstones)
// after destroy, so a call on a destroyed communicator is an error, never a crash.
#include <netdb.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "bootstrap/bootstrap.h"
#include "braid/braid.h"
#include "core/communicator.h"
#include "core/group.h"
#include "core/group_builder.h"
#include "core/status.h"

#define BRAID_API extern "C" __attribute__((visibility("default")))

struct braidComm {
  static constexpr uint64_t kMagic = 0x42524149442d434dull;  // "BRAID-CM"
  uint64_t magic = kMagic;
  std::mutex mutex;
  std::shared_ptr<braid::Communicator> comm;  // null once destroyed or aborted.
  bool aborted = false;
};

struct braidRequest {
  std::shared_ptr<braid::Operation> operation;
};

namespace {

thread_local std::string t_last_error;

braidResult_t ToResult(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk: return braidSuccess;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange: return braidInvalidArgument;
    case absl::StatusCode::kFailedPrecondition: return braidInvalidUsage;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kAborted: return braidRemoteError;
    case absl::StatusCode::kDeadlineExceeded: return braidTimeout;
    case absl::StatusCode::kCancelled: return braidAborted;
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnimplemented: return braidInternalError;
    default: return braidSystemError;
  }
}

braidResult_t Fail(const absl::Status& status) {
  if (!status.ok()) t_last_error = std::string(status.message());
  return ToResult(status);
}

// Takes a reference to the live communicator behind a handle, or explains why there is none.
absl::StatusOr<std::shared_ptr<braid::Communicator>> Lookup(braidComm_t handle) {
  if (handle == nullptr) return absl::InvalidArgumentError("the communicator is NULL");
  if (handle->magic != braidComm::kMagic) {
    return absl::InvalidArgumentError("the communicator handle is not a Braid communicator");
  }
  std::lock_guard<std::mutex> lock(handle->mutex);
  if (!handle->comm) {
    return absl::FailedPreconditionError(
        handle->aborted ? "the communicator was aborted (braidCommAbort); create a new one"
                        : "the communicator was destroyed (braidCommDestroy)");
  }
  return handle->comm;
}

std::optional<braid::DataType> Type(braidDataType_t t) {
  return braid::DataTypeFromInt(static_cast<int>(t));
}
std::optional<braid::RedOp> Op(braidRedOp_t op) { return braid::RedOpFromInt(static_cast<int>(op)); }

absl::Status BadType(int t) {
  return absl::InvalidArgumentError(absl::StrCat("unknown datatype ", t, " (valid: 0..",
                                                 braid::kNumDataTypes - 1, ")"));
}
absl::Status BadOp(int op) {
  return absl::InvalidArgumentError(
      absl::StrCat("unknown reduction op ", op, " (valid: 0..", braid::kNumRedOps - 1, ")"));
}

// Handles are never freed, only emptied, so a call on a destroyed communicator finds a
// tombstone instead of freed memory. They stay reachable here (72 bytes each).
std::mutex g_handles_mutex;
std::vector<std::unique_ptr<braidComm>>& Handles() {
  static auto* handles = new std::vector<std::unique_ptr<braidComm>>();
  return *handles;
}

braidResult_t Wrap(braidComm_t* out, absl::StatusOr<std::unique_ptr<braid::Communicator>> made) {
  if (!made.ok()) return Fail(made.status());
  auto* h = new braidComm();
  {
    std::lock_guard<std::mutex> lock(g_handles_mutex);
    Handles().emplace_back(h);
  }
  h->comm = std::move(*made);
  *out = h;
  return braidSuccess;
}

// Runs a collective blocking or starts it, depending on whether a request is wanted.
template <typename MakeBody>
braidResult_t Collective(braidComm_t handle, braidRequest_t* request, std::string description,
                         MakeBody make_body) {
  auto comm = Lookup(handle);
  if (!comm.ok()) return Fail(comm.status());
  absl::StatusOr<braid::Communicator::Body> body = make_body(**comm);
  if (!body.ok()) return Fail(body.status());
  if (braid::InGroup()) {  // issued by braidGroupEnd (core/group.h).
    auto operation = braid::Defer(
        {*comm, std::move(description), std::move(*body), std::nullopt, request == nullptr});
    if (request != nullptr) *request = new braidRequest{std::move(operation)};
    return braidSuccess;
  }
  if (request == nullptr) {
    return Fail((*comm)->Run(std::move(description), *body));
  }
  auto operation = (*comm)->Start(std::move(description), std::move(*body));
  if (!operation.ok()) return Fail(operation.status());
  *request = new braidRequest{std::move(*operation)};
  return braidSuccess;
}

}  // namespace

BRAID_API const char* braidGetErrorString(braidResult_t result) {
  switch (result) {
    case braidSuccess: return "no error";
    case braidSystemError: return "system error (an OS or library call failed)";
    case braidInternalError: return "internal error (a bug in Braid; please report it)";
    case braidInvalidArgument: return "invalid argument";
    case braidInvalidUsage: return "invalid usage";
    case braidRemoteError: return "remote error (a peer failed, disconnected or disagreed)";
    case braidInProgress: return "operation in progress";
    case braidTimeout: return "timeout";
    case braidAborted: return "communicator aborted";
    default: return "unknown result code";
  }
}

BRAID_API const char* braidGetLastError(void) { return t_last_error.c_str(); }

BRAID_API braidResult_t braidGetVersion(int* version) {
  if (version == nullptr) return Fail(absl::InvalidArgumentError("version is NULL"));
  *version = BRAID_VERSION_CODE;
  return braidSuccess;
}

BRAID_API braidResult_t braidGetUniqueId(braidUniqueId* unique_id) {
  if (unique_id == nullptr) return Fail(absl::InvalidArgumentError("unique_id is NULL"));
  auto config = braid::ParseConfig();
  if (!config.ok()) return Fail(config.status());
  auto address = braid::SelectLocalAddress(config->socket_ifname, "");
  if (!address.ok()) return Fail(address.status());
  auto id = braid::StartRoot(*address, 0);
  if (!id.ok()) return Fail(id.status());
  std::vector<std::byte> bytes = braid::EncodeUniqueId(*id);
  std::memcpy(unique_id->internal, bytes.data(), BRAID_UNIQUE_ID_BYTES);
  return braidSuccess;
}

BRAID_API braidResult_t braidCommInitRank(braidComm_t* comm, int nranks, braidUniqueId unique_id,
                                          int rank) {
  if (comm == nullptr) return Fail(absl::InvalidArgumentError("comm is NULL"));
  auto id = braid::DecodeUniqueId(std::span<const std::byte>(
      reinterpret_cast<const std::byte*>(unique_id.internal), BRAID_UNIQUE_ID_BYTES));
  if (!id.ok()) return Fail(id.status());
  return Wrap(comm, braid::Communicator::Create(*id, nranks, rank));
}

BRAID_API braidResult_t braidCommInitFromEnv(braidComm_t* comm) {
  if (comm == nullptr) return Fail(absl::InvalidArgumentError("comm is NULL"));
  auto env = braid::DetectLaunchEnvironment();
  if (!env.ok()) return Fail(env.status());
  // Resolve the root's name to a numeric address, as the unique id carries one.
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(env->root_host.c_str(), nullptr, &hints, &found);
  if (rc != 0 || found == nullptr) {
    return Fail(braid::MakeError(absl::StatusCode::kInvalidArgument, "braidCommInitFromEnv",
                                 absl::StrCat("cannot resolve the root host \"", env->root_host,
                                              "\" (from ", env->source, "): ", gai_strerror(rc)),
                                 "set BRAID_ROOT or MASTER_ADDR to a reachable host"));
  }
  char numeric[NI_MAXHOST] = {};
  getnameinfo(found->ai_addr, found->ai_addrlen, numeric, sizeof(numeric), nullptr, 0,
              NI_NUMERICHOST);
  freeaddrinfo(found);
  braid::UniqueId id;
  id.root_host = numeric;
  id.root_port = env->root_port;
  // Launchers share no secret with Braid unless they set BRAID_SECRET (braidrun does); without
  // one, the secret is derived from the root address, which only guards against accidents.
  const char* secret = std::getenv("BRAID_SECRET");
  std::string material = secret && *secret ? std::string(secret)
                                           : absl::StrCat("braid:", id.root_host, ":", id.root_port);
  id.secret.resize(16);
  uint64_t h1 = 1469598103934665603ull, h2 = 0x9e3779b97f4a7c15ull;
  for (unsigned char c : material) {
    h1 = (h1 ^ c) * 1099511628211ull;
    h2 = (h2 ^ c) * 0x100000001b3ull + (h2 >> 29);
  }
  std::memcpy(id.secret.data(), &h1, 8);
  std::memcpy(id.secret.data() + 8, &h2, 8);
  if (env->rank == 0) {
    // Listen only on the root's own address; fall back to every address when the name
    // resolves to one this host cannot bind (e.g. behind NAT).
    auto root = braid::StartRoot(id.root_host, env->root_port, id.secret);
    if (!root.ok() && root.status().message().find("in use") == std::string::npos) {
      root = braid::StartRoot(id.root_host.find(':') == std::string::npos ? "0.0.0.0" : "::",
                              env->root_port, id.secret);
    }
    if (!root.ok()) return Fail(root.status());
  }
  return Wrap(comm, braid::Communicator::Create(id, env->world_size, env->rank));
}

BRAID_API braidResult_t braidCommDestroy(braidComm_t comm) {
  auto live = Lookup(comm);
  if (!live.ok()) return Fail(live.status());
  std::shared_ptr<braid::Communicator> doomed;
  {
    std::lock_guard<std::mutex> lock(comm->mutex);
    doomed = std::move(comm->comm);
  }
  return braidSuccess;  // freed when the last in-flight call (if any) returns.
}

BRAID_API braidResult_t braidCommAbort(braidComm_t comm) {
  auto live = Lookup(comm);
  if (!live.ok()) return Fail(live.status());
  (*live)->Abort();
  std::lock_guard<std::mutex> lock(comm->mutex);
  comm->comm.reset();
  comm->aborted = true;
  return braidSuccess;
}

BRAID_API braidResult_t braidCommCount(const braidComm_t comm, int* count) {
  auto live = Lookup(comm);
  if (!live.ok()) return Fail(live.status());
  if (count == nullptr) return Fail(absl::InvalidArgumentError("count is NULL"));
  *count = (*live)->size();
  return braidSuccess;
}

BRAID_API braidResult_t braidCommUserRank(const braidComm_t comm, int* rank) {
  auto live = Lookup(comm);
  if (!live.ok()) return Fail(live.status());
  if (rank == nullptr) return Fail(absl::InvalidArgumentError("rank is NULL"));
  *rank = (*live)->rank();
  return braidSuccess;
}

BRAID_API braidResult_t braidCommGetAsyncError(braidComm_t comm, braidResult_t* async_error) {
  if (async_error == nullptr) return Fail(absl::InvalidArgumentError("async_error is NULL"));
  auto live = Lookup(comm);
  if (!live.ok()) return Fail(live.status());
  absl::Status error = (*live)->async_error();
  *async_error = ToResult(error);
  if (!error.ok()) t_last_error = std::string(error.message());
  return braidSuccess;
}

BRAID_API braidResult_t braidCommSetTimeout(braidComm_t comm, double seconds) {
  auto live = Lookup(comm);
  if (!live.ok()) return Fail(live.status());
  if (!(seconds > 0)) return Fail(absl::InvalidArgumentError("timeout must be > 0 seconds"));
  (*live)->set_timeout(std::chrono::milliseconds(static_cast<long long>(seconds * 1000)));
  return braidSuccess;
}

BRAID_API braidResult_t braidCommTransportName(const braidComm_t comm, const char** name) {
  auto live = Lookup(comm);
  if (!live.ok()) return Fail(live.status());
  if (name == nullptr) return Fail(absl::InvalidArgumentError("name is NULL"));
  *name = (*live)->transport_name().c_str();
  return braidSuccess;
}

#define BRAID_CHECK_TYPE(t) \
  if (!Type(t)) return Fail(BadType(static_cast<int>(t)))
#define BRAID_CHECK_OP(o) \
  if (!Op(o)) return Fail(BadOp(static_cast<int>(o)))

namespace {

braidResult_t AllReduceImpl(const void* s, void* r, size_t n, braidDataType_t t, braidRedOp_t op,
                            braidComm_t comm, braidRequest_t* request) {
  BRAID_CHECK_TYPE(t);
  BRAID_CHECK_OP(op);
  return Collective(comm, request, braid::DescribeCollective("AllReduce", *Type(t), n),
                    [&](braid::Communicator& c) { return c.AllReduceBody(s, r, n, *Type(t), *Op(op)); });
}

braidResult_t AllGatherImpl(const void* s, void* r, size_t n, braidDataType_t t, braidComm_t comm,
                            braidRequest_t* request) {
  BRAID_CHECK_TYPE(t);
  return Collective(comm, request, braid::DescribeCollective("AllGather", *Type(t), n),
                    [&](braid::Communicator& c) { return c.AllGatherBody(s, r, n, *Type(t)); });
}

braidResult_t ReduceScatterImpl(const void* s, void* r, size_t n, braidDataType_t t,
                                braidRedOp_t op, braidComm_t comm, braidRequest_t* request) {
  BRAID_CHECK_TYPE(t);
  BRAID_CHECK_OP(op);
  return Collective(comm, request, braid::DescribeCollective("ReduceScatter", *Type(t), n),
                    [&](braid::Communicator& c) {
                      return c.ReduceScatterBody(s, r, n, *Type(t), *Op(op));
                    });
}

braidResult_t BroadcastImpl(const void* s, void* r, size_t n, braidDataType_t t, int root,
                            braidComm_t comm, braidRequest_t* request) {
  BRAID_CHECK_TYPE(t);
  return Collective(comm, request, braid::DescribeCollective("Broadcast", *Type(t), n),
                    [&](braid::Communicator& c) { return c.BroadcastBody(s, r, n, *Type(t), root); });
}

braidResult_t BarrierImpl(braidComm_t comm, braidRequest_t* request) {
  return Collective(comm, request, "Barrier", [](braid::Communicator& c) {
    return absl::StatusOr<braid::Communicator::Body>(c.BarrierBody());
  });
}

// Waiting inside the group that will issue the request would never return.
absl::Status RequestInOpenGroup(absl::string_view call) {
  return braid::MakeError(absl::StatusCode::kFailedPrecondition, call,
                          "the request belongs to a group that has not ended yet",
                          "call braidGroupEnd before testing or waiting on requests made inside "
                          "braidGroupStart/braidGroupEnd");
}

braidResult_t CheckRequestOut(braidRequest_t* request) {
  if (request == nullptr) return Fail(absl::InvalidArgumentError("request is NULL"));
  *request = nullptr;
  return braidSuccess;
}

}  // namespace

BRAID_API braidResult_t braidAllReduce(const void* s, void* r, size_t n, braidDataType_t t,
                                       braidRedOp_t op, braidComm_t comm) {
  return AllReduceImpl(s, r, n, t, op, comm, nullptr);
}
BRAID_API braidResult_t braidAllGather(const void* s, void* r, size_t n, braidDataType_t t,
                                       braidComm_t comm) {
  return AllGatherImpl(s, r, n, t, comm, nullptr);
}
BRAID_API braidResult_t braidReduceScatter(const void* s, void* r, size_t n, braidDataType_t t,
                                           braidRedOp_t op, braidComm_t comm) {
  return ReduceScatterImpl(s, r, n, t, op, comm, nullptr);
}
BRAID_API braidResult_t braidBroadcast(const void* s, void* r, size_t n, braidDataType_t t,
                                       int root, braidComm_t comm) {
  return BroadcastImpl(s, r, n, t, root, comm, nullptr);
}
BRAID_API braidResult_t braidBarrier(braidComm_t comm) { return BarrierImpl(comm, nullptr); }

BRAID_API braidResult_t braidIallReduce(const void* s, void* r, size_t n, braidDataType_t t,
                                        braidRedOp_t op, braidComm_t comm, braidRequest_t* req) {
  if (braidResult_t rc = CheckRequestOut(req); rc != braidSuccess) return rc;
  return AllReduceImpl(s, r, n, t, op, comm, req);
}
BRAID_API braidResult_t braidIallGather(const void* s, void* r, size_t n, braidDataType_t t,
                                        braidComm_t comm, braidRequest_t* req) {
  if (braidResult_t rc = CheckRequestOut(req); rc != braidSuccess) return rc;
  return AllGatherImpl(s, r, n, t, comm, req);
}
BRAID_API braidResult_t braidIreduceScatter(const void* s, void* r, size_t n, braidDataType_t t,
                                            braidRedOp_t op, braidComm_t comm,
                                            braidRequest_t* req) {
  if (braidResult_t rc = CheckRequestOut(req); rc != braidSuccess) return rc;
  return ReduceScatterImpl(s, r, n, t, op, comm, req);
}
BRAID_API braidResult_t braidIbroadcast(const void* s, void* r, size_t n, braidDataType_t t,
                                        int root, braidComm_t comm, braidRequest_t* req) {
  if (braidResult_t rc = CheckRequestOut(req); rc != braidSuccess) return rc;
  return BroadcastImpl(s, r, n, t, root, comm, req);
}
BRAID_API braidResult_t braidIbarrier(braidComm_t comm, braidRequest_t* req) {
  if (braidResult_t rc = CheckRequestOut(req); rc != braidSuccess) return rc;
  return BarrierImpl(comm, req);
}

BRAID_API braidResult_t braidTest(braidRequest_t request, int* done) {
  if (request == nullptr || done == nullptr) {
    return Fail(absl::InvalidArgumentError("request and done must not be NULL"));
  }
  if (braid::GroupHolds(request->operation.get())) return Fail(RequestInOpenGroup("braidTest"));
  *done = request->operation->done() ? 1 : 0;
  if (!*done) return braidSuccess;
  absl::Status status = request->operation->status();
  delete request;
  return Fail(status);
}

BRAID_API braidResult_t braidWait(braidRequest_t request) {
  if (request == nullptr) return Fail(absl::InvalidArgumentError("request is NULL"));
  if (braid::GroupHolds(request->operation.get())) return Fail(RequestInOpenGroup("braidWait"));
  absl::Status status = request->operation->Wait();
  delete request;
  return Fail(status);
}

// ---- Reduce, AllToAll(v), Send/Recv and groups (issue 6) ----

namespace {

braidResult_t ReduceImpl(const void* s, void* r, size_t n, braidDataType_t t, braidRedOp_t op,
                         int root, braidComm_t comm, braidRequest_t* request) {
  BRAID_CHECK_TYPE(t);
  BRAID_CHECK_OP(op);
  return Collective(comm, request, braid::DescribeCollective("Reduce", *Type(t), n),
                    [&](braid::Communicator& c) { return c.ReduceBody(s, r, n, *Type(t), *Op(op), root); });
}

braidResult_t AllToAllImpl(const void* s, void* r, size_t n, braidDataType_t t, braidComm_t comm,
                           braidRequest_t* request) {
  BRAID_CHECK_TYPE(t);
  return Collective(comm, request, braid::DescribeCollective("AllToAll", *Type(t), n),
                    [&](braid::Communicator& c) { return c.AllToAllBody(s, r, n, *Type(t)); });
}

braidResult_t AllToAllvImpl(const void* s, const size_t* sc, const size_t* sd, void* r,
                            const size_t* rc, const size_t* rd, braidDataType_t t,
                            braidComm_t comm, braidRequest_t* request) {
  BRAID_CHECK_TYPE(t);
  return Collective(comm, request, absl::StrCat("AllToAllv (", std::string(braid::DataTypeName(*Type(t))), ")"),
                    [&](braid::Communicator& c) {
                      return c.AllToAllvBody(s, sc, sd, r, rc, rd, *Type(t));
                    });
}

// A send or receive: numbered now, run at once (or deferred to braidGroupEnd inside a group).
braidResult_t TransferImpl(bool is_send, const void* buf, size_t n, braidDataType_t t, int peer,
                           braidComm_t comm, braidRequest_t* request) {
  BRAID_CHECK_TYPE(t);
  auto live = Lookup(comm);
  if (!live.ok()) return Fail(live.status());
  auto transfer = (*live)->PrepareTransfer(is_send, buf, n, *Type(t), peer);
  if (!transfer.ok()) return Fail(transfer.status());
  std::string description =
      absl::StrCat(braid::DescribeCollective(is_send ? "Send" : "Recv", *Type(t), n),
                   is_send ? " to rank " : " from rank ", peer);
  std::shared_ptr<braid::Operation> operation;
  if (braid::InGroup()) {
    operation = braid::Defer({*live, std::move(description), nullptr, *transfer, request == nullptr});
  } else {
    auto body = (*live)->PointToPointBody({*transfer});
    if (!body.ok()) return Fail(body.status());
    if (request == nullptr) return Fail((*live)->Run(std::move(description), *body, false));
    auto started = (*live)->Start(std::move(description), std::move(*body), false);
    if (!started.ok()) return Fail(started.status());
    operation = std::move(*started);
  }
  if (request != nullptr) *request = new braidRequest{std::move(operation)};
  return braidSuccess;
}

}  // namespace

BRAID_API braidResult_t braidReduce(const void* s, void* r, size_t n, braidDataType_t t,
                                    braidRedOp_t op, int root, braidComm_t comm) {
  return ReduceImpl(s, r, n, t, op, root, comm, nullptr);
}
BRAID_API braidResult_t braidIreduce(const void* s, void* r, size_t n, braidDataType_t t,
                                     braidRedOp_t op, int root, braidComm_t comm,
                                     braidRequest_t* req) {
  if (braidResult_t rc = CheckRequestOut(req); rc != braidSuccess) return rc;
  return ReduceImpl(s, r, n, t, op, root, comm, req);
}
BRAID_API braidResult_t braidAllToAll(const void* s, void* r, size_t n, braidDataType_t t,
                                      braidComm_t comm) {
  return AllToAllImpl(s, r, n, t, comm, nullptr);
}
BRAID_API braidResult_t braidIallToAll(const void* s, void* r, size_t n, braidDataType_t t,
                                       braidComm_t comm, braidRequest_t* req) {
  if (braidResult_t rc = CheckRequestOut(req); rc != braidSuccess) return rc;
  return AllToAllImpl(s, r, n, t, comm, req);
}
BRAID_API braidResult_t braidAllToAllv(const void* s, const size_t* sc, const size_t* sd, void* r,
                                       const size_t* rc, const size_t* rd, braidDataType_t t,
                                       braidComm_t comm) {
  return AllToAllvImpl(s, sc, sd, r, rc, rd, t, comm, nullptr);
}
BRAID_API braidResult_t braidIallToAllv(const void* s, const size_t* sc, const size_t* sd, void* r,
                                        const size_t* rc, const size_t* rd, braidDataType_t t,
                                        braidComm_t comm, braidRequest_t* req) {
  if (braidResult_t result = CheckRequestOut(req); result != braidSuccess) return result;
  return AllToAllvImpl(s, sc, sd, r, rc, rd, t, comm, req);
}
BRAID_API braidResult_t braidSend(const void* s, size_t n, braidDataType_t t, int peer,
                                  braidComm_t comm) {
  return TransferImpl(true, s, n, t, peer, comm, nullptr);
}
BRAID_API braidResult_t braidRecv(void* r, size_t n, braidDataType_t t, int peer,
                                  braidComm_t comm) {
  return TransferImpl(false, r, n, t, peer, comm, nullptr);
}
BRAID_API braidResult_t braidIsend(const void* s, size_t n, braidDataType_t t, int peer,
                                   braidComm_t comm, braidRequest_t* req) {
  if (braidResult_t rc = CheckRequestOut(req); rc != braidSuccess) return rc;
  return TransferImpl(true, s, n, t, peer, comm, req);
}
BRAID_API braidResult_t braidIrecv(void* r, size_t n, braidDataType_t t, int peer,
                                   braidComm_t comm, braidRequest_t* req) {
  if (braidResult_t rc = CheckRequestOut(req); rc != braidSuccess) return rc;
  return TransferImpl(false, r, n, t, peer, comm, req);
}
BRAID_API braidResult_t braidGroupStart(void) {
  braid::GroupStart();
  return braidSuccess;
}
BRAID_API braidResult_t braidGroupEnd(void) { return Fail(braid::GroupEnd()); }
// ---- Communicator split and bootstrap through the application's collective (cluster) ----

BRAID_API braidResult_t braidCommSplit(braidComm_t comm, int color, int key, braidComm_t* newcomm) {
  if (newcomm == nullptr) return Fail(absl::InvalidArgumentError("newcomm is NULL"));
  *newcomm = nullptr;
  auto live = Lookup(comm);
  if (!live.ok()) return Fail(live.status());
  auto made = (*live)->Split(color, key);
  if (made.ok() && *made == nullptr) return braidSuccess;  // BRAID_SPLIT_NOCOLOR.
  return Wrap(newcomm, std::move(made));
}

BRAID_API braidResult_t braidCommInitFromAllGather(braidComm_t* comm, int nranks, int rank,
                                                   braidAllGatherFn_t allgather, void* ctx) {
  if (comm == nullptr || allgather == nullptr) {
    return Fail(absl::InvalidArgumentError("comm and allgather must not be NULL"));
  }
  *comm = nullptr;
  braid::FixedAllGather call = [&](const void* mine, void* all, size_t bytes) -> absl::Status {
    if (allgather(mine, all, bytes, ctx) == 0) return absl::OkStatus();
    return braid::MakeError(absl::StatusCode::kUnavailable, "braidCommInitFromAllGather",
                            absl::StrCat("rank ", rank, ": the application's all-gather of ",
                                         bytes, " bytes failed"),
                            "check the MPI communicator (or callback) passed in");
  };
  return Wrap(comm, braid::CreateFromAllGather(nranks, rank, call));
}

// ---- Fault tolerance: braidCommShrink, braidCommGetFailedRanks (issue 7).

BRAID_API braidResult_t braidCommShrink(braidComm_t comm, braidComm_t* newcomm) {
  if (newcomm == nullptr) return Fail(absl::InvalidArgumentError("newcomm is NULL"));
  *newcomm = nullptr;
  auto live = Lookup(comm);
  if (!live.ok()) return Fail(live.status());
  return Wrap(newcomm, (*live)->Shrink());
}

BRAID_API braidResult_t braidCommGetFailedRanks(braidComm_t comm, int* ranks, int capacity,
                                                int* count) {
  if (count == nullptr) return Fail(absl::InvalidArgumentError("count is NULL"));
  if (capacity > 0 && ranks == nullptr) return Fail(absl::InvalidArgumentError("ranks is NULL"));
  auto live = Lookup(comm);
  if (!live.ok()) return Fail(live.status());
  std::vector<int> failed = (*live)->failed_ranks();
  *count = static_cast<int>(failed.size());
  for (int i = 0; i < capacity && i < *count; ++i) ranks[i] = failed[static_cast<size_t>(i)];
  return braidSuccess;
}
