// Locks known to nofail, ranked. A thread may only take a lock of a higher
// rank than every lock it already holds; a debug build checks it on every
// acquisition (jemalloc's "witness"), so an inversion fails loudly in tests
// long before it deadlocks in production.
//
//   rank 10  Registry::lock_     the process-wide pool registry
//   rank 20  Pool::zoneLock_     buddy lists, zone counters, task ledger
//
// The lock spins briefly — its critical sections are a few dozen
// instructions: one buddy split or merge chain, a ledger update — then
// sleeps on the lock word (Drepper's three-state futex mutex, through
// C++20 atomic wait/notify). Spinning alone collapses when threads
// outnumber cores: a waiter burns the time slice its preempted holder
// needs.
#pragma once

#include <atomic>
#include <cstdlib>

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

class RankedLock {
 public:
  explicit RankedLock(LockRank rank) : rank_(rank) {}
  RankedLock(const RankedLock&) = delete;
  RankedLock& operator=(const RankedLock&) = delete;

  void lock() {
#if NOFAIL_DEBUG
    if (lockdep::heldRank >= static_cast<int>(rank_)) lockdep::rankViolation();
#endif
    // Word states: 0 free, 1 held, 2 held and someone may sleep on it.
    for (unsigned spins = 0; spins < kSpins; ++spins) {
      int expected = 0;
      if (word_.load(std::memory_order_relaxed) == 0 &&
          word_.compare_exchange_weak(expected, 1, std::memory_order_acquire, std::memory_order_relaxed)) {
        return acquired();
      }
      __builtin_ia32_pause();
    }
    // Mark it contended, and sleep until the holder's unlock wakes us.
    while (word_.exchange(2, std::memory_order_acquire) != 0) word_.wait(2, std::memory_order_relaxed);
    acquired();
  }

  void unlock() {
#if NOFAIL_DEBUG
    lockdep::heldRank = savedRank_;
    --lockdep::heldDepth;
#endif
    if (word_.exchange(0, std::memory_order_release) == 2) word_.notify_one();
  }

 private:
  static constexpr unsigned kSpins = 100;

  void acquired() {
#if NOFAIL_DEBUG
    savedRank_ = lockdep::heldRank;
    lockdep::heldRank = static_cast<int>(rank_);
    ++lockdep::heldDepth;
#endif
  }

  std::atomic<int> word_{0};
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
