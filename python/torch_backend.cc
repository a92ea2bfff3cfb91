// braid._braid_torch: ProcessGroupBraid, a c10d::ProcessGroup (PyTorch 1.13 API) over Braid's C
// API. Every collective starts Braid's nonblocking form and returns a BraidWork; whoever needs
// the result first (Work::wait on the caller's thread, or the completion thread once a Future was
// asked for, as DDP does) waits on the Braid request. One translation unit: the headers are heavy.
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>
#include <torch/csrc/utils/pybind.h>

#include <pybind11/chrono.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "braid/braid.h"

namespace braid_torch {
namespace {

namespace py = pybind11;
using c10d::OpType;

std::string Describe(braidResult_t rc, const char* what, int rank) {
  return c10::str("Braid ", what, " failed on rank ", rank, ": ", braidGetErrorString(rc), ": ",
                  braidGetLastError());
}

class BraidWork;
class Issuer;

// Starts one Braid collective: nonblocking into *request, or, with a null request, blocking on
// the calling thread (the C API's blocking form). Captures its arguments by value: a deferred
// collective starts after the call that made it has returned.
using Call = std::function<braidResult_t(braidRequest_t* request)>;

// Completes works whose Future was requested (DDP chains its bucket callbacks on futures, and
// nobody calls wait on the work itself). Braid runs a communicator's operations in the order
// they were started, so waiting in FIFO order never waits behind an unfinished later one.
class Completer {
 public:
  // The thread holds a reference, so the Completer outlives it even if the last other
  // reference is dropped on the thread itself (by a future's callback).
  static std::shared_ptr<Completer> Create() {
    std::shared_ptr<Completer> completer(new Completer);
    completer->thread_ = std::thread([self = completer] { self->Loop(); });
    return completer;
  }
  ~Completer() {
    if (thread_.joinable()) thread_.detach();  // only when destroyed by the thread itself.
  }
  void Add(c10::intrusive_ptr<BraidWork> work);
  // Completes what is queued, then joins the thread. Later Adds complete inline.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopped_) return;
      stopped_ = true;
    }
    cv_.notify_all();
    // A future's callback may destroy the group on this very thread.
    if (std::this_thread::get_id() == thread_.get_id()) {
      thread_.detach();
    } else {
      thread_.join();
    }
  }

 private:
  Completer() = default;
  void Loop();
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<c10::intrusive_ptr<BraidWork>> queue_;
  bool stopped_ = false;
  std::thread thread_;
};

// The type of every future's value (DDP reads a list of tensors); built once.
const c10::TypePtr& TensorListType() {
  static const c10::TypePtr type = c10::ListType::create(c10::TensorType::get());
  return type;
}

class BraidWork : public c10d::Work {
 public:
  // `call` is set for collectives (the Issuer starts it), empty for sends and receives (the
  // Issuer starts them in a group and attaches their requests).
  BraidWork(int rank, OpType type, const char* name, std::vector<at::Tensor> outputs,
            std::vector<at::Tensor> keep_alive, std::function<void()> on_success,
            std::shared_ptr<Completer> completer, std::shared_ptr<Issuer> issuer,
            Call call = nullptr)
      : Work(rank, type),
        name_(name),
        outputs_(std::move(outputs)),
        keep_alive_(std::move(keep_alive)),
        on_success_(std::move(on_success)),
        completer_(std::move(completer)),
        issuer_(std::move(issuer)),
        call_(std::move(call)),
        future_(c10::make_intrusive<at::ivalue::Future>(TensorListType())) {}

  ~BraidWork() override {
    // The tensors must outlive Braid's use of them, and the request must be freed.
    if (request_ != nullptr) braidWait(request_);
  }

  void Attach(braidRequest_t request) {
    std::lock_guard<std::mutex> lock(claim_mutex_);
    request_ = request;
    issued_.store(true, std::memory_order_release);
  }
  // A deferred operation that could not be started.
  void FailToStart(const std::string& detail) {
    issued_.store(true, std::memory_order_release);
    Finish(braidInvalidArgument, detail);
  }
  // Called by the Issuer, which keeps issue order. StartCall: Braid's nonblocking form.
  // RunCall: the blocking form on this thread, then FinishRun once the Issuer let go.
  void StartCall() {
    braidRequest_t request = nullptr;
    braidResult_t rc = std::exchange(call_, nullptr)(&request);
    if (rc == braidSuccess) {
      Attach(request);
    } else {
      FailToStart(Describe(rc, name_, rank_));
    }
  }
  braidResult_t RunCall() {
    issued_.store(true, std::memory_order_release);
    return std::exchange(call_, nullptr)(nullptr);
  }
  void FinishRun(braidResult_t rc) {
    Finish(rc, rc == braidSuccess ? std::string() : Describe(rc, name_, rank_));
  }

  bool isCompleted() override {
    StartDeferred();
    braidRequest_t finished = nullptr;
    braidResult_t rc = braidSuccess;
    std::string detail;
    {
      std::lock_guard<std::mutex> lock(claim_mutex_);
      if (request_ != nullptr) {
        int done = 0;
        rc = braidTest(request_, &done);
        if (rc != braidSuccess && rc != braidInProgress) done = 1;
        if (done) {
          finished = std::exchange(request_, nullptr);
          if (rc != braidSuccess) detail = Describe(rc, name_, rank_);
        }
      }
    }
    if (finished != nullptr) Finish(rc, detail);
    return Work::isCompleted();
  }

  // timeout 0 (the default) waits as long as Braid's own timeout allows.
  bool wait(std::chrono::milliseconds timeout) override {
    if (timeout == kNoTimeout) {
      Complete();
    } else {
      StartDeferred();
      const auto deadline = std::chrono::steady_clock::now() + timeout;
      while (!isCompleted()) {
        TORCH_CHECK(std::chrono::steady_clock::now() < deadline, "Braid ", name_, " on rank ",
                    rank_, " did not complete within ", timeout.count(),
                    " ms (Work.wait timeout); the communicator's own timeout still applies");
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    }
    return Work::wait(kNoTimeout);  // rethrows the operation's error.
  }

  std::vector<at::Tensor> result() override { return outputs_; }

  c10::intrusive_ptr<c10::ivalue::Future> getFuture() override {
    StartDeferred();
    bool enqueue = false;
    {
      std::lock_guard<std::mutex> lock(claim_mutex_);
      enqueue = !future_requested_ && request_ != nullptr;
      future_requested_ = true;
    }
    if (enqueue) completer_->Add(c10::intrusive_ptr<BraidWork>::reclaim_copy(this));
    return future_;
  }

  // Blocks until complete: runs the collective on this thread if it has not started yet,
  // else waits on the Braid request, or for the thread that already does.
  void Complete();

 private:
  // Starts this work (and whatever was deferred before it) unless it already started.
  void StartDeferred();

  void Finish(braidResult_t rc, const std::string& detail) {
    std::exception_ptr error;
    if (rc != braidSuccess) {
      error = std::make_exception_ptr(std::runtime_error(detail));
    } else if (on_success_) {
      try {
        on_success_();  // copies results out of staging buffers.
      } catch (...) {
        error = std::current_exception();
      }
    }
    keep_alive_.clear();
    finish(error);
    if (error) {
      future_->setError(error);
    } else {
      future_->markCompleted(c10::IValue(outputs_));
    }
  }

  const char* name_;
  std::vector<at::Tensor> outputs_;
  std::vector<at::Tensor> keep_alive_;
  std::function<void()> on_success_;
  std::shared_ptr<Completer> completer_;
  std::shared_ptr<Issuer> issuer_;
  Call call_;  // until started; guarded by the Issuer's mutex.
  std::atomic<bool> issued_{false};  // started, run, or failed to start.
  c10::intrusive_ptr<at::ivalue::Future> future_;
  std::mutex claim_mutex_;  // guards request_ and future_requested_.
  braidRequest_t request_ = nullptr;
  bool future_requested_ = false;
};

// Issues a group's operations to Braid in the order they were made, as late as it may.
//
// Collectives are deferred: `dist.all_reduce(t)` is allreduce() then wait() at once, and a
// collective still deferred when its wait() comes runs on the waiting thread with Braid's
// blocking call. Started nonblocking instead, it would cost two thread hand-offs (to Braid's
// worker and back), which on a busy host cost more than a small all_reduce itself. Whatever
// else needs a deferred collective (a future, a test, the next operation) starts it
// nonblocking, and so does a watchdog once it has waited kDeferLimit: an async_op=True
// collective progresses without anybody waiting for it, as with every other backend.
//
// Sends and receives are deferred too, and started together as one Braid group when anything
// needs one of them (a wait, a test, a future) or before the next collective. c10d users write
// exchanges as isend + irecv + wait (batch_isend_irecv is exactly that for this backend), and
// Braid runs a communicator's operations in issue order where a send may wait for its receive:
// started one by one, a ring of isend-then-irecv would deadlock; grouped, receives are posted
// before sends. A deferred collective always precedes the pending transfers: making a
// collective starts everything pending first.
class Issuer {
 public:
  static constexpr std::chrono::microseconds kDeferLimit{1000};
  // Watchdog periods without a new collective before it sleeps until woken.
  static constexpr int kQuietPeriods = 100;

  Issuer(braidComm_t comm, int rank)
      : comm_(comm), rank_(rank), watchdog_([this] { WatchdogLoop(); }) {}
  ~Issuer() { Stop(); }

  // A collective: starts what is pending, then holds it until its wait or kDeferLimit.
  void Defer(c10::intrusive_ptr<BraidWork> work) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      StartLocked();
      deferred_ = std::move(work);
      deferred_since_ = std::chrono::steady_clock::now();
      deferrals_.fetch_add(1);
    }
    if (watchdog_idle_.load()) {  // pairs with the watchdog's check before it sleeps.
      std::lock_guard<std::mutex> lock(watchdog_mutex_);
      watchdog_woken_ = true;
      watchdog_cv_.notify_one();
    }
  }

  void AddTransfer(c10::intrusive_ptr<BraidWork> work, bool is_send, at::Tensor tensor,
                   braidDataType_t type, int peer) {
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.push_back({std::move(work), is_send, std::move(tensor), type, peer});
  }

  // Starts everything deferred, in order; returns once their requests are attached.
  void Flush() {
    std::lock_guard<std::mutex> lock(mutex_);
    StartLocked();
  }

  // Runs `work` on this thread if it is the deferred collective; false if it was started.
  // The lock is held while it runs, so nothing issued meanwhile overtakes it.
  bool RunIfDeferred(BraidWork* work) {
    braidResult_t rc;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (deferred_.get() != work) return false;
      c10::intrusive_ptr<BraidWork> mine = std::move(deferred_);
      deferred_.reset();
      rc = mine->RunCall();
    }
    work->FinishRun(rc);  // outside the lock: a future's callback may issue more.
    return true;
  }

  // Starts what is pending and stops the watchdog; later operations are still issued.
  void Stop() {
    Flush();
    {
      std::lock_guard<std::mutex> lock(watchdog_mutex_);
      if (stopping_) return;
      stopping_ = true;
    }
    watchdog_cv_.notify_one();
    watchdog_.join();
  }

 private:
  struct Transfer {
    c10::intrusive_ptr<BraidWork> work;
    bool is_send;
    at::Tensor tensor;
    braidDataType_t type;
    int peer;
  };

  void StartLocked() {
    if (deferred_) {
      c10::intrusive_ptr<BraidWork> work = std::move(deferred_);
      deferred_.reset();
      work->StartCall();
    }
    if (!pending_.empty()) StartTransfersLocked();
  }

  void StartTransfersLocked() {
    std::vector<Transfer> batch = std::move(pending_);
    pending_.clear();
    std::vector<braidRequest_t> requests(batch.size(), nullptr);
    std::vector<std::string> errors(batch.size());
    braidResult_t rc = braidGroupStart();
    if (rc != braidSuccess) {
      for (Transfer& t : batch) t.work->FailToStart(Describe(rc, "braidGroupStart", rank_));
      return;
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      Transfer& t = batch[i];
      rc = t.is_send ? braidIsend(t.tensor.data_ptr(), t.tensor.numel(), t.type, t.peer, comm_,
                                  &requests[i])
                     : braidIrecv(t.tensor.data_ptr(), t.tensor.numel(), t.type, t.peer, comm_,
                                  &requests[i]);
      if (rc != braidSuccess) {
        errors[i] = Describe(rc, t.is_send ? "send" : "recv", rank_);
        requests[i] = nullptr;
      }
    }
    // An End error is also the error of the group's requests: their waits report it.
    braidGroupEnd();
    for (size_t i = 0; i < batch.size(); ++i) {
      if (requests[i] != nullptr) {
        batch[i].work->Attach(requests[i]);
      } else {
        batch[i].work->FailToStart(errors[i]);
      }
    }
  }

  // Wakes every kDeferLimit while collectives are being made and starts one that waited that
  // long; after kQuietPeriods without any it sleeps until Defer wakes it, so an idle group
  // costs no wakeups and a busy one needs no notification per collective.
  void WatchdogLoop() {
    std::unique_lock<std::mutex> lock(watchdog_mutex_);
    uint64_t seen = deferrals_.load();
    int quiet = 0;
    while (!stopping_) {
      watchdog_cv_.wait_for(lock, kDeferLimit, [&] { return stopping_; });
      if (stopping_) return;
      StartOverdue();
      const uint64_t now = deferrals_.load();
      quiet = now == seen ? quiet + 1 : 0;
      seen = now;
      if (quiet < kQuietPeriods) continue;
      watchdog_idle_.store(true);
      if (deferrals_.load() == seen) {  // else Defer may have missed the idle flag.
        watchdog_cv_.wait(lock, [&] { return stopping_ || watchdog_woken_; });
      }
      watchdog_woken_ = false;
      watchdog_idle_.store(false);
      quiet = 0;
      seen = deferrals_.load();
    }
  }

  void StartOverdue() {
    // Busy means a caller is issuing or running a collective right now: nothing to rescue.
    std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
    if (!lock.owns_lock() || !deferred_) return;
    if (std::chrono::steady_clock::now() - deferred_since_ < kDeferLimit) return;
    StartLocked();
  }

  braidComm_t comm_;
  int rank_;
  std::mutex mutex_;  // issue order; also one Braid group at a time (groups are per thread).
  c10::intrusive_ptr<BraidWork> deferred_;
  std::chrono::steady_clock::time_point deferred_since_;
  std::vector<Transfer> pending_;

  std::atomic<uint64_t> deferrals_{0};
  std::atomic<bool> watchdog_idle_{false};
  std::mutex watchdog_mutex_;  // guards stopping_ and watchdog_woken_.
  std::condition_variable watchdog_cv_;
  bool stopping_ = false;
  bool watchdog_woken_ = false;
  std::thread watchdog_;  // last: starts once the rest is built.
};

void BraidWork::StartDeferred() {
  if (!issued_.load(std::memory_order_acquire)) issuer_->Flush();
}

void BraidWork::Complete() {
  if (!issued_.load(std::memory_order_acquire) && issuer_->RunIfDeferred(this)) return;
  StartDeferred();
  braidRequest_t request;
  {
    std::lock_guard<std::mutex> lock(claim_mutex_);
    request = std::exchange(request_, nullptr);
  }
  if (request == nullptr) {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return completed_; });
    return;
  }
  braidResult_t rc = braidWait(request);
  Finish(rc, rc == braidSuccess ? std::string() : Describe(rc, name_, rank_));
}

void Completer::Add(c10::intrusive_ptr<BraidWork> work) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!stopped_) {
      queue_.push_back(std::move(work));
      cv_.notify_one();
      return;
    }
  }
  work->Complete();
}

void Completer::Loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    cv_.wait(lock, [&] { return stopped_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopped and drained.
    c10::intrusive_ptr<BraidWork> work = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    work->Complete();
    work.reset();
    lock.lock();
  }
}
braidDataType_t TypeOf(const at::Tensor& t, const char* op) {
  TORCH_CHECK(t.device().is_cpu(), "ProcessGroupBraid ", op, ": tensor is on ", t.device(),
              "; this backend handles CPU tensors");
  TORCH_CHECK(t.layout() == c10::kStrided, "ProcessGroupBraid ", op,
              ": sparse tensors are not supported");
  TORCH_CHECK(t.is_contiguous(), "ProcessGroupBraid ", op,
              ": tensor is not contiguous; Braid works in place (call .contiguous())");
  switch (t.scalar_type()) {
    case at::kChar: return braidInt8;
    case at::kByte: return braidUint8;
    case at::kInt: return braidInt32;
    case at::kLong: return braidInt64;
    case at::kHalf: return braidFloat16;
    case at::kBFloat16: return braidBfloat16;
    case at::kFloat: return braidFloat32;
    case at::kDouble: return braidFloat64;
    default:
      TORCH_CHECK(false, "ProcessGroupBraid ", op, ": dtype ", t.scalar_type(),
                  " is not supported (int8, uint8, int32, int64, float16, bfloat16, float32, "
                  "float64 are)");
  }
}

braidRedOp_t OpOf(const c10d::ReduceOp& op, const char* what) {
  switch (op.op_) {
    case c10d::ReduceOp::SUM: return braidSum;
    case c10d::ReduceOp::AVG: return braidAvg;
    case c10d::ReduceOp::PRODUCT: return braidProd;
    case c10d::ReduceOp::MIN: return braidMin;
    case c10d::ReduceOp::MAX: return braidMax;
    default:
      TORCH_CHECK(false, "ProcessGroupBraid ", what, ": reduce op ", static_cast<int>(op.op_),
                  " (bitwise or premultiplied sum) is not supported; SUM, AVG, PRODUCT, MIN "
                  "and MAX are");
  }
}

const at::Tensor& Single(const std::vector<at::Tensor>& tensors, const char* op) {
  TORCH_CHECK(tensors.size() == 1, "ProcessGroupBraid ", op,
              ": expects exactly one tensor per process, got ", tensors.size());
  return tensors[0];
}

void SameShape(const at::Tensor& a, const at::Tensor& b, const char* op) {
  TORCH_CHECK(a.scalar_type() == b.scalar_type() && a.numel() == b.numel(), "ProcessGroupBraid ",
              op, ": tensors differ in dtype or number of elements (", a.scalar_type(), "[",
              a.numel(), "] vs ", b.scalar_type(), "[", b.numel(), "])");
}

class ProcessGroupBraid : public c10d::ProcessGroup {
 public:
  ProcessGroupBraid(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                    std::chrono::milliseconds timeout)
      : ProcessGroup(rank, size), completer_(Completer::Create()) {
    // Braid's rendezvous root runs in rank 0; its unique id travels through the c10d store
    // (torchrun's MASTER_PORT belongs to the store, so Braid must not bind it).
    const std::string key = "braid_unique_id";
    braidUniqueId id;
    if (rank == 0) {
      braidResult_t rc = braidGetUniqueId(&id);
      if (rc != braidSuccess) throw std::runtime_error(Describe(rc, "braidGetUniqueId", rank));
      store->set(key, std::vector<uint8_t>(id.internal, id.internal + BRAID_UNIQUE_ID_BYTES));
    } else {
      std::vector<uint8_t> bytes = store->get(key);
      if (bytes.size() != BRAID_UNIQUE_ID_BYTES) {
        throw std::runtime_error(c10::str("ProcessGroupBraid on rank ", rank, ": the store's ",
                                          key, " has ", bytes.size(), " bytes, not ",
                                          BRAID_UNIQUE_ID_BYTES));
      }
      std::memcpy(id.internal, bytes.data(), BRAID_UNIQUE_ID_BYTES);
    }
    braidResult_t rc = braidCommInitRank(&comm_, size, id, rank);
    if (rc != braidSuccess) throw std::runtime_error(Describe(rc, "braidCommInitRank", rank));
    if (timeout.count() > 0) {
      rc = braidCommSetTimeout(comm_, static_cast<double>(timeout.count()) / 1000.0);
      if (rc != braidSuccess) throw std::runtime_error(Describe(rc, "braidCommSetTimeout", rank));
    }
    issuer_ = std::make_shared<Issuer>(comm_, rank);
  }

  ~ProcessGroupBraid() override {
    // Deferred collectives, sends and receives nobody waited for still go out.
    if (issuer_) issuer_->Stop();
    completer_->Stop();
    if (comm_ != nullptr) braidCommDestroy(comm_);
  }

  const std::string getBackendName() const override { return "braid"; }

  braidComm_t comm() const { return comm_; }

  c10::intrusive_ptr<c10d::Work> allreduce(std::vector<at::Tensor>& tensors,
                                           const c10d::AllreduceOptions& opts) override {
    const at::Tensor& t = Single(tensors, "allreduce");
    const braidDataType_t type = TypeOf(t, "allreduce");
    const braidRedOp_t op = OpOf(opts.reduceOp, "allreduce");
    void* data = t.data_ptr();
    const size_t n = t.numel();
    braidComm_t comm = comm_;
    return Launch(OpType::ALLREDUCE, "allreduce", {t}, {}, [=](braidRequest_t* r) {
      return r ? braidIallReduce(data, data, n, type, op, comm, r)
               : braidAllReduce(data, data, n, type, op, comm);
    });
  }

  c10::intrusive_ptr<c10d::Work> broadcast(std::vector<at::Tensor>& tensors,
                                           const c10d::BroadcastOptions& opts) override {
    const at::Tensor& t = Single(tensors, "broadcast");
    const braidDataType_t type = TypeOf(t, "broadcast");
    const int root = static_cast<int>(opts.rootRank);
    void* data = t.data_ptr();
    const size_t n = t.numel();
    braidComm_t comm = comm_;
    return Launch(OpType::BROADCAST, "broadcast", {t}, {}, [=](braidRequest_t* r) {
      return r ? braidIbroadcast(data, data, n, type, root, comm, r)
               : braidBroadcast(data, data, n, type, root, comm);
    });
  }

  // In place at the root; the other ranks' tensors are only read.
  c10::intrusive_ptr<c10d::Work> reduce(std::vector<at::Tensor>& tensors,
                                        const c10d::ReduceOptions& opts) override {
    const at::Tensor& t = Single(tensors, "reduce");
    const braidDataType_t type = TypeOf(t, "reduce");
    const braidRedOp_t op = OpOf(opts.reduceOp, "reduce");
    const int root = static_cast<int>(opts.rootRank);
    void* in = t.data_ptr();
    void* out = root == getRank() ? in : nullptr;
    const size_t n = t.numel();
    braidComm_t comm = comm_;
    return Launch(OpType::REDUCE, "reduce", {t}, {}, [=](braidRequest_t* r) {
      return r ? braidIreduce(in, out, n, type, op, root, comm, r)
               : braidReduce(in, out, n, type, op, root, comm);
    });
  }

  c10::intrusive_ptr<c10d::Work> allgather(std::vector<std::vector<at::Tensor>>& outputs,
                                           std::vector<at::Tensor>& inputs,
                                           const c10d::AllgatherOptions&) override {
    const at::Tensor& in = Single(inputs, "allgather");
    const braidDataType_t type = TypeOf(in, "allgather");
    TORCH_CHECK(outputs.size() == 1 && outputs[0].size() == static_cast<size_t>(getSize()),
                "ProcessGroupBraid allgather: expects one list of world_size output tensors");
    for (const at::Tensor& out : outputs[0]) SameShape(in, out, "allgather");
    // Gathered into one staging buffer, then copied to the (possibly scattered) outputs.
    at::Tensor flat = at::empty({getSize() * in.numel()}, in.options());
    std::vector<at::Tensor> outs = outputs[0];
    const int64_t n = in.numel();
    auto copy_out = [outs, flat, n] {
      for (size_t i = 0; i < outs.size(); ++i) {
        outs[i].copy_(flat.narrow(0, static_cast<int64_t>(i) * n, n).view(outs[i].sizes()));
      }
    };
    return Launch(OpType::ALLGATHER, "allgather", outs, {in, flat},
                  AllGatherCall(in.data_ptr(), flat.data_ptr(), n, type), copy_out);
  }

  c10::intrusive_ptr<c10d::Work> _allgather_base(at::Tensor& out, at::Tensor& in,
                                                 const c10d::AllgatherOptions&) override {
    const braidDataType_t type = TypeOf(in, "_allgather_base");
    TypeOf(out, "_allgather_base");
    TORCH_CHECK(out.scalar_type() == in.scalar_type() && out.numel() == in.numel() * getSize(),
                "ProcessGroupBraid _allgather_base: output must hold world_size * input.numel() "
                "elements of the input's dtype");
    return Launch(OpType::_ALLGATHER_BASE, "_allgather_base", {out}, {in},
                  AllGatherCall(in.data_ptr(), out.data_ptr(), in.numel(), type));
  }

  c10::intrusive_ptr<c10d::Work> reduce_scatter(std::vector<at::Tensor>& outputs,
                                                std::vector<std::vector<at::Tensor>>& inputs,
                                                const c10d::ReduceScatterOptions& opts) override {
    const at::Tensor& out = Single(outputs, "reduce_scatter");
    const braidDataType_t type = TypeOf(out, "reduce_scatter");
    const braidRedOp_t op = OpOf(opts.reduceOp, "reduce_scatter");
    TORCH_CHECK(inputs.size() == 1 && inputs[0].size() == static_cast<size_t>(getSize()),
                "ProcessGroupBraid reduce_scatter: expects one list of world_size input tensors");
    for (const at::Tensor& in : inputs[0]) SameShape(out, in, "reduce_scatter");
    at::Tensor flat = at::empty({getSize() * out.numel()}, out.options());
    for (int i = 0; i < getSize(); ++i) {
      flat.narrow(0, i * out.numel(), out.numel()).copy_(inputs[0][i].reshape({-1}));
    }
    return Launch(OpType::REDUCE_SCATTER, "reduce_scatter", {out}, {flat},
                  ReduceScatterCall(flat.data_ptr(), out.data_ptr(), out.numel(), type, op));
  }

  c10::intrusive_ptr<c10d::Work> _reduce_scatter_base(
      at::Tensor& out, at::Tensor& in, const c10d::ReduceScatterOptions& opts) override {
    const braidDataType_t type = TypeOf(in, "_reduce_scatter_base");
    TypeOf(out, "_reduce_scatter_base");
    const braidRedOp_t op = OpOf(opts.reduceOp, "_reduce_scatter_base");
    TORCH_CHECK(out.scalar_type() == in.scalar_type() && in.numel() == out.numel() * getSize(),
                "ProcessGroupBraid _reduce_scatter_base: input must hold world_size * "
                "output.numel() elements of the output's dtype");
    return Launch(OpType::_REDUCE_SCATTER_BASE, "_reduce_scatter_base", {out}, {in},
                  ReduceScatterCall(in.data_ptr(), out.data_ptr(), out.numel(), type, op));
  }

  // Splits count rows (dim 0); empty splits mean equal ones, which take braidIallToAll.
  c10::intrusive_ptr<c10d::Work> alltoall_base(at::Tensor& out, at::Tensor& in,
                                               std::vector<int64_t>& out_splits,
                                               std::vector<int64_t>& in_splits,
                                               const c10d::AllToAllOptions&) override {
    const braidDataType_t type = TypeOf(in, "alltoall_base");
    TypeOf(out, "alltoall_base");
    TORCH_CHECK(in.scalar_type() == out.scalar_type(),
                "ProcessGroupBraid alltoall_base: input is ", in.scalar_type(), ", output ",
                out.scalar_type());
    if (out_splits.empty() && in_splits.empty()) {
      SameShape(in, out, "alltoall_base");
      TORCH_CHECK(in.numel() % getSize() == 0, "ProcessGroupBraid alltoall_base: ", in.numel(),
                  " elements do not split evenly over ", getSize(),
                  " ranks (pass input_split_sizes/output_split_sizes)");
      const size_t block = static_cast<size_t>(in.numel() / getSize());
      const void* send = in.data_ptr();
      void* recv = out.data_ptr();
      braidComm_t comm = comm_;
      return Launch(OpType::ALLTOALL_BASE, "alltoall_base", {out}, {in},
                    [=](braidRequest_t* r) {
                      return r ? braidIallToAll(send, recv, block, type, comm, r)
                               : braidAllToAll(send, recv, block, type, comm);
                    });
    }
    std::vector<size_t> send_counts, send_displs, recv_counts, recv_displs;
    ElementLayout(in, in_splits, "input", &send_counts, &send_displs);
    ElementLayout(out, out_splits, "output", &recv_counts, &recv_displs);
    return Launch(OpType::ALLTOALL_BASE, "alltoall_base", {out}, {in},
                  AllToAllvCall(in.data_ptr(), std::move(send_counts), std::move(send_displs),
                                out.data_ptr(), std::move(recv_counts), std::move(recv_displs),
                                type));
  }

  // inputs[j] goes to rank j, outputs[j] comes from rank j; sizes may differ. Staged through
  // two flat buffers and one braidIallToAllv.
  c10::intrusive_ptr<c10d::Work> alltoall(std::vector<at::Tensor>& outputs,
                                          std::vector<at::Tensor>& inputs,
                                          const c10d::AllToAllOptions&) override {
    const size_t size = static_cast<size_t>(getSize());
    TORCH_CHECK(outputs.size() == size && inputs.size() == size,
                "ProcessGroupBraid alltoall: expects world_size input and output tensors");
    const braidDataType_t type = TypeOf(inputs[0], "alltoall");
    std::vector<size_t> send_counts(size), send_displs(size), recv_counts(size),
        recv_displs(size);
    size_t send_total = 0, recv_total = 0;
    for (size_t j = 0; j < size; ++j) {
      TORCH_CHECK(inputs[j].scalar_type() == inputs[0].scalar_type() &&
                      outputs[j].scalar_type() == inputs[0].scalar_type(),
                  "ProcessGroupBraid alltoall: all tensors must have one dtype");
      TypeOf(outputs[j], "alltoall");
      send_displs[j] = send_total;
      send_total += send_counts[j] = static_cast<size_t>(inputs[j].numel());
      recv_displs[j] = recv_total;
      recv_total += recv_counts[j] = static_cast<size_t>(outputs[j].numel());
    }
    const auto options = inputs[0].options();
    at::Tensor flat_in = at::empty({static_cast<int64_t>(send_total)}, options);
    at::Tensor flat_out = at::empty({static_cast<int64_t>(recv_total)}, options);
    for (size_t j = 0; j < size; ++j) {
      flat_in.narrow(0, send_displs[j], send_counts[j]).copy_(inputs[j].reshape({-1}));
    }
    std::vector<at::Tensor> outs = outputs;
    auto copy_out = [outs, flat_out, recv_counts, recv_displs] {
      for (size_t j = 0; j < outs.size(); ++j) {
        outs[j].copy_(flat_out.narrow(0, recv_displs[j], recv_counts[j]).view(outs[j].sizes()));
      }
    };
    return Launch(OpType::ALLTOALL, "alltoall", outs, {flat_in, flat_out},
                  AllToAllvCall(flat_in.data_ptr(), std::move(send_counts),
                                std::move(send_displs), flat_out.data_ptr(),
                                std::move(recv_counts), std::move(recv_displs), type),
                  copy_out);
  }

  c10::intrusive_ptr<c10d::Work> barrier(const c10d::BarrierOptions&) override {
    braidComm_t comm = comm_;
    return Launch(OpType::BARRIER, "barrier", {}, {}, [=](braidRequest_t* r) {
      return r ? braidIbarrier(comm, r) : braidBarrier(comm);
    });
  }

  // Braid matches the k-th send from a to b with the k-th receive on b from a: by order, not
  // by tag. Non-zero tags are refused rather than ignored: code that passes them (gloo matches
  // by tag) may post receives out of send order, and ignoring the tag would then deliver the
  // wrong message silently; tag 0 (the default everywhere in torch.distributed) is accepted.
  c10::intrusive_ptr<c10d::Work> send(std::vector<at::Tensor>& tensors, int dst,
                                      int tag) override {
    return PointToPoint(OpType::SEND, "send", tensors, dst, tag);
  }
  c10::intrusive_ptr<c10d::Work> recv(std::vector<at::Tensor>& tensors, int src,
                                      int tag) override {
    return PointToPoint(OpType::RECV, "recv", tensors, src, tag);
  }
  c10::intrusive_ptr<c10d::Work> recvAnysource(std::vector<at::Tensor>&, int) override {
    TORCH_CHECK(false, "ProcessGroupBraid recv from any source (src=None) is not supported: "
                       "Braid matches a receive to one peer's sends in order; pass src=");
  }

 private:
  // Hands one collective to the Issuer (deferred until its wait, or started nonblocking);
  // `on_success` runs once it completed. Braid's own errors surface from wait().
  c10::intrusive_ptr<c10d::Work> Launch(OpType type, const char* name,
                                        std::vector<at::Tensor> outputs,
                                        std::vector<at::Tensor> keep_alive, Call call,
                                        std::function<void()> on_success = {}) {
    auto work = c10::make_intrusive<BraidWork>(getRank(), type, name, std::move(outputs),
                                               std::move(keep_alive), std::move(on_success),
                                               completer_, issuer_, std::move(call));
    issuer_->Defer(work);
    return work;
  }

  Call AllGatherCall(const void* send, void* recv, size_t count, braidDataType_t type) const {
    braidComm_t comm = comm_;
    return [=](braidRequest_t* r) {
      return r ? braidIallGather(send, recv, count, type, comm, r)
               : braidAllGather(send, recv, count, type, comm);
    };
  }
  Call ReduceScatterCall(const void* send, void* recv, size_t count, braidDataType_t type,
                         braidRedOp_t op) const {
    braidComm_t comm = comm_;
    return [=](braidRequest_t* r) {
      return r ? braidIreduceScatter(send, recv, count, type, op, comm, r)
               : braidReduceScatter(send, recv, count, type, op, comm);
    };
  }
  // The vectors move into the call: Braid reads them when the collective starts.
  Call AllToAllvCall(const void* send, std::vector<size_t> send_counts,
                     std::vector<size_t> send_displs, void* recv, std::vector<size_t> recv_counts,
                     std::vector<size_t> recv_displs, braidDataType_t type) const {
    braidComm_t comm = comm_;
    return [=, sc = std::move(send_counts), sd = std::move(send_displs),
            rc = std::move(recv_counts), rd = std::move(recv_displs)](braidRequest_t* r) {
      return r ? braidIallToAllv(send, sc.data(), sd.data(), recv, rc.data(), rd.data(), type,
                                 comm, r)
               : braidAllToAllv(send, sc.data(), sd.data(), recv, rc.data(), rd.data(), type,
                                comm);
    };
  }

  c10::intrusive_ptr<c10d::Work> PointToPoint(OpType type, const char* name,
                                              std::vector<at::Tensor>& tensors, int peer,
                                              int tag) {
    const at::Tensor& t = Single(tensors, name);
    const braidDataType_t dtype = TypeOf(t, name);
    TORCH_CHECK(tag == 0, "ProcessGroupBraid ", name, ": tag ", tag,
                " is not supported: Braid matches sends and receives between two ranks by "
                "their order, not by tag; post them in the same order on both sides with tag 0");
    TORCH_CHECK(peer >= 0 && peer < getSize(), "ProcessGroupBraid ", name, ": peer ", peer,
                " is out of range for ", getSize(), " ranks");
    auto work = c10::make_intrusive<BraidWork>(getRank(), type, name, std::vector<at::Tensor>{t},
                                               std::vector<at::Tensor>{t}, nullptr, completer_,
                                               issuer_);
    issuer_->AddTransfer(work, type == OpType::SEND, t, dtype, peer);
    return work;
  }

  // Element counts and displacements of one side of alltoall_base from its row splits.
  void ElementLayout(const at::Tensor& t, const std::vector<int64_t>& splits, const char* side,
                     std::vector<size_t>* counts, std::vector<size_t>* displs) const {
    const int64_t size = getSize();
    const int64_t rows = t.dim() == 0 ? t.numel() : t.size(0);
    const int64_t row = rows == 0 ? 0 : t.numel() / rows;
    std::vector<int64_t> given = splits;
    if (given.empty()) {
      TORCH_CHECK(rows % size == 0, "ProcessGroupBraid alltoall_base: ", side, " has ", rows,
                  " rows, which do not split evenly over ", size, " ranks");
      given.assign(static_cast<size_t>(size), rows / size);
    }
    TORCH_CHECK(static_cast<int64_t>(given.size()) == size, "ProcessGroupBraid alltoall_base: ",
                side, " split sizes have ", given.size(), " entries, not world_size ", size);
    int64_t next = 0;
    for (int64_t split : given) {
      TORCH_CHECK(split >= 0, "ProcessGroupBraid alltoall_base: negative ", side, " split");
      counts->push_back(static_cast<size_t>(split * row));
      displs->push_back(static_cast<size_t>(next * row));
      next += split;
    }
    TORCH_CHECK(next == rows, "ProcessGroupBraid alltoall_base: ", side,
                " split sizes add up to ", next, " rows but the tensor has ", rows);
  }

  braidComm_t comm_ = nullptr;
  std::shared_ptr<Completer> completer_;
  std::shared_ptr<Issuer> issuer_;
};

}  // namespace
}  // namespace braid_torch

PYBIND11_MODULE(_braid_torch, m) {
  namespace py = pybind11;
  using braid_torch::ProcessGroupBraid;
  py::module_::import("torch.distributed");  // registers c10d.ProcessGroup, our base class.
  py::class_<ProcessGroupBraid, c10d::ProcessGroup, c10::intrusive_ptr<ProcessGroupBraid>>(
      m, "ProcessGroupBraid", "A torch.distributed process group running on Braid")
      .def(py::init([](const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                       std::chrono::duration<float> timeout) {
             return c10::make_intrusive<ProcessGroupBraid>(
                 store, rank, size,
                 std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
           }),
           py::arg("store"), py::arg("rank"), py::arg("size"), py::arg("timeout"),
           py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("transport", [](const ProcessGroupBraid& pg) {
        const char* name = nullptr;
        return braidCommTransportName(pg.comm(), &name) == braidSuccess ? std::string(name)
                                                                         : std::string();
      });
}
