// braid._braid: the C API (include/braid/braid.h) for Python. Buffers are any object with the
// buffer protocol (numpy arrays, bytearray, memoryview, array.array), used in place: zero-copy,
// C-contiguous, the Braid datatype taken from the buffer's format. Collectives release the GIL;
// the nonblocking forms return a Request that holds the buffers until it completes.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "braid/braid.h"

namespace py = pybind11;

namespace {

// A failed Braid call; translated to braid.BraidError with .code = the braidResult_t.
struct Failure {
  braidResult_t code;
  std::string message;
};

void Check(braidResult_t rc) {
  if (rc != braidSuccess && rc != braidInProgress) {
    // braidGetLastError is per thread: read it on the thread that made the call.
    throw Failure{rc, std::string(braidGetErrorString(rc)) + ": " + braidGetLastError()};
  }
}

// Runs a Braid call without the GIL (it may block on peers) and raises if it failed.
template <typename Call>
void CallWithoutGil(Call&& call) {
  braidResult_t rc;
  std::string detail;
  {
    py::gil_scoped_release release;
    rc = call();
    if (rc != braidSuccess) detail = braidGetLastError();
  }
  if (rc != braidSuccess) throw Failure{rc, std::string(braidGetErrorString(rc)) + ": " + detail};
}

size_t ItemSize(braidDataType_t type) {
  switch (type) {
    case braidInt8: case braidUint8: return 1;
    case braidFloat16: case braidBfloat16: return 2;
    case braidInt32: case braidUint32: case braidFloat32: return 4;
    default: return 8;
  }
}

// The Braid datatype of a struct-module format ("f", "<i4" style prefixes, "l" of 8 bytes...).
std::optional<braidDataType_t> TypeOfFormat(const char* format, Py_ssize_t itemsize) {
  std::string f = format == nullptr ? "B" : format;
  if (!f.empty() && (f[0] == '@' || f[0] == '=' || f[0] == '<')) f = f.substr(1);
  if (f.size() != 1) return std::nullopt;  // big-endian, structs, multi-char codes.
  const bool is_signed = f[0] == 'b' || f[0] == 'h' || f[0] == 'i' || f[0] == 'l' ||
                         f[0] == 'q' || f[0] == 'n';
  switch (f[0]) {
    case 'e': return braidFloat16;
    case 'f': return braidFloat32;
    case 'd': return braidFloat64;
    case 'b': case 'B': case 'c': case 'h': case 'H': case 'i': case 'I': case 'l': case 'L':
    case 'q': case 'Q': case 'n': case 'N':
      switch (itemsize) {
        case 1: return is_signed ? braidInt8 : braidUint8;
        case 4: return is_signed ? braidInt32 : braidUint32;
        case 8: return is_signed ? braidInt64 : braidUint64;
        default: return std::nullopt;  // 16-bit integers: Braid has no such type.
      }
    default: return std::nullopt;  // '?' bool, complex, pointers, ...
  }
}

// One buffer-protocol view, released when destroyed (after the operation completed).
class Buffer {
 public:
  // `override_type` reinterprets the bytes (e.g. bfloat16 in a uint16 array).
  Buffer(const py::object& object, bool writable, std::optional<braidDataType_t> override_type,
         const char* role)
      : owner_(object) {
    int flags = PyBUF_STRIDES | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(object.ptr(), &view_, flags) != 0) {
      py::error_already_set error;
      throw py::type_error(std::string(role) + " must be a " +
                           (writable ? "writable " : "") +
                           "object with the buffer protocol (numpy array, bytearray, ...): " +
                           error.what());
    }
    held_ = true;
    if (!IsCContiguous()) {
      throw py::value_error(std::string(role) +
                            " is not C-contiguous; Braid reads and writes buffers in place "
                            "(use numpy.ascontiguousarray, or a contiguous slice)");
    }
    if (override_type) {
      type_ = *override_type;
      if (view_.len % static_cast<Py_ssize_t>(ItemSize(type_)) != 0) {
        throw py::value_error(std::string(role) + " has " + std::to_string(view_.len) +
                              " bytes, not a whole number of elements of the given dtype");
      }
    } else {
      auto type = TypeOfFormat(view_.format, view_.itemsize);
      if (!type) {
        throw py::type_error(std::string(role) + " has element format '" +
                             (view_.format ? view_.format : "B") + "' (" +
                             std::to_string(view_.itemsize) +
                             " bytes), which Braid cannot reduce; supported: int8, uint8, "
                             "int32, uint32, int64, uint64, float16, float32, float64 (bfloat16 "
                             "through dtype=braid.bfloat16 on 2-byte data)");
      }
      type_ = *type;
    }
    count_ = static_cast<size_t>(view_.len) / ItemSize(type_);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() {
    if (held_) PyBuffer_Release(&view_);  // only ever destroyed with the GIL held.
  }

  void* data() const { return view_.buf; }
  size_t count() const { return count_; }
  braidDataType_t type() const { return type_; }
  const py::object& object() const { return owner_; }

 private:
  bool IsCContiguous() const {
    if (view_.strides == nullptr) return true;
    Py_ssize_t expected = view_.itemsize;
    for (int d = view_.ndim - 1; d >= 0; --d) {
      if (view_.shape[d] > 1 && view_.strides[d] != expected) return false;
      expected *= view_.shape[d];
    }
    return true;
  }

  py::object owner_;
  Py_buffer view_{};
  bool held_ = false;
  braidDataType_t type_ = braidUint8;
  size_t count_ = 0;
};

using BufferPtr = std::shared_ptr<Buffer>;

// Between braid.group_start() and the outermost group_end() Braid defers the calls made on this
// thread, so the buffers of blocking calls (and of nonblocking requests dropped early) must stay
// exported until the group ends; they wait here. Only touched with the GIL held.
struct GroupState {
  int depth = 0;
  std::vector<BufferPtr> buffers;
  std::vector<braidRequest_t> orphans;  // requests destroyed inside the group: waited at its end.
};
thread_local GroupState group_state;

void GroupStart() {
  Check(braidGroupStart());
  ++group_state.depth;
}

void GroupEnd() {
  if (group_state.depth == 0) {
    throw Failure{braidInvalidUsage,
                  "invalid usage: group_end() without a matching group_start() on this thread"};
  }
  braidResult_t rc = braidSuccess;
  std::string detail;
  {
    py::gil_scoped_release release;
    rc = braidGroupEnd();
    if (rc != braidSuccess) detail = braidGetLastError();
  }
  if (--group_state.depth == 0) {
    std::vector<braidRequest_t> orphans = std::move(group_state.orphans);
    {
      py::gil_scoped_release release;
      for (braidRequest_t r : orphans) braidWait(r);  // errors: already reported by End.
    }
    group_state.buffers.clear();
  }
  if (rc != braidSuccess) throw Failure{rc, std::string(braidGetErrorString(rc)) + ": " + detail};
}

// A started nonblocking operation. Keeps its buffers alive and exported until it completes.
class Request {
 public:
  Request(braidRequest_t request, std::vector<BufferPtr> buffers, py::object result)
      : request_(request), buffers_(std::move(buffers)), result_(std::move(result)) {}
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;
  ~Request() {
    // The buffers may not be released while Braid still writes them: finish first. Inside a
    // group the request cannot be waited on yet: the group's end does it.
    if (request_ != nullptr && group_state.depth > 0) {
      group_state.orphans.push_back(request_);
      group_state.buffers.insert(group_state.buffers.end(), buffers_.begin(), buffers_.end());
    } else if (request_ != nullptr) {
      py::gil_scoped_release release;
      braidWait(request_);
    }
  }

  // True once complete; raises the operation's error.
  bool Test() {
    if (request_ == nullptr) return true;
    NotInGroup("test");
    int done = 0;
    braidResult_t rc = braidTest(request_, &done);
    if (rc != braidSuccess && rc != braidInProgress) done = 1;
    if (!done) return false;
    request_ = nullptr;
    buffers_.clear();
    Check(rc);
    return true;
  }
  // Blocks (without the GIL) until complete; returns the output buffer (None for barrier).
  py::object Wait() {
    if (request_ != nullptr) {
      NotInGroup("wait");
      braidRequest_t request = std::exchange(request_, nullptr);
      CallWithoutGil([&] { return braidWait(request); });
      buffers_.clear();
    }
    return result_;
  }

 private:
  // Braid refuses (and would keep) a request of a group that has not ended.
  static void NotInGroup(const char* what) {
    if (group_state.depth > 0) {
      throw Failure{braidInvalidUsage,
                    std::string("invalid usage: Request.") + what +
                        "() inside braid.group(): the group's operations start at its end; "
                        "wait after the group"};
    }
  }

  braidRequest_t request_;
  std::vector<BufferPtr> buffers_;
  py::object result_;
};

// How one collective is called: `start(nullptr)` runs it blocking, `start(&request)` starts it.
using Start = std::function<braidResult_t(braidRequest_t*)>;

class Comm {
 public:
  static std::unique_ptr<Comm> FromEnv() {
    braidComm_t comm = nullptr;
    CallWithoutGil([&] { return braidCommInitFromEnv(&comm); });
    return std::unique_ptr<Comm>(new Comm(comm));
  }
  static std::unique_ptr<Comm> FromUniqueId(int nranks, const py::bytes& id, int rank) {
    std::string bytes = id;
    if (bytes.size() != BRAID_UNIQUE_ID_BYTES) {
      throw py::value_error("unique_id must be the " + std::to_string(BRAID_UNIQUE_ID_BYTES) +
                            " bytes returned by braid.get_unique_id(), got " +
                            std::to_string(bytes.size()));
    }
    braidUniqueId unique_id;
    std::memcpy(unique_id.internal, bytes.data(), BRAID_UNIQUE_ID_BYTES);
    braidComm_t comm = nullptr;
    CallWithoutGil([&] { return braidCommInitRank(&comm, nranks, unique_id, rank); });
    return std::unique_ptr<Comm>(new Comm(comm));
  }
  Comm(const Comm&) = delete;
  Comm& operator=(const Comm&) = delete;
  ~Comm() {
    if (comm_ != nullptr) {
      py::gil_scoped_release release;
      braidCommDestroy(comm_);
    }
  }

  int rank() const {
    int rank = -1;
    Check(braidCommUserRank(Live(), &rank));
    return rank;
  }
  int size() const {
    int count = 0;
    Check(braidCommCount(Live(), &count));
    return count;
  }
  std::string transport() const {
    const char* name = nullptr;
    Check(braidCommTransportName(Live(), &name));
    return name;
  }
  void SetTimeout(double seconds) { Check(braidCommSetTimeout(Live(), seconds)); }
  braidResult_t AsyncError() const {
    braidResult_t error = braidSuccess;
    Check(braidCommGetAsyncError(Live(), &error));
    return error;
  }
  void Destroy() {
    if (comm_ == nullptr) return;
    braidComm_t comm = std::exchange(comm_, nullptr);
    CallWithoutGil([&] { return braidCommDestroy(comm); });
  }
  // Thread-safe in Braid; from Python typically called from another thread or a signal handler
  // while a collective blocks.
  void Abort() {
    if (comm_ == nullptr) return;
    braidComm_t comm = std::exchange(comm_, nullptr);
    CallWithoutGil([&] { return braidCommAbort(comm); });
  }

  // recv defaults to send (in place). Returns recv.
  py::object AllReduce(const py::object& send, const py::object& recv, braidRedOp_t op,
                       std::optional<braidDataType_t> dtype, bool nonblocking) {
    auto in = std::make_shared<Buffer>(send, recv.is_none(), dtype, "sendbuf");
    auto out = recv.is_none() ? in : std::make_shared<Buffer>(recv, true, dtype, "recvbuf");
    SameType(*in, *out);
    if (out->count() != in->count()) {
      throw py::value_error("AllReduce: recvbuf has " + std::to_string(out->count()) +
                            " elements, sendbuf " + std::to_string(in->count()));
    }
    braidComm_t c = Live();
    return Run({in, out}, out->object(), nonblocking, [=](braidRequest_t* r) {
      return r ? braidIallReduce(in->data(), out->data(), in->count(), in->type(), op, c, r)
               : braidAllReduce(in->data(), out->data(), in->count(), in->type(), op, c);
    });
  }
  // recv holds size() * len(send) elements, rank r's contribution at block r.
  py::object AllGather(const py::object& send, const py::object& recv,
                       std::optional<braidDataType_t> dtype, bool nonblocking) {
    auto in = std::make_shared<Buffer>(send, false, dtype, "sendbuf");
    auto out = std::make_shared<Buffer>(recv, true, dtype, "recvbuf");
    SameType(*in, *out);
    if (out->count() != in->count() * static_cast<size_t>(size())) {
      throw py::value_error("AllGather: recvbuf has " + std::to_string(out->count()) +
                            " elements; it must hold size() * len(sendbuf) = " +
                            std::to_string(in->count() * size()));
    }
    braidComm_t c = Live();
    return Run({in, out}, out->object(), nonblocking, [=](braidRequest_t* r) {
      return r ? braidIallGather(in->data(), out->data(), in->count(), in->type(), c, r)
               : braidAllGather(in->data(), out->data(), in->count(), in->type(), c);
    });
  }
  // send holds size() * len(recv) elements; this rank receives the reduction of block rank().
  py::object ReduceScatter(const py::object& send, const py::object& recv, braidRedOp_t op,
                           std::optional<braidDataType_t> dtype, bool nonblocking) {
    auto in = std::make_shared<Buffer>(send, false, dtype, "sendbuf");
    auto out = std::make_shared<Buffer>(recv, true, dtype, "recvbuf");
    SameType(*in, *out);
    if (in->count() != out->count() * static_cast<size_t>(size())) {
      throw py::value_error("ReduceScatter: sendbuf has " + std::to_string(in->count()) +
                            " elements; it must hold size() * len(recvbuf) = " +
                            std::to_string(out->count() * size()));
    }
    braidComm_t c = Live();
    return Run({in, out}, out->object(), nonblocking, [=](braidRequest_t* r) {
      return r ? braidIreduceScatter(in->data(), out->data(), out->count(), in->type(), op, c, r)
               : braidReduceScatter(in->data(), out->data(), out->count(), in->type(), op, c);
    });
  }
  // In place: the root's buffer is copied into every rank's.
  py::object Broadcast(const py::object& buffer, int root, std::optional<braidDataType_t> dtype,
                       bool nonblocking) {
    auto buf = std::make_shared<Buffer>(buffer, true, dtype, "buffer");
    braidComm_t c = Live();
    return Run({buf}, buf->object(), nonblocking, [=](braidRequest_t* r) {
      return r ? braidIbroadcast(buf->data(), buf->data(), buf->count(), buf->type(), root, c, r)
               : braidBroadcast(buf->data(), buf->data(), buf->count(), buf->type(), root, c);
    });
  }
  py::object Barrier(bool nonblocking) {
    braidComm_t c = Live();
    return Run({}, py::none(), nonblocking,
               [=](braidRequest_t* r) { return r ? braidIbarrier(c, r) : braidBarrier(c); });
  }

  // The reduction lands in recv at the root only; recv defaults to send (in place at the root,
  // where send must then be writable). Returns recv.
  py::object Reduce(const py::object& send, const py::object& recv, braidRedOp_t op, int root,
                    std::optional<braidDataType_t> dtype, bool nonblocking) {
    const bool in_place = recv.is_none();
    auto in = std::make_shared<Buffer>(send, in_place && root == rank(), dtype, "sendbuf");
    auto out = in_place ? in : std::make_shared<Buffer>(recv, true, dtype, "recvbuf");
    SameType(*in, *out);
    if (out->count() != in->count()) {
      throw py::value_error("Reduce: recvbuf has " + std::to_string(out->count()) +
                            " elements, sendbuf " + std::to_string(in->count()));
    }
    braidComm_t c = Live();
    return Run({in, out}, out->object(), nonblocking, [=](braidRequest_t* r) {
      return r ? braidIreduce(in->data(), out->data(), in->count(), in->type(), op, root, c, r)
               : braidReduce(in->data(), out->data(), in->count(), in->type(), op, root, c);
    });
  }
  // send holds size() equal blocks, block r going to rank r; recv (default: send, in place)
  // receives rank r's block at block r. Returns recv.
  py::object AllToAll(const py::object& send, const py::object& recv,
                      std::optional<braidDataType_t> dtype, bool nonblocking) {
    const bool in_place = recv.is_none();
    auto in = std::make_shared<Buffer>(send, in_place, dtype, "sendbuf");
    auto out = in_place ? in : std::make_shared<Buffer>(recv, true, dtype, "recvbuf");
    SameType(*in, *out);
    const size_t n = static_cast<size_t>(size());
    if (in->count() % n != 0 || out->count() != in->count()) {
      throw py::value_error("AllToAll: sendbuf (" + std::to_string(in->count()) +
                            " elements) and recvbuf (" + std::to_string(out->count()) +
                            ") must be the same length, a multiple of size() = " +
                            std::to_string(n));
    }
    const size_t block = in->count() / n;
    braidComm_t c = Live();
    return Run({in, out}, out->object(), nonblocking, [=](braidRequest_t* r) {
      return r ? braidIallToAll(in->data(), out->data(), block, in->type(), c, r)
               : braidAllToAll(in->data(), out->data(), block, in->type(), c);
    });
  }
  // sendcounts[r] elements at sdispls[r] of send go to rank r; rank r's block lands at
  // rdispls[r] of recv (recvcounts[r] elements). Displacements default to the packed layout
  // (running sums of the counts). Returns recv.
  py::object AllToAllv(const py::object& send, std::vector<size_t> send_counts,
                       const py::object& recv, std::vector<size_t> recv_counts,
                       std::optional<std::vector<size_t>> send_displs,
                       std::optional<std::vector<size_t>> recv_displs,
                       std::optional<braidDataType_t> dtype, bool nonblocking) {
    auto in = std::make_shared<Buffer>(send, false, dtype, "sendbuf");
    auto out = std::make_shared<Buffer>(recv, true, dtype, "recvbuf");
    SameType(*in, *out);
    auto sd = std::make_shared<std::vector<size_t>>(
        Layout("sendcounts", "sdispls", send_counts, send_displs, in->count(), "sendbuf"));
    auto rd = std::make_shared<std::vector<size_t>>(
        Layout("recvcounts", "rdispls", recv_counts, recv_displs, out->count(), "recvbuf"));
    auto sc = std::make_shared<std::vector<size_t>>(std::move(send_counts));
    auto rc = std::make_shared<std::vector<size_t>>(std::move(recv_counts));
    braidComm_t c = Live();
    return Run({in, out}, out->object(), nonblocking, [=](braidRequest_t* r) {
      return r ? braidIallToAllv(in->data(), sc->data(), sd->data(), out->data(), rc->data(),
                                 rd->data(), in->type(), c, r)
               : braidAllToAllv(in->data(), sc->data(), sd->data(), out->data(), rc->data(),
                                rd->data(), in->type(), c);
    });
  }
  // The k-th send to a peer matches that peer's k-th recv from this rank. Returns the buffer.
  py::object Send(const py::object& buffer, int peer, std::optional<braidDataType_t> dtype,
                  bool nonblocking) {
    auto buf = std::make_shared<Buffer>(buffer, false, dtype, "buffer");
    braidComm_t c = Live();
    return Run({buf}, buf->object(), nonblocking, [=](braidRequest_t* r) {
      return r ? braidIsend(buf->data(), buf->count(), buf->type(), peer, c, r)
               : braidSend(buf->data(), buf->count(), buf->type(), peer, c);
    });
  }
  py::object Recv(const py::object& buffer, int peer, std::optional<braidDataType_t> dtype,
                  bool nonblocking) {
    auto buf = std::make_shared<Buffer>(buffer, true, dtype, "buffer");
    braidComm_t c = Live();
    return Run({buf}, buf->object(), nonblocking, [=](braidRequest_t* r) {
      return r ? braidIrecv(buf->data(), buf->count(), buf->type(), peer, c, r)
               : braidRecv(buf->data(), buf->count(), buf->type(), peer, c);
    });
  }

 private:
  explicit Comm(braidComm_t comm) : comm_(comm) {}

  // Checks one side of an AllToAllv (size() counts; every block inside the buffer) and returns
  // its displacements, the packed layout when none are given.
  std::vector<size_t> Layout(const char* counts_name, const char* displs_name,
                             const std::vector<size_t>& counts,
                             const std::optional<std::vector<size_t>>& given, size_t length,
                             const char* buffer_name) const {
    const size_t n = static_cast<size_t>(size());
    if (counts.size() != n || (given && given->size() != n)) {
      throw py::value_error(std::string("AllToAllv: ") + counts_name + " and " + displs_name +
                            " must have size() = " + std::to_string(n) + " entries");
    }
    std::vector<size_t> displs(n);
    size_t next = 0;
    for (size_t r = 0; r < n; ++r) {
      displs[r] = given ? (*given)[r] : next;
      next = displs[r] + counts[r];
      if (counts[r] != 0 && (counts[r] > length || displs[r] > length - counts[r])) {
        throw py::value_error(std::string("AllToAllv: the block for rank ") + std::to_string(r) +
                              " (" + std::to_string(counts[r]) + " elements at " +
                              std::to_string(displs[r]) + ") does not fit " + buffer_name +
                              " of " + std::to_string(length) + " elements");
      }
    }
    return displs;
  }

  braidComm_t Live() const {
    if (comm_ == nullptr) {
      throw Failure{braidInvalidUsage,
                    "invalid usage: this communicator was destroyed or aborted; create a new one"};
    }
    return comm_;
  }
  static void SameType(const Buffer& a, const Buffer& b) {
    if (a.type() != b.type()) {
      throw py::type_error("sendbuf and recvbuf have different element types");
    }
  }
  // Blocking: runs `start` without the GIL and returns `result`. Nonblocking: a Request.
  static py::object Run(std::vector<BufferPtr> buffers, py::object result, bool nonblocking,
                        const Start& start) {
    if (!nonblocking) {
      CallWithoutGil([&] { return start(nullptr); });
      if (group_state.depth > 0) {
        group_state.buffers.insert(group_state.buffers.end(), buffers.begin(), buffers.end());
      }
      return result;
    }
    braidRequest_t request = nullptr;
    Check(start(&request));
    return py::cast(std::make_unique<Request>(request, std::move(buffers), std::move(result)));
  }

  braidComm_t comm_ = nullptr;
};

py::bytes GetUniqueId() {
  braidUniqueId id;
  CallWithoutGil([&] { return braidGetUniqueId(&id); });
  return py::bytes(id.internal, BRAID_UNIQUE_ID_BYTES);
}

}  // namespace

PYBIND11_MODULE(_braid, m) {
  m.doc() = "Braid collective communication (the C API over buffer-protocol objects)";

  static py::exception<Failure> error(m, "BraidError", PyExc_RuntimeError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Failure& failure) {
      py::object instance = py::handle(error.ptr())(failure.message);
      instance.attr("code") = static_cast<int>(failure.code);
      PyErr_SetObject(error.ptr(), instance.ptr());
    }
  });

  py::enum_<braidRedOp_t>(m, "Op")
      .value("SUM", braidSum).value("PROD", braidProd).value("MAX", braidMax)
      .value("MIN", braidMin).value("AVG", braidAvg);
  py::enum_<braidDataType_t>(m, "DataType")
      .value("int8", braidInt8).value("uint8", braidUint8).value("int32", braidInt32)
      .value("uint32", braidUint32).value("int64", braidInt64).value("uint64", braidUint64)
      .value("float16", braidFloat16).value("float32", braidFloat32)
      .value("float64", braidFloat64).value("bfloat16", braidBfloat16);
  py::enum_<braidResult_t>(m, "Result")
      .value("SUCCESS", braidSuccess).value("SYSTEM_ERROR", braidSystemError)
      .value("INTERNAL_ERROR", braidInternalError)
      .value("INVALID_ARGUMENT", braidInvalidArgument)
      .value("INVALID_USAGE", braidInvalidUsage).value("REMOTE_ERROR", braidRemoteError)
      .value("IN_PROGRESS", braidInProgress).value("TIMEOUT", braidTimeout)
      .value("ABORTED", braidAborted);

  m.def("version", [] {
    int v = 0;
    Check(braidGetVersion(&v));
    return v;
  }, "BRAID_VERSION_CODE of the loaded libbraid (major * 10000 + minor * 100 + patch)");
  m.def("get_unique_id", &GetUniqueId,
        "A new unique id (bytes); this process hosts the rendezvous root until all ranks joined");

  m.def("group_start", &GroupStart,
        "Defers this thread's Braid calls until the matching group_end() (groups nest); "
        "sends and receives of a group run as one batch, so exchanges cannot deadlock");
  m.def("group_end", &GroupEnd,
        "Issues the group's calls at the outermost end and waits for its blocking ones");

  py::class_<Request>(m, "Request", "A started nonblocking collective")
      .def("test", &Request::Test, "True once complete (raises BraidError if it failed)")
      .def("wait", &Request::Wait, "Blocks until complete; returns the output buffer");

  const auto dtype = py::arg("dtype") = py::none();
  py::class_<Comm>(m, "Comm", "A Braid communicator")
      .def_static("from_env", &Comm::FromEnv,
                  "From launcher variables (braidrun, torchrun, mpirun or srun with BRAID_ROOT)")
      .def(py::init(&Comm::FromUniqueId), py::arg("nranks"), py::arg("unique_id"),
           py::arg("rank"))
      .def_property_readonly("rank", &Comm::rank)
      .def_property_readonly("size", &Comm::size)
      .def_property_readonly("transport", &Comm::transport)
      .def("set_timeout", &Comm::SetTimeout, py::arg("seconds"))
      .def("async_error", &Comm::AsyncError)
      .def("destroy", &Comm::Destroy)
      .def("abort", &Comm::Abort)
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](Comm& c, py::args) { c.Destroy(); })
      .def("all_reduce", [](Comm& c, py::object s, py::object r, braidRedOp_t op,
                            std::optional<braidDataType_t> t) {
             return c.AllReduce(s, r, op, t, false);
           }, py::arg("sendbuf"), py::arg("recvbuf") = py::none(), py::arg("op") = braidSum,
           dtype)
      .def("iall_reduce", [](Comm& c, py::object s, py::object r, braidRedOp_t op,
                             std::optional<braidDataType_t> t) {
             return c.AllReduce(s, r, op, t, true);
           }, py::arg("sendbuf"), py::arg("recvbuf") = py::none(), py::arg("op") = braidSum,
           dtype)
      .def("all_gather", [](Comm& c, py::object s, py::object r,
                            std::optional<braidDataType_t> t) {
             return c.AllGather(s, r, t, false);
           }, py::arg("sendbuf"), py::arg("recvbuf"), dtype)
      .def("iall_gather", [](Comm& c, py::object s, py::object r,
                             std::optional<braidDataType_t> t) {
             return c.AllGather(s, r, t, true);
           }, py::arg("sendbuf"), py::arg("recvbuf"), dtype)
      .def("reduce_scatter", [](Comm& c, py::object s, py::object r, braidRedOp_t op,
                                std::optional<braidDataType_t> t) {
             return c.ReduceScatter(s, r, op, t, false);
           }, py::arg("sendbuf"), py::arg("recvbuf"), py::arg("op") = braidSum, dtype)
      .def("ireduce_scatter", [](Comm& c, py::object s, py::object r, braidRedOp_t op,
                                 std::optional<braidDataType_t> t) {
             return c.ReduceScatter(s, r, op, t, true);
           }, py::arg("sendbuf"), py::arg("recvbuf"), py::arg("op") = braidSum, dtype)
      .def("broadcast", [](Comm& c, py::object b, int root, std::optional<braidDataType_t> t) {
             return c.Broadcast(b, root, t, false);
           }, py::arg("buffer"), py::arg("root") = 0, dtype)
      .def("ibroadcast", [](Comm& c, py::object b, int root, std::optional<braidDataType_t> t) {
             return c.Broadcast(b, root, t, true);
           }, py::arg("buffer"), py::arg("root") = 0, dtype)
      .def("reduce", [](Comm& c, py::object s, py::object r, braidRedOp_t op, int root,
                        std::optional<braidDataType_t> t) {
             return c.Reduce(s, r, op, root, t, false);
           }, py::arg("sendbuf"), py::arg("recvbuf") = py::none(), py::arg("op") = braidSum,
           py::arg("root") = 0, dtype)
      .def("ireduce", [](Comm& c, py::object s, py::object r, braidRedOp_t op, int root,
                         std::optional<braidDataType_t> t) {
             return c.Reduce(s, r, op, root, t, true);
           }, py::arg("sendbuf"), py::arg("recvbuf") = py::none(), py::arg("op") = braidSum,
           py::arg("root") = 0, dtype)
      .def("all_to_all", [](Comm& c, py::object s, py::object r,
                            std::optional<braidDataType_t> t) {
             return c.AllToAll(s, r, t, false);
           }, py::arg("sendbuf"), py::arg("recvbuf") = py::none(), dtype)
      .def("iall_to_all", [](Comm& c, py::object s, py::object r,
                             std::optional<braidDataType_t> t) {
             return c.AllToAll(s, r, t, true);
           }, py::arg("sendbuf"), py::arg("recvbuf") = py::none(), dtype)
      .def("all_to_allv", [](Comm& c, py::object s, std::vector<size_t> sc, py::object r,
                             std::vector<size_t> rc, std::optional<std::vector<size_t>> sd,
                             std::optional<std::vector<size_t>> rd,
                             std::optional<braidDataType_t> t) {
             return c.AllToAllv(s, std::move(sc), r, std::move(rc), std::move(sd),
                                std::move(rd), t, false);
           }, py::arg("sendbuf"), py::arg("sendcounts"), py::arg("recvbuf"),
           py::arg("recvcounts"), py::arg("sdispls") = py::none(),
           py::arg("rdispls") = py::none(), dtype)
      .def("iall_to_allv", [](Comm& c, py::object s, std::vector<size_t> sc, py::object r,
                              std::vector<size_t> rc, std::optional<std::vector<size_t>> sd,
                              std::optional<std::vector<size_t>> rd,
                              std::optional<braidDataType_t> t) {
             return c.AllToAllv(s, std::move(sc), r, std::move(rc), std::move(sd),
                                std::move(rd), t, true);
           }, py::arg("sendbuf"), py::arg("sendcounts"), py::arg("recvbuf"),
           py::arg("recvcounts"), py::arg("sdispls") = py::none(),
           py::arg("rdispls") = py::none(), dtype)
      .def("send", [](Comm& c, py::object b, int peer, std::optional<braidDataType_t> t) {
             return c.Send(b, peer, t, false);
           }, py::arg("buffer"), py::arg("peer"), dtype)
      .def("isend", [](Comm& c, py::object b, int peer, std::optional<braidDataType_t> t) {
             return c.Send(b, peer, t, true);
           }, py::arg("buffer"), py::arg("peer"), dtype)
      .def("recv", [](Comm& c, py::object b, int peer, std::optional<braidDataType_t> t) {
             return c.Recv(b, peer, t, false);
           }, py::arg("buffer"), py::arg("peer"), dtype)
      .def("irecv", [](Comm& c, py::object b, int peer, std::optional<braidDataType_t> t) {
             return c.Recv(b, peer, t, true);
           }, py::arg("buffer"), py::arg("peer"), dtype)
      .def("barrier", [](Comm& c) { c.Barrier(false); })
      .def("ibarrier", [](Comm& c) { return c.Barrier(true); });
}
