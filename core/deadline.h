// Deadlines: every blocking wait in Braid takes one, so nothing waits forever.
#pragma once

#include <chrono>

namespace braid {

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  static Deadline After(std::chrono::nanoseconds d) { return Deadline(Clock::now() + d); }
  static Deadline Never() { return Deadline(Clock::time_point::max()); }

  bool expired() const { return Clock::now() >= at_; }
  // Time left, clamped at zero.
  std::chrono::nanoseconds remaining() const {
    if (at_ == Clock::time_point::max()) return std::chrono::nanoseconds::max();
    auto left = at_ - Clock::now();
    return left.count() > 0 ? std::chrono::duration_cast<std::chrono::nanoseconds>(left)
                            : std::chrono::nanoseconds(0);
  }
  // Milliseconds left for poll(2), rounded up, capped at `cap_ms`.
  int remaining_ms(int cap_ms) const {
    if (at_ == Clock::time_point::max()) return cap_ms;
    auto ns = remaining().count();
    long long ms = (ns + 999'999) / 1'000'000;
    return ms > cap_ms ? cap_ms : static_cast<int>(ms);
  }
  Clock::time_point at() const { return at_; }

 private:
  explicit Deadline(Clock::time_point at) : at_(at) {}
  Clock::time_point at_;
};

}  // namespace braid
