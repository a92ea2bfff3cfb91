// braid::Communicator: an RAII C++ wrapper over the C API, taking spans and returning
// braid::Status (a result code plus the detail text) instead of raw codes.
#ifndef BRAID_BRAID_HPP_
#define BRAID_BRAID_HPP_

#include <cstdint>
#include <span>
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

}  // namespace braid

#endif  // BRAID_BRAID_HPP_
