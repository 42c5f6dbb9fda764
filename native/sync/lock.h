// Locks known to nofail, ranked. A thread may only take a lock of a higher
// rank than every lock it already holds; a debug build checks it on every
// acquisition (jemalloc's "witness"), so an inversion fails loudly in tests
// long before it deadlocks in production.
//
//   rank 10  Registry::lock_     the process-wide pool registry
//   rank 20  Pool::zoneLock_     buddy lists, zone counters, task ledger
//
// The zone lock is a spinning lock: its critical sections are a few dozen
// instructions (one buddy split or merge chain, a ledger update). After a
// short spin it yields the CPU so a preempted holder can run.
#pragma once

#include <atomic>
#include <cstdlib>
#include <thread>

#ifndef NOFAIL_DEBUG
#define NOFAIL_DEBUG 0
#endif

namespace nofail {

enum class LockRank : int { kRegistry = 10, kZone = 20 };

#if NOFAIL_DEBUG
namespace lockdep {
// The highest rank this thread holds, and how many locks it holds.
inline thread_local int heldRank = 0;
inline thread_local int heldDepth = 0;
[[noreturn]] inline void rankViolation() { std::abort(); }
}  // namespace lockdep
#endif

class SpinLock {
 public:
  explicit SpinLock(LockRank rank) : rank_(rank) {}
  SpinLock(const SpinLock&) = delete;
  SpinLock& operator=(const SpinLock&) = delete;

  void lock() {
#if NOFAIL_DEBUG
    if (lockdep::heldRank >= static_cast<int>(rank_)) lockdep::rankViolation();
#endif
    for (unsigned spins = 0;; ++spins) {
      // Test before test-and-set: spin on a shared cache line, not an exclusive one.
      if (!word_.load(std::memory_order_relaxed) &&
          !word_.exchange(true, std::memory_order_acquire)) {
        break;
      }
      if (spins < 128) {
        __builtin_ia32_pause();
      } else {
        std::this_thread::yield();
      }
    }
#if NOFAIL_DEBUG
    savedRank_ = lockdep::heldRank;
    lockdep::heldRank = static_cast<int>(rank_);
    ++lockdep::heldDepth;
#endif
  }

  void unlock() {
#if NOFAIL_DEBUG
    lockdep::heldRank = savedRank_;
    --lockdep::heldDepth;
#endif
    word_.store(false, std::memory_order_release);
  }

 private:
  std::atomic<bool> word_{false};
  const LockRank rank_;
#if NOFAIL_DEBUG
  int savedRank_ = 0;  // written only by the holder
#endif
};

template <typename L>
class Guard {
 public:
  explicit Guard(L& l) : l_(l) { l_.lock(); }
  ~Guard() { l_.unlock(); }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;

 private:
  L& l_;
};

}  // namespace nofail
