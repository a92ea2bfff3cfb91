// Cooperative fibers (ucontext) with small lazily-committed stacks, so one process can run
// thousands of simulated ranks, each a blocking algorithm suspended while it waits.
#pragma once

#include <ucontext.h>

#include <cstddef>
#include <functional>

namespace braid::sim {

class Fiber {
 public:
  Fiber(std::function<void()> body, size_t stack_bytes);
  ~Fiber();
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;

  // Runs the fiber until it suspends or finishes; called from the scheduler only.
  void Resume();
  // Called from inside a running fiber: returns to the scheduler.
  static void Suspend();
  bool finished() const { return finished_; }

 private:
  static void Trampoline(unsigned int high, unsigned int low);
  std::function<void()> body_;
  void* stack_ = nullptr;
  size_t stack_bytes_ = 0;
  ucontext_t context_{};
  ucontext_t* caller_ = nullptr;
  bool finished_ = false;
};

}  // namespace braid::sim
