#include "sim/fiber.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>

namespace braid::sim {
namespace {

thread_local ucontext_t t_scheduler;
thread_local Fiber* t_current = nullptr;

}  // namespace

Fiber::Fiber(std::function<void()> body, size_t stack_bytes)
    : body_(std::move(body)), stack_bytes_(stack_bytes) {
  // MAP_NORESERVE: pages are committed only when touched, so 4096 fibers cost little.
  stack_ = mmap(nullptr, stack_bytes_, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (stack_ == MAP_FAILED) std::abort();
  getcontext(&context_);
  context_.uc_stack.ss_sp = stack_;
  context_.uc_stack.ss_size = stack_bytes_;
  context_.uc_link = &t_scheduler;
  auto self = reinterpret_cast<uintptr_t>(this);
  makecontext(&context_, reinterpret_cast<void (*)()>(&Fiber::Trampoline), 2,
              static_cast<unsigned int>(self >> 32), static_cast<unsigned int>(self));
}

Fiber::~Fiber() { munmap(stack_, stack_bytes_); }

void Fiber::Trampoline(unsigned int high, unsigned int low) {
  auto* fiber = reinterpret_cast<Fiber*>((static_cast<uintptr_t>(high) << 32) | low);
  fiber->body_();
  fiber->finished_ = true;
  t_current = nullptr;
  // uc_link returns to the scheduler.
}

void Fiber::Resume() {
  t_current = this;
  swapcontext(&t_scheduler, &context_);
  t_current = nullptr;
}

void Fiber::Suspend() {
  Fiber* self = t_current;
  swapcontext(&self->context_, &t_scheduler);
}

}  // namespace braid::sim
