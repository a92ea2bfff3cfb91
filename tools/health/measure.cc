#include "tools/health/measure.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace braid::health {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

double WallMs() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string LastError(braidResult_t result) {
  return absl::StrCat(braidGetErrorString(result), ": ", braidGetLastError());
}

// One side of a two-rank broadcast of raw bytes from `root`.
braidResult_t Send8(braidComm_t comm, int root, void* buf) {
  return braidBroadcast(buf, buf, 8, braidUint8, root, comm);
}

// A byte pattern that differs per direction and position, so a misplaced or stale chunk shows.
uint8_t PatternByte(int direction, size_t i) {
  return static_cast<uint8_t>((i * 131 + static_cast<size_t>(direction) * 17 + (i >> 12)) & 0xff);
}

}  // namespace

PairOutcome MeasurePair(braidComm_t pair, int side, int a, int b, const PairOptions& options) {
  PairOutcome outcome;
  PairRecord& rec = outcome.record;
  rec.a = a;
  rec.b = b;
  rec.measured = true;
  auto fail = [&](braidResult_t result, absl::string_view phase) {
    rec.ok = false;
    rec.error = absl::StrCat(phase, ": ", LastError(result));
    return outcome;
  };

  // Latency and clock offset: side 0 sends its time, side 1 answers with its own. The sample
  // with the smallest round trip bounds the offset error best (as NTP does).
  std::vector<double> round_trips;
  double best_rtt = 1e30;
  const int warmup = 3;
  for (int i = 0; i < warmup + options.latency_iters; ++i) {
    double stamp = 0;
    Clock::time_point t0 = Clock::now();
    double wall0 = WallMs();
    if (side == 0) std::memcpy(&stamp, &wall0, 8);
    braidResult_t r = Send8(pair, 0, &stamp);
    if (r != braidSuccess) return fail(r, "latency");
    if (side == 1) {
      double now = WallMs();
      std::memcpy(&stamp, &now, 8);
    }
    r = Send8(pair, 1, &stamp);
    if (r != braidSuccess) return fail(r, "latency");
    double rtt = Seconds(t0, Clock::now());
    if (i < warmup) continue;
    round_trips.push_back(rtt);
    if (side == 0 && rtt < best_rtt) {
      best_rtt = rtt;
      double wall1 = WallMs();
      outcome.peer_clock_offset_ms = stamp - (wall0 + wall1) / 2;
      outcome.clock_known = true;
    }
  }
  std::sort(round_trips.begin(), round_trips.end());
  rec.latency_us = round_trips.empty() ? 0 : round_trips[round_trips.size() / 2] / 2 * 1e6;

  // Bandwidth each way: a warm-up message and an acknowledgement (so both sides start timing
  // with the path warm and drained: a sender's call returns once its data is queued, so timing
  // from its own warm-up would count that message too), then `iters` messages and a second
  // acknowledgement; both sides time the same interval.
  std::vector<uint8_t> buffer(options.bytes);
  for (int root = 0; root < 2; ++root) {
    uint64_t token = 0;
    if (side == root) {
      for (size_t i = 0; i < buffer.size(); ++i) buffer[i] = PatternByte(root, i);
    } else {
      std::memset(buffer.data(), 0, buffer.size());
    }
    braidResult_t r =
        braidBroadcast(buffer.data(), buffer.data(), buffer.size(), braidUint8, root, pair);
    if (r == braidSuccess) r = Send8(pair, 1 - root, &token);
    if (r != braidSuccess) return fail(r, "bandwidth warm-up");
    // The best of several samples: a shaped or congested link can never run faster than its
    // capacity, while a sample can run slower when a busy host is late to the CPU.
    double gbps = 0;
    for (int sample = 0; sample < options.samples; ++sample) {
      Clock::time_point start = Clock::now();
      for (int i = 0; i < options.iters; ++i) {
        r = braidBroadcast(buffer.data(), buffer.data(), buffer.size(), braidUint8, root, pair);
        if (r != braidSuccess) return fail(r, "bandwidth");
      }
      r = Send8(pair, 1 - root, &token);
      if (r != braidSuccess) return fail(r, "bandwidth acknowledgement");
      double seconds = Seconds(start, Clock::now());
      if (seconds > 0) {
        gbps = std::max(gbps, static_cast<double>(options.bytes) * options.iters / seconds / 1e9);
      }
    }
    (root == 0 ? rec.gbps_ab : rec.gbps_ba) = gbps;
    if (side != root) {
      for (size_t i = 0; i < buffer.size(); ++i) {
        if (buffer[i] != PatternByte(root, i)) {
          rec.ok = false;
          rec.error = absl::StrCat("data corrupted: byte ", i, " of ", buffer.size(),
                                   " differs from what the sender wrote");
          return outcome;
        }
      }
    }
  }
  rec.ok = true;
  return outcome;
}

std::vector<AllReduceRecord> MeasureAllReduce(braidComm_t world, int nranks,
                                              const std::vector<size_t>& sizes, int iters) {
  std::vector<AllReduceRecord> records;
  for (size_t bytes : sizes) {
    AllReduceRecord rec;
    rec.bytes = bytes;
    size_t count = bytes / sizeof(float);
    std::vector<float> data(count, 1.0f);
    Clock::time_point start = Clock::now();
    braidResult_t r = braidSuccess;
    for (int i = 0; i < 1 + iters && r == braidSuccess; ++i) {
      if (i == 1) start = Clock::now();
      r = braidAllReduce(data.data(), data.data(), count, braidFloat32, braidMax, world);
    }
    if (r != braidSuccess) {
      rec.error = LastError(r);
      records.push_back(rec);
      break;  // the communicator is broken now; later sizes would only repeat the error.
    }
    double seconds = Seconds(start, Clock::now()) / iters;
    rec.ok = true;
    rec.time_us = seconds * 1e6;
    double algbw = seconds > 0 ? static_cast<double>(count * sizeof(float)) / seconds / 1e9 : 0;
    rec.busbw_gbps = nranks > 1 ? algbw * 2.0 * (nranks - 1) / nranks : algbw;
    records.push_back(rec);
  }
  return records;
}

}  // namespace braid::health
