// braid::Communicator: an RAII C++ wrapper over the C API, taking spans and returning
// braid::Status (a result code plus the detail text) instead of raw codes.
#ifndef BRAID_BRAID_HPP_
#define BRAID_BRAID_HPP_

#include <cstdint>
#include <span>
#include <vector>
#include <string>
#include <type_traits>
#include <utility>

#include "braid/braid.h"

namespace braid {

class Status {
 public:
  Status() = default;
  explicit Status(braidResult_t code)
      : code_(code), message_(code == braidSuccess ? "" : braidGetLastError()) {}
  Status(braidResult_t code, std::string message) : code_(code), message_(std::move(message)) {}
  bool ok() const { return code_ == braidSuccess; }
  braidResult_t code() const { return code_; }
  // "<code text>: <detail>".
  std::string ToString() const {
    return ok() ? "OK" : std::string(braidGetErrorString(code_)) + ": " + message_;
  }
  const std::string& message() const { return message_; }

 private:
  braidResult_t code_ = braidSuccess;
  std::string message_;
};

// Maps C++ element types to Braid datatypes.
template <typename T> struct DataTypeOf;
template <> struct DataTypeOf<int8_t> { static constexpr braidDataType_t value = braidInt8; };
template <> struct DataTypeOf<uint8_t> { static constexpr braidDataType_t value = braidUint8; };
template <> struct DataTypeOf<int32_t> { static constexpr braidDataType_t value = braidInt32; };
template <> struct DataTypeOf<uint32_t> { static constexpr braidDataType_t value = braidUint32; };
template <> struct DataTypeOf<int64_t> { static constexpr braidDataType_t value = braidInt64; };
template <> struct DataTypeOf<uint64_t> { static constexpr braidDataType_t value = braidUint64; };
template <> struct DataTypeOf<float> { static constexpr braidDataType_t value = braidFloat32; };
template <> struct DataTypeOf<double> { static constexpr braidDataType_t value = braidFloat64; };

class Communicator {
 public:
  // From launcher variables (braidrun, torchrun, mpirun with BRAID_ROOT, srun).
  static Status FromEnvironment(Communicator* out) {
    braidComm_t comm = nullptr;
    Status status(braidCommInitFromEnv(&comm));
    if (status.ok()) *out = Communicator(comm);
    return status;
  }
  static Status FromUniqueId(Communicator* out, int nranks, const braidUniqueId& id, int rank) {
    braidComm_t comm = nullptr;
    Status status(braidCommInitRank(&comm, nranks, id, rank));
    if (status.ok()) *out = Communicator(comm);
    return status;
  }

  Communicator() = default;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;
  Communicator(Communicator&& other) noexcept : comm_(std::exchange(other.comm_, nullptr)) {}
  Communicator& operator=(Communicator&& other) noexcept {
    if (this != &other) {
      reset();
      comm_ = std::exchange(other.comm_, nullptr);
    }
    return *this;
  }
  ~Communicator() { reset(); }

  bool valid() const { return comm_ != nullptr; }
  braidComm_t get() const { return comm_; }
  int rank() const {
    int r = -1;
    braidCommUserRank(comm_, &r);
    return r;
  }
  int size() const {
    int n = 0;
    braidCommCount(comm_, &n);
    return n;
  }
  Status Abort() {
    Status status(braidCommAbort(comm_));
    comm_ = nullptr;
    return status;
  }

  template <typename T>
  Status AllReduce(std::span<const T> send, std::span<T> recv, braidRedOp_t op) {
    if (send.size() != recv.size()) return SizeMismatch();
    return Status(braidAllReduce(send.data(), recv.data(), send.size(), DataTypeOf<T>::value, op,
                                 comm_));
  }
  template <typename T>
  Status AllReduce(std::span<T> inplace, braidRedOp_t op) {
    return Status(braidAllReduce(inplace.data(), inplace.data(), inplace.size(),
                                 DataTypeOf<T>::value, op, comm_));
  }
  template <typename T>
  Status AllGather(std::span<const T> send, std::span<T> recv) {
    if (recv.size() != send.size() * static_cast<size_t>(size())) return SizeMismatch();
    return Status(braidAllGather(send.data(), recv.data(), send.size(), DataTypeOf<T>::value,
                                 comm_));
  }
  template <typename T>
  Status ReduceScatter(std::span<const T> send, std::span<T> recv, braidRedOp_t op) {
    if (send.size() != recv.size() * static_cast<size_t>(size())) return SizeMismatch();
    return Status(braidReduceScatter(send.data(), recv.data(), recv.size(), DataTypeOf<T>::value,
                                     op, comm_));
  }
  template <typename T>
  Status Broadcast(std::span<T> buffer, int root) {
    return Status(braidBroadcast(buffer.data(), buffer.data(), buffer.size(),
                                 DataTypeOf<T>::value, root, comm_));
  }
  Status Barrier() { return Status(braidBarrier(comm_)); }

  // ---- Reduce, AllToAll(v), point-to-point (issue 6) ----
  // `recv` is written at `root` only (it may be empty elsewhere).
  template <typename T>
  Status Reduce(std::span<const T> send, std::span<T> recv, braidRedOp_t op, int root) {
    if (rank() == root && send.size() != recv.size()) return SizeMismatch();
    return Status(braidReduce(send.data(), recv.data(), send.size(), DataTypeOf<T>::value, op,
                              root, comm_));
  }
  template <typename T>
  Status Reduce(std::span<T> inplace, braidRedOp_t op, int root) {
    return Status(braidReduce(inplace.data(), inplace.data(), inplace.size(),
                              DataTypeOf<T>::value, op, root, comm_));
  }
  // `send` and `recv` hold size() blocks of equal length; block r goes to / comes from rank r.
  template <typename T>
  Status AllToAll(std::span<const T> send, std::span<T> recv) {
    size_t n = static_cast<size_t>(size());
    if (send.size() != recv.size() || send.size() % n != 0) return SizeMismatch();
    return Status(braidAllToAll(send.data(), recv.data(), send.size() / n,
                                DataTypeOf<T>::value, comm_));
  }
  // Counts and displacements in elements, size() of each (see braidAllToAllv).
  template <typename T>
  Status AllToAllv(std::span<const T> send, std::span<const size_t> send_counts,
                   std::span<const size_t> send_displs, std::span<T> recv,
                   std::span<const size_t> recv_counts, std::span<const size_t> recv_displs) {
    size_t n = static_cast<size_t>(size());
    if (send_counts.size() != n || send_displs.size() != n || recv_counts.size() != n ||
        recv_displs.size() != n) {
      return SizeMismatch();
    }
    for (size_t r = 0; r < n; ++r) {
      if ((send_counts[r] && send_displs[r] + send_counts[r] > send.size()) ||
          (recv_counts[r] && recv_displs[r] + recv_counts[r] > recv.size())) {
        return SizeMismatch();
      }
    }
    return Status(braidAllToAllv(send.data(), send_counts.data(), send_displs.data(), recv.data(),
                                 recv_counts.data(), recv_displs.data(), DataTypeOf<T>::value,
                                 comm_));
  }
  template <typename T>
  Status Send(std::span<const T> data, int peer) {
    return Status(braidSend(data.data(), data.size(), DataTypeOf<T>::value, peer, comm_));
  }
  template <typename T>
  Status Recv(std::span<T> data, int peer) {
    return Status(braidRecv(data.data(), data.size(), DataTypeOf<T>::value, peer, comm_));
  }
  // ---- Split and MPI bootstrap (cluster) ----
  // braidCommSplit; *out stays invalid() for BRAID_SPLIT_NOCOLOR.
  Status Split(int color, int key, Communicator* out) const {
    braidComm_t comm = nullptr;
    Status status(braidCommSplit(comm_, color, key, &comm));
    if (status.ok()) *out = Communicator(comm);
    return status;
  }
  // From an MPI communicator: defined in braid/braid_mpi.h for MpiComm = MPI_Comm (a template,
  // so this header needs no mpi.h).
  template <typename MpiComm>
  static Status FromMPI(Communicator* out, MpiComm mpi_comm);
  // ---- Fault tolerance (issue 7): see braidCommShrink / braidCommGetFailedRanks.
  // Survivors agree on who is alive; `out` becomes the smaller communicator.
  Status Shrink(Communicator& out) {
    braidComm_t made = nullptr;
    Status status(braidCommShrink(comm_, &made));
    if (status.ok()) out = Communicator(made);
    return status;
  }
  std::vector<int> FailedRanks() const {
    int count = 0;
    braidCommGetFailedRanks(comm_, nullptr, 0, &count);
    std::vector<int> ranks(static_cast<size_t>(count));
    braidCommGetFailedRanks(comm_, ranks.data(), count, &count);
    ranks.resize(static_cast<size_t>(count));
    return ranks;
  }
  // Memory registration (verbs transport): see braidCommRegister.
  Status Register(void* buffer, size_t size, void** handle) {
    return Status(braidCommRegister(comm_, buffer, size, handle));
  }
  Status Deregister(void* handle) { return Status(braidCommDeregister(comm_, handle)); }

 private:
  explicit Communicator(braidComm_t comm) : comm_(comm) {}
  void reset() {
    if (comm_) braidCommDestroy(comm_);
    comm_ = nullptr;
  }
  static Status SizeMismatch() {
    return Status(braidInvalidArgument, "the span sizes do not match the collective's contract");
  }
  braidComm_t comm_ = nullptr;
};

// braidGroupStart/braidGroupEnd as a scope: calls made while a Group lives are issued together
// when End() is called or the Group is destroyed (the destructor drops End's status: call End()
// to see it).
class Group {
 public:
  Group() { braidGroupStart(); }
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;
  ~Group() {
    if (open_) braidGroupEnd();
  }
  Status End() {
    if (!open_) return Status(braidInvalidUsage, "this braid::Group has already ended");
    open_ = false;
    return Status(braidGroupEnd());
  }

 private:
  bool open_ = true;
};

}  // namespace braid

#endif  // BRAID_BRAID_HPP_
