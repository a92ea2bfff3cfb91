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
  BraidWork(int rank, OpType type, const char* name, std::vector<at::Tensor> outputs,
            std::vector<at::Tensor> keep_alive, std::function<void()> on_success,
            std::shared_ptr<Completer> completer)
      : Work(rank, type),
        name_(name),
        outputs_(std::move(outputs)),
        keep_alive_(std::move(keep_alive)),
        on_success_(std::move(on_success)),
        completer_(std::move(completer)),
        future_(c10::make_intrusive<at::ivalue::Future>(TensorListType())) {}

  ~BraidWork() override {
    // The tensors must outlive Braid's use of them, and the request must be freed.
    if (request_ != nullptr) braidWait(request_);
  }

  void Attach(braidRequest_t request) { request_ = request; }

  bool isCompleted() override {
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
    bool enqueue = false;
    {
      std::lock_guard<std::mutex> lock(claim_mutex_);
      enqueue = !future_requested_ && request_ != nullptr;
      future_requested_ = true;
    }
    if (enqueue) completer_->Add(c10::intrusive_ptr<BraidWork>::reclaim_copy(this));
    return future_;
  }

  // Blocks until complete: waits on the Braid request, or for the thread that already does.
  void Complete() {
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

 private:
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
  c10::intrusive_ptr<at::ivalue::Future> future_;
  std::mutex claim_mutex_;  // guards request_ and future_requested_.
  braidRequest_t request_ = nullptr;
  bool future_requested_ = false;
};

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
  }

  ~ProcessGroupBraid() override {
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
    return Launch(OpType::ALLREDUCE, "allreduce", {t}, {}, [&](braidRequest_t* r) {
      return braidIallReduce(t.data_ptr(), t.data_ptr(), t.numel(), type, op, comm_, r);
    });
  }

  c10::intrusive_ptr<c10d::Work> broadcast(std::vector<at::Tensor>& tensors,
                                           const c10d::BroadcastOptions& opts) override {
    const at::Tensor& t = Single(tensors, "broadcast");
    const braidDataType_t type = TypeOf(t, "broadcast");
    const int root = static_cast<int>(opts.rootRank);
    return Launch(OpType::BROADCAST, "broadcast", {t}, {}, [&](braidRequest_t* r) {
      return braidIbroadcast(t.data_ptr(), t.data_ptr(), t.numel(), type, root, comm_, r);
    });
  }

  // Braid has no Reduce yet (branch `api` adds braidReduce): an AllReduce gives the root the
  // same result; the other ranks reduce into scratch so their tensors stay unchanged.
  c10::intrusive_ptr<c10d::Work> reduce(std::vector<at::Tensor>& tensors,
                                        const c10d::ReduceOptions& opts) override {
    const at::Tensor& t = Single(tensors, "reduce");
    const braidDataType_t type = TypeOf(t, "reduce");
    const braidRedOp_t op = OpOf(opts.reduceOp, "reduce");
    at::Tensor out = opts.rootRank == getRank() ? t : at::empty_like(t);
    return Launch(OpType::REDUCE, "reduce", {t}, {out}, [&](braidRequest_t* r) {
      return braidIallReduce(t.data_ptr(), out.data_ptr(), t.numel(), type, op, comm_, r);
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
    return Launch(OpType::ALLGATHER, "allgather", outs, {in, flat}, [&](braidRequest_t* r) {
      return braidIallGather(in.data_ptr(), flat.data_ptr(), n, type, comm_, r);
    }, copy_out);
  }

  c10::intrusive_ptr<c10d::Work> _allgather_base(at::Tensor& out, at::Tensor& in,
                                                 const c10d::AllgatherOptions&) override {
    const braidDataType_t type = TypeOf(in, "_allgather_base");
    TypeOf(out, "_allgather_base");
    TORCH_CHECK(out.scalar_type() == in.scalar_type() && out.numel() == in.numel() * getSize(),
                "ProcessGroupBraid _allgather_base: output must hold world_size * input.numel() "
                "elements of the input's dtype");
    return Launch(OpType::_ALLGATHER_BASE, "_allgather_base", {out}, {in},
                  [&](braidRequest_t* r) {
                    return braidIallGather(in.data_ptr(), out.data_ptr(), in.numel(), type,
                                           comm_, r);
                  });
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
                  [&](braidRequest_t* r) {
                    return braidIreduceScatter(flat.data_ptr(), out.data_ptr(), out.numel(),
                                               type, op, comm_, r);
                  });
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
                  [&](braidRequest_t* r) {
                    return braidIreduceScatter(in.data_ptr(), out.data_ptr(), out.numel(), type,
                                               op, comm_, r);
                  });
  }

  // Braid has no AllToAll yet (branch `api` adds braidAllToAll). Equal splits are served by an
  // AllGather of every rank's whole input, from which each rank keeps its blocks: correct, but
  // world_size times the traffic. Uneven splits wait for braidAllToAll.
  c10::intrusive_ptr<c10d::Work> alltoall_base(at::Tensor& out, at::Tensor& in,
                                               std::vector<int64_t>& out_splits,
                                               std::vector<int64_t>& in_splits,
                                               const c10d::AllToAllOptions&) override {
    TORCH_CHECK(out_splits.empty() && in_splits.empty(),
                "ProcessGroupBraid alltoall_base: uneven split sizes are not implemented yet "
                "(they need braidAllToAll, which the C API does not have yet)");
    const braidDataType_t type = TypeOf(in, "alltoall_base");
    TypeOf(out, "alltoall_base");
    SameShape(in, out, "alltoall_base");
    TORCH_CHECK(in.numel() % getSize() == 0, "ProcessGroupBraid alltoall_base: ", in.numel(),
                " elements do not split evenly over ", getSize(), " ranks");
    const int64_t n = in.numel(), block = n / getSize(), me = getRank();
    at::Tensor gathered = at::empty({getSize() * n}, in.options());
    at::Tensor flat_out = out.view({-1});
    auto copy_out = [gathered, flat_out, n, block, me, size = getSize()] {
      for (int64_t j = 0; j < size; ++j) {
        flat_out.narrow(0, j * block, block).copy_(gathered.narrow(0, j * n + me * block, block));
      }
    };
    return Launch(OpType::ALLTOALL_BASE, "alltoall_base", {out}, {in, gathered},
                  [&](braidRequest_t* r) {
                    return braidIallGather(in.data_ptr(), gathered.data_ptr(), n, type, comm_, r);
                  }, copy_out);
  }

  // Same AllGather fallback; every tensor must have the same number of elements.
  c10::intrusive_ptr<c10d::Work> alltoall(std::vector<at::Tensor>& outputs,
                                          std::vector<at::Tensor>& inputs,
                                          const c10d::AllToAllOptions&) override {
    const size_t size = static_cast<size_t>(getSize());
    TORCH_CHECK(outputs.size() == size && inputs.size() == size,
                "ProcessGroupBraid alltoall: expects world_size input and output tensors");
    const at::Tensor& first = inputs[0];
    const braidDataType_t type = TypeOf(first, "alltoall");
    for (size_t j = 0; j < size; ++j) {
      TORCH_CHECK(inputs[j].numel() == first.numel() && outputs[j].numel() == first.numel() &&
                      inputs[j].scalar_type() == first.scalar_type() &&
                      outputs[j].scalar_type() == first.scalar_type(),
                  "ProcessGroupBraid alltoall: tensors of different sizes are not implemented "
                  "yet (they need braidAllToAll, which the C API does not have yet)");
    }
    const int64_t m = first.numel(), n = m * getSize(), me = getRank();
    at::Tensor flat_in = at::empty({n}, first.options());
    for (size_t j = 0; j < size; ++j) flat_in.narrow(0, j * m, m).copy_(inputs[j].reshape({-1}));
    at::Tensor gathered = at::empty({getSize() * n}, first.options());
    std::vector<at::Tensor> outs = outputs;
    auto copy_out = [outs, gathered, n, m, me] {
      for (size_t j = 0; j < outs.size(); ++j) {
        outs[j].copy_(gathered.narrow(0, j * n + me * m, m).view(outs[j].sizes()));
      }
    };
    return Launch(OpType::ALLTOALL, "alltoall", outs, {flat_in, gathered},
                  [&](braidRequest_t* r) {
                    return braidIallGather(flat_in.data_ptr(), gathered.data_ptr(), n, type,
                                           comm_, r);
                  }, copy_out);
  }

  c10::intrusive_ptr<c10d::Work> barrier(const c10d::BarrierOptions&) override {
    return Launch(OpType::BARRIER, "barrier", {}, {},
                  [&](braidRequest_t* r) { return braidIbarrier(comm_, r); });
  }

  // Point-to-point needs braidSend/braidRecv (branch `api`); collectives cannot express it.
  c10::intrusive_ptr<c10d::Work> send(std::vector<at::Tensor>&, int, int) override {
    TORCH_CHECK(false, "ProcessGroupBraid send: not implemented yet: it needs braidSend, which "
                       "the C API does not have yet; use a gloo group for point-to-point");
  }
  c10::intrusive_ptr<c10d::Work> recv(std::vector<at::Tensor>&, int, int) override {
    TORCH_CHECK(false, "ProcessGroupBraid recv: not implemented yet: it needs braidRecv, which "
                       "the C API does not have yet; use a gloo group for point-to-point");
  }

 private:
  // Starts one Braid nonblocking operation; `on_success` runs once it completed.
  c10::intrusive_ptr<c10d::Work> Launch(OpType type, const char* name,
                                        std::vector<at::Tensor> outputs,
                                        std::vector<at::Tensor> keep_alive,
                                        const std::function<braidResult_t(braidRequest_t*)>& start,
                                        std::function<void()> on_success = {}) {
    auto work = c10::make_intrusive<BraidWork>(getRank(), type, name, std::move(outputs),
                                               std::move(keep_alive), std::move(on_success),
                                               completer_);
    braidRequest_t request = nullptr;
    braidResult_t rc = start(&request);
    TORCH_CHECK(rc == braidSuccess, Describe(rc, name, getRank()));
    work->Attach(request);
    return work;
  }

  braidComm_t comm_ = nullptr;
  std::shared_ptr<Completer> completer_;
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
