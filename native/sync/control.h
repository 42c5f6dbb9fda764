// The control block: a SharedArrayBuffer that the creating thread allocates
// and every attached thread shares (Node 20 cannot wrap native memory in a
// SharedArrayBuffer, DESIGN §2, so the pool borrows JavaScript's). Native
// code publishes what JavaScript must read without a call — the free-page
// count, and a sequence word bumped by every free, on which waiters block
// with Atomics.wait. The slots are mirrored in src/control.ts; keep the two
// in step.
//
// Memory ordering: native stores are release, JavaScript's Atomics loads are
// sequentially consistent; a waiter that reads kFreeSeq, rechecks the pool
// and then waits on the old value cannot miss a free that happened after
// its read (Atomics.wait compares first).
#pragma once

#include <cstdint>

namespace nofail {

namespace ctl {
constexpr int kMagic = 0;      // kMagicValue once initialised
constexpr int kFreeSeq = 1;    // bumped (native) after every free; the futex word
constexpr int kWaiters = 2;    // threads blocked on kFreeSeq (JavaScript)
constexpr int kFreePages = 3;  // mirror of Zone::freePages() (native)
constexpr int kReserved = 4;   // mirror of Zone::reserved() (native)
constexpr int kAttached = 5;   // threads attached (native: attach +1, detach or thread exit -1)
constexpr int kWmarkMin = 6;   // the zone's watermarks (native)
constexpr int kWmarkLow = 7;
constexpr int kWmarkHigh = 8;
constexpr int kCachedBase = 1024;  // pages in each thread's page cache, by task id (JavaScript)
constexpr int kCachedSlots = 16384;
constexpr int kTaskTableBase = kCachedBase + kCachedSlots;  // src/tasks.ts: 16 words per task id < 4096
constexpr int kTaskWords = 16;
constexpr int kTaskTableTasks = 4096;
constexpr int kTaskWaiting = 7;  // how many of kWaiters this task's thread accounts for
constexpr int kTaskTableWords = kTaskWords * kTaskTableTasks;
constexpr int kTokensBase = kCachedBase + kCachedSlots + kTaskTableWords;  // pages in token reservations, by task
constexpr int kSlots = kTokensBase + kCachedSlots;  // the block's size in words; the rest of the
                                                    // first 1024 belong to src/control.ts
constexpr int32_t kMagicValue = 0x4e4f464c;  // "NOFL"
}  // namespace ctl

// A borrowed view of the control block; null in the C++ tests.
class ControlBlock {
 public:
  explicit ControlBlock(int32_t* words = nullptr) : w_(words) {}
  bool attached() const { return w_ != nullptr; }
  int32_t* words() const { return w_; }

  void publishFree(int64_t freePages) const {
    if (!w_) return;
    __atomic_store_n(&w_[ctl::kFreePages], static_cast<int32_t>(freePages), __ATOMIC_RELEASE);
    __atomic_fetch_add(&w_[ctl::kFreeSeq], 1, __ATOMIC_RELEASE);
  }
  void publishAlloc(int64_t freePages) const {
    if (!w_) return;
    __atomic_store_n(&w_[ctl::kFreePages], static_cast<int32_t>(freePages), __ATOMIC_RELEASE);
  }
  // A retired task has no page cache, no token reservation and no thread
  // waiting: clear what its thread last published, and take its waits out
  // of kWaiters (a thread terminated inside Atomics.wait never could).
  void clearTask(uint32_t task) const {
    if (!w_ || task >= static_cast<uint32_t>(ctl::kCachedSlots)) return;
    __atomic_store_n(&w_[ctl::kCachedBase + task], 0, __ATOMIC_RELEASE);
    __atomic_store_n(&w_[ctl::kTokensBase + task], 0, __ATOMIC_RELEASE);
    if (task < static_cast<uint32_t>(ctl::kTaskTableTasks)) {
      int32_t* waiting = &w_[ctl::kTaskTableBase + task * ctl::kTaskWords + ctl::kTaskWaiting];
      const int32_t n = __atomic_exchange_n(waiting, 0, __ATOMIC_ACQ_REL);
      if (n > 0) __atomic_fetch_sub(&w_[ctl::kWaiters], n, __ATOMIC_RELEASE);
    }
  }
  void publishWatermarks(int64_t min, int64_t low, int64_t high) const {
    if (!w_) return;
    __atomic_store_n(&w_[ctl::kWmarkMin], static_cast<int32_t>(min), __ATOMIC_RELEASE);
    __atomic_store_n(&w_[ctl::kWmarkLow], static_cast<int32_t>(low), __ATOMIC_RELEASE);
    __atomic_store_n(&w_[ctl::kWmarkHigh], static_cast<int32_t>(high), __ATOMIC_RELEASE);
  }
  void addAttached(int32_t delta) const {
    if (w_) __atomic_fetch_add(&w_[ctl::kAttached], delta, __ATOMIC_RELEASE);
  }
  void publishReserved(int64_t reserved) const {
    if (!w_) return;
    __atomic_store_n(&w_[ctl::kReserved], static_cast<int32_t>(reserved), __ATOMIC_RELEASE);
  }

 private:
  int32_t* w_;
};

}  // namespace nofail
