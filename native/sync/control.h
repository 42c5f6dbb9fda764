// The control block: a SharedArrayBuffer that the creating thread allocates
// and every attached thread shares (Node 20 cannot wrap native memory in a
// SharedArrayBuffer, DESIGN §2, so the pool borrows JavaScript's). Native
// code publishes what JavaScript must read without a call — the free-page
// count, and a sequence word bumped by every free, on which waiters block
// with Atomics.wait. The slots are mirrored in src/binding/control.ts; keep the two
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
// The task table (src/mm/task-table.ts): 16 words (one cache line) per task id
// below 4096, each written mostly by its own thread.
constexpr int kTaskTableBase = 1024;
constexpr int kTaskWords = 16;
constexpr int kTaskTableTasks = 4096;
constexpr int kTaskWaiting = 7;  // how many of kWaiters this task's thread accounts for
constexpr int kTaskCached = 8;   // pages in the thread's page cache (published on refill/drain)
constexpr int kTaskTokens = 9;   // pages in the thread's token reservations
constexpr int kSlots = kTaskTableBase + kTaskWords * kTaskTableTasks;  // the block's size in words
constexpr int32_t kMagicValue = 0x4e4f464c;  // "NOFL"
}  // namespace ctl

// A borrowed view of the control block; null in the C++ tests.
// Any thread can write any word of the block at any time (it is a
// SharedArrayBuffer JavaScript holds), so whatever native code reads from
// it is untrusted: each word is read once, and used only clamped to what
// the pool knows (Pool::snapshot) or as a count to subtract, never as an
// index or a size.
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
    if (!w_ || task >= static_cast<uint32_t>(ctl::kTaskTableTasks)) return;
    int32_t* t = &w_[ctl::kTaskTableBase + task * ctl::kTaskWords];
    __atomic_store_n(&t[ctl::kTaskCached], 0, __ATOMIC_RELEASE);
    __atomic_store_n(&t[ctl::kTaskTokens], 0, __ATOMIC_RELEASE);
    const int32_t n = __atomic_exchange_n(&t[ctl::kTaskWaiting], 0, __ATOMIC_ACQ_REL);
    if (n > 0) __atomic_fetch_sub(&w_[ctl::kWaiters], n, __ATOMIC_RELEASE);
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
  // What a task's thread last published of its page cache and token
  // reservations (plain JavaScript stores; read here with relaxed loads, so
  // a reader sees a recent value, never a torn one). 0 outside the table.
  int32_t taskCached(uint32_t task) const { return taskWord(task, ctl::kTaskCached); }
  int32_t taskTokens(uint32_t task) const { return taskWord(task, ctl::kTaskTokens); }
  // The reaper took a task's pages, its page cache's with them: nothing of
  // what it last published is cached any more. Its thread republishes on
  // its next cache operation (src/mm/attachment.ts discardCache).
  void clearTaskCache(uint32_t task) const {
    if (!w_ || task >= static_cast<uint32_t>(ctl::kTaskTableTasks)) return;
    __atomic_store_n(&w_[ctl::kTaskTableBase + task * ctl::kTaskWords + ctl::kTaskCached], 0, __ATOMIC_RELEASE);
  }
  void publishReserved(int64_t reserved) const {
    if (!w_) return;
    __atomic_store_n(&w_[ctl::kReserved], static_cast<int32_t>(reserved), __ATOMIC_RELEASE);
  }

 private:
  int32_t taskWord(uint32_t task, int field) const {
    if (!w_ || task >= static_cast<uint32_t>(ctl::kTaskTableTasks)) return 0;
    return __atomic_load_n(&w_[ctl::kTaskTableBase + task * ctl::kTaskWords + field], __ATOMIC_RELAXED);
  }

  int32_t* w_;
};

}  // namespace nofail
