// Heartbeats on the per-peer "liveness" sockets of transports whose data path is elsewhere
// (ofi, verbs). Such a socket carries fixed-size records: heartbeats while the communicator
// lives, then one goodbye. The heartbeat thread writes without blocking, so the kernel may take
// part of a record when the peer stopped reading (a stopped peer is exactly what heartbeats are
// for): the rest is kept and finished before any other record, so the reader's framing holds.
// The reader reassembles records the same way. Header-only: a few lines per transport.
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <string>

#include "core/deadline.h"

namespace braid {

// The sending side of one liveness socket. Not thread-safe: callers hold their transport lock.
class LivenessWriter {
 public:
  // Sends one heartbeat record unless the previous one is still partly unsent (that one is
  // proof of life enough). Never blocks.
  void Heartbeat(int fd, const void* record, size_t size) {
    if (unsent_.empty()) unsent_.assign(static_cast<const char*>(record), size);
    Push(fd);
  }
  // Finishes a partly sent record (before a goodbye), waiting for room until `deadline`.
  // Returns false if it could not: the next record would then be garbage to the reader.
  bool Flush(int fd, Deadline deadline) {
    while (!unsent_.empty() && Push(fd) && !unsent_.empty() && !deadline.expired()) {
      pollfd pfd{fd, POLLOUT, 0};
      poll(&pfd, 1, deadline.remaining_ms(10));
    }
    return unsent_.empty();
  }
  // Sends one record (a goodbye) after finishing any partial one, waiting for room until
  // `deadline`. Returns false if the record did not go out whole.
  bool Write(int fd, const void* record, size_t size, Deadline deadline) {
    if (!Flush(fd, deadline)) return false;
    unsent_.assign(static_cast<const char*>(record), size);
    return Flush(fd, deadline);
  }

 private:
  // Sends what it can; false once the socket is broken (the reader notices that by itself).
  bool Push(int fd) {
    while (!unsent_.empty()) {
      ssize_t n = ::send(fd, unsent_.data(), unsent_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) {
        unsent_.erase(0, static_cast<size_t>(n));
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
      }
    }
    return true;
  }
  std::string unsent_;
};

// The receiving side: reads what is available and hands out whole records of `size` bytes.
class LivenessReader {
 public:
  enum class Result { kWouldBlock, kEnded, kStopped };
  // Calls on_record(const char* record) for each whole record until the socket would block
  // (kWouldBlock), ends or fails (kEnded, with errno's value in *err, 0 for an end of stream),
  // or on_record returns false (kStopped: the caller is done with the socket).
  template <typename OnRecord>
  Result Read(int fd, size_t size, int* err, OnRecord&& on_record) {
    char buffer[256];
    while (true) {
      ssize_t n = ::recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Result::kWouldBlock;
      if (n <= 0) {
        *err = n < 0 ? errno : 0;
        return Result::kEnded;
      }
      partial_.append(buffer, static_cast<size_t>(n));
      size_t at = 0;
      for (; partial_.size() - at >= size; at += size) {
        if (!on_record(partial_.data() + at)) {
          partial_.clear();
          return Result::kStopped;
        }
      }
      partial_.erase(0, at);
    }
  }
  // A record was cut short by the end of the stream.
  bool torn() const { return !partial_.empty(); }

 private:
  std::string partial_;
};

}  // namespace braid
