#include "sim/fabric.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "core/status.h"

namespace braid::sim {
namespace {

class SimRequest : public Request {
 public:
  void Finish(absl::Status status, size_t bytes) { Complete(std::move(status), bytes); }
};

struct Key {
  int from, to;
  uint64_t tag;
  bool operator==(const Key&) const = default;
};
struct KeyHash {
  size_t operator()(const Key& k) const {
    uint64_t h = k.tag * 0x9E3779B97F4A7C15ull;
    h ^= (static_cast<uint64_t>(k.from) << 32 | static_cast<uint32_t>(k.to)) + 0x7F4A7C15 +
         (h << 6) + (h >> 2);
    return static_cast<size_t>(h);
  }
};

struct Message {
  std::vector<std::byte> payload;
  size_t length = 0;
};

struct PostedRecv {
  void* buffer;
  size_t length;
  std::shared_ptr<SimRequest> request;
};

struct Event {
  double time;
  uint64_t sequence;  // ties broken by creation order: deterministic.
  int rank;           // whose request completes (sender) or receiver.
  bool delivery;
  Key key;
  std::shared_ptr<SimRequest> send;  // for send completions.
  std::shared_ptr<Message> message;  // for deliveries.
  bool operator>(const Event& o) const {
    return time != o.time ? time > o.time : sequence > o.sequence;
  }
};

class Fabric;

class SimConnection : public Connection {
 public:
  SimConnection(Fabric* fabric, int peer) : fabric_(fabric), peer_(peer) {}
  int peer() const override { return peer_; }
  absl::StatusOr<RequestPtr> isend(const void* buf, size_t len, uint64_t tag,
                                   const MemoryRegion*) override;
  absl::StatusOr<RequestPtr> irecv(void* buf, size_t len, uint64_t tag,
                                   const MemoryRegion*) override;

 private:
  Fabric* fabric_;
  int peer_;
};

// One Transport object serves every rank: calls come from the running fiber, whose rank the
// fabric knows. progress() suspends that fiber until one of its requests completes.
class Fabric : public Transport {
 public:
  Fabric(int nranks, const SimOptions& options)
      : n_(nranks), options_(options), tx_free_(static_cast<size_t>(nranks), 0),
        rx_free_(static_cast<size_t>(nranks), 0), woken_(static_cast<size_t>(nranks), false),
        blocked_(static_cast<size_t>(nranks), false) {}

  std::string name() const override { return "sim"; }
  absl::StatusOr<Blob> listen() override { return Blob{}; }
  absl::StatusOr<std::vector<std::unique_ptr<Connection>>> connect(std::span<const int>,
                                                                   std::span<const Blob>,
                                                                   Deadline) override {
    return absl::UnimplementedError("the simulated fabric is wired by Simulate()");
  }
  absl::StatusOr<MemoryRegion*> register_memory(void*, size_t) override {
    return absl::UnimplementedError("no registration in the simulated fabric");
  }
  absl::Status deregister_memory(MemoryRegion*) override { return absl::OkStatus(); }
  int wait_fd() const override { return -1; }

  absl::Status progress() override {
    size_t r = static_cast<size_t>(current_);
    if (!woken_[r]) {
      blocked_[r] = true;
      Fiber::Suspend();
    }
    woken_[r] = false;
    return absl::OkStatus();
  }

  RequestPtr Send(int to, const void* buf, size_t len, uint64_t tag) {
    const int from = current_;
    auto request = std::make_shared<SimRequest>();
    auto message = std::make_shared<Message>();
    message->length = len;
    if (len) {
      const auto* bytes = static_cast<const std::byte*>(buf);
      message->payload.assign(bytes, bytes + len);
    }
    const LinkModel& l = options_.link;
    double wire = static_cast<double>(len) * options_.byte_scale * l.per_byte_s;
    double& tx = tx_free_[static_cast<size_t>(from)];
    double start = std::max(now_, tx);
    tx = start + l.overhead_s + wire;
    double& rx = rx_free_[static_cast<size_t>(to)];
    double arrive = std::max(tx + l.latency_s, rx + wire);
    rx = arrive;
    ++messages_;
    wire_bytes_ += static_cast<double>(len) * options_.byte_scale;
    Key key{from, to, tag};
    events_.push({tx, sequence_++, from, false, key, request, nullptr});
    events_.push({arrive, sequence_++, to, true, key, nullptr, std::move(message)});
    return request;
  }

  RequestPtr Recv(int from, void* buf, size_t len, uint64_t tag) {
    const int to = current_;
    auto request = std::make_shared<SimRequest>();
    Key key{from, to, tag};
    auto waiting = unexpected_.find(key);
    if (waiting != unexpected_.end()) {
      std::shared_ptr<Message> message = std::move(waiting->second.front());
      waiting->second.pop_front();
      if (waiting->second.empty()) unexpected_.erase(waiting);
      Deliver(*message, {buf, len, request}, to);
    } else {
      posted_[key].push_back({buf, len, request});
    }
    return request;
  }

  SimResult Run(const SimBody& body) {
    std::vector<std::unique_ptr<Connection>> connections;
    std::vector<Connection*> peers;
    for (int r = 0; r < n_; ++r) {
      connections.push_back(std::make_unique<SimConnection>(this, r));
      peers.push_back(connections.back().get());
    }
    // Never sleeps: the fabric suspends in progress() instead.
    ProgressEngine engine(this, std::chrono::hours(24));
    std::vector<std::vector<std::byte>> scratch(static_cast<size_t>(n_));
    std::vector<std::unique_ptr<Fiber>> fibers;
    std::vector<absl::Status> statuses(static_cast<size_t>(n_));
    std::vector<double> finished(static_cast<size_t>(n_), -1);
    for (int r = 0; r < n_; ++r) {
      fibers.push_back(std::make_unique<Fiber>(
          [&, r] {
            CollectiveContext ctx;
            ctx.rank = r;
            ctx.nranks = n_;
            ctx.peers = peers;
            ctx.engine = &engine;
            ctx.sequence = 1;
            ctx.operation = "simulated collective";
            ctx.scratch = options_.shared_scratch ? &scratch[0] : &scratch[static_cast<size_t>(r)];
            statuses[static_cast<size_t>(r)] = body(ctx);
            finished[static_cast<size_t>(r)] = now_;
            if (!options_.shared_scratch) scratch[static_cast<size_t>(r)] = {};
          },
          options_.stack_bytes));
      runnable_.push_back(r);
    }
    SimResult result;
    while (true) {
      while (!runnable_.empty()) {
        current_ = runnable_.front();
        runnable_.pop_front();
        blocked_[static_cast<size_t>(current_)] = false;
        fibers[static_cast<size_t>(current_)]->Resume();
      }
      if (events_.empty()) break;
      Event event = events_.top();
      events_.pop();
      now_ = event.time;
      if (event.delivery) Arrive(event);
      else Wake(event.rank, event.send, absl::OkStatus(), 0);
    }
    for (int r = 0; r < n_; ++r) {
      size_t i = static_cast<size_t>(r);
      if (!fibers[i]->finished()) {
        result.status = absl::InternalError(absl::StrCat(
            "deadlock: rank ", r, " waits for a message that is never sent (",
            posted_.size(), " receives pending)"));
        continue;  // its stack is unmapped with the fiber, never resumed.
      }
      if (!statuses[i].ok() && result.status.ok()) {
        result.status = absl::Status(statuses[i].code(),
                                     absl::StrCat("rank ", r, ": ", statuses[i].message()));
      }
      result.seconds = std::max(result.seconds, finished[i]);
    }
    if (result.status.ok() && !unexpected_.empty()) {
      result.status = absl::InternalError("messages were sent that no rank received");
    }
    result.messages = messages_;
    result.wire_bytes = wire_bytes_;
    return result;
  }

 private:
  void Wake(int rank, const std::shared_ptr<SimRequest>& request, absl::Status status,
            size_t bytes) {
    request->Finish(std::move(status), bytes);
    size_t r = static_cast<size_t>(rank);
    woken_[r] = true;
    if (blocked_[r]) {
      blocked_[r] = false;
      runnable_.push_back(rank);
    }
  }

  void Deliver(const Message& message, const PostedRecv& recv, int rank) {
    if (message.length != recv.length) {
      Wake(rank, recv.request,
           absl::InvalidArgumentError(absl::StrCat("message of ", message.length,
                                                   " bytes for a receive of ", recv.length)),
           0);
      return;
    }
    if (message.length) std::memcpy(recv.buffer, message.payload.data(), message.length);
    Wake(rank, recv.request, absl::OkStatus(), message.length);
  }

  void Arrive(const Event& event) {
    auto posted = posted_.find(event.key);
    if (posted == posted_.end()) {
      unexpected_[event.key].push_back(event.message);
      return;
    }
    PostedRecv recv = posted->second.front();
    posted->second.pop_front();
    if (posted->second.empty()) posted_.erase(posted);
    Deliver(*event.message, recv, event.key.to);
  }

  friend class SimConnection;
  int n_;
  SimOptions options_;
  double now_ = 0;
  int current_ = 0;
  uint64_t sequence_ = 0, messages_ = 0;
  double wire_bytes_ = 0;
  std::vector<double> tx_free_, rx_free_;
  std::vector<bool> woken_, blocked_;
  std::deque<int> runnable_;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events_;
  std::unordered_map<Key, std::deque<PostedRecv>, KeyHash> posted_;
  std::unordered_map<Key, std::deque<std::shared_ptr<Message>>, KeyHash> unexpected_;
};

absl::StatusOr<RequestPtr> SimConnection::isend(const void* buf, size_t len, uint64_t tag,
                                                const MemoryRegion*) {
  return fabric_->Send(peer_, buf, len, tag);
}

absl::StatusOr<RequestPtr> SimConnection::irecv(void* buf, size_t len, uint64_t tag,
                                                const MemoryRegion*) {
  return fabric_->Recv(peer_, buf, len, tag);
}

}  // namespace

SimResult Simulate(int nranks, const SimOptions& options, const SimBody& body) {
  Fabric fabric(nranks, options);
  return fabric.Run(body);
}

}  // namespace braid::sim
